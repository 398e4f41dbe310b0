/**
 * bots/voice-assistant.ts picks its pipeline from the service's VOICE_PIPELINE (issue 23 item 6):
 * with `openai-realtime`, a full call runs its `realtime` against the OpenAI Realtime stand-in
 * (driven by the official `openai` SDK in the worker): the caller's audio reaches the model, the
 * model's tool call runs the bot's tool and its audio is what the caller hears. With the same keys
 * and no VOICE_PIPELINE, the same bot runs its cascade (the LLM stand-in, no Realtime session).
 * Then how a bot offering both is resolved, and the start-up refusals.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import assistant from '../../bots/voice-assistant.js';
import { ConfigError, loadConfig } from '../../src/core/config.js';
import { defineBot, geminiLive, isBot, openaiRealtime } from '../../src/sdk/index.js';
import { botForPipeline } from '../../src/sdk/pipeline.js';
import { createBotHarness, runBotTest, type BotHarness } from '../../src/testing/index.js';
import { startOpenAiRealtimeStandIn, type OpenAiRealtimeStandIn } from '../../src/testing/openai-realtime-standin.js';
import { startVoiceStandIns, type VoiceStandIns } from '../../src/testing/voice-standins.js';
import { assistantLlmReply } from '../helpers/assistant-llm.js';

const GREETING = 'How can I help?';
const CASCADE_GREETING = 'Hi, this is the patchbay assistant. How can I help?';

let rt: OpenAiRealtimeStandIn;
let llm: VoiceStandIns;
let h: BotHarness;
const keys = () => ({
  OPENAI_API_KEY: rt.apiKey,
  OPENAI_REALTIME_BASE_URL: rt.baseUrl,
  LLM_BASE_URL: llm.baseUrl,
  LLM_MODEL: 'tiny-model',
  WORKER_INIT_TIMEOUT_MS: '60000',
  HOLD_BUDGET_MS: '120000',
});
beforeAll(async () => {
  rt = await startOpenAiRealtimeStandIn({
    firstAudioMs: 100,
    chunkMs: 100,
    chunkGapMs: 40,
    respond: (t) => {
      if (t.trigger === 'create') return { say: GREETING };
      if (t.trigger === 'speech') return { call: { name: 'opening_hours', arguments: { day: 'monday' } } };
      if (t.trigger === 'tool')
        return {
          say: `Monday ${(JSON.parse(t.tool!.output) as { monday: string }).monday.replace('–', ' to ')}, bye.`,
          call: { name: 'hangup', arguments: { reason: 'caller done' } },
        };
      return { say: 'Sorry?' };
    },
  });
  llm = await startVoiceStandIns({
    firstTokenMs: 50,
    tokensPerSec: 200,
    reply: assistantLlmReply,
  });
  process.env.NODE_EXTRA_CA_CERTS = rt.caFile; // workers trust the stand-in's certificate (the SDK speaks wss:// only)
  h = await createBotHarness({ firstBot: assistant, env: { ...keys(), VOICE_PIPELINE: 'openai-realtime' } });
}, 60_000);
afterAll(async () => {
  delete process.env.NODE_EXTRA_CA_CERTS;
  await h?.close();
  await rt?.close();
  await llm?.close();
});

describe('bots/voice-assistant.ts with VOICE_PIPELINE', () => {
  it('openai-realtime: the model greets, hears the caller, calls the bot’s tool and says its result; no LLM request', async () => {
    const llmBefore = llm.requests.filter((q) => q.kind === 'chat').length;
    const r = await h.run(assistant, {
      timeoutMs: 60_000,
      caller: [
        { waitFor: 'say', match: /help/, timeoutMs: 20_000 },
        { wait: 300 },
        { speak: 'Open on Monday?' },
        { waitFor: 'say', match: /bye/, timeoutMs: 20_000 },
      ],
    });
    expect(r.outcome).toBe('completed');
    expect(r.hangup).toBe('caller done');
    expect(r.said[0]).toBe(GREETING);
    expect(r.said.join(' ')).toContain('Monday 9:00 to 17:00, bye.');
    expect(r.said).not.toContain(CASCADE_GREETING);
    const conn = rt.connections.at(-1)!;
    // The shared spec: the bot's model, its opening_hours tool (run by the bot's code), transfer and hangup.
    expect(conn.model).toBe('gpt-realtime');
    expect(conn.toolOutputs.map((o) => o.output)).toEqual(['{"monday":"9:00–17:00"}']);
    const session = conn.session as { tools: Array<{ name: string }>; audio: { output: { voice: string } } };
    expect(session.tools.map((t) => t.name).sort()).toEqual(['hangup', 'opening_hours', 'transfer']);
    expect(session.audio.output.voice).toBe('marin');
    expect(conn.audioMs).toBeGreaterThan(500); // the caller's speech reached the model
    expect(llm.requests.filter((q) => q.kind === 'chat').length).toBe(llmBefore);
  }, 90_000);

  it('unset (cascade): the same bot with the same keys runs onCall: the LLM answers, no Realtime session', async () => {
    const upgrades = rt.upgrades.length;
    const llmBefore = llm.requests.filter((q) => q.kind === 'chat').length;
    const r = await runBotTest(assistant, {
      env: keys(),
      timeoutMs: 30_000,
      caller: [
        { waitFor: 'say', match: /how can I help/ },
        { say: 'what are your hours on monday' },
        { waitFor: 'say', match: /17:00/ },
        { say: 'bye' },
      ],
    });
    expect(r.said[0]).toBe(CASCADE_GREETING);
    expect(r.said.join(' ')).toContain('Here you go: {"monday":"9:00–17:00"}');
    expect(r.outcome).toBe('completed');
    expect(llm.requests.filter((q) => q.kind === 'chat').length).toBe(llmBefore + 2);
    expect(rt.upgrades.length).toBe(upgrades);
  }, 60_000);
});

describe('a bot offering both pipelines', () => {
  const both = defineBot({
    name: 'both',
    transcription: true,
    turnDetection: true,
    onCall() {},
    realtime: openaiRealtime({ model: 'gpt-realtime', voice: 'marin', instructions: 'Be brief.' }),
  });

  it('runs its cascade by default, its realtime on the service’s vendor otherwise (a model and voice of another vendor left out)', () => {
    const cascade = botForPipeline(both, undefined);
    expect(isBot(cascade)).toBe(true);
    expect(cascade.realtime).toBeUndefined();
    expect(typeof cascade.onCall).toBe('function');
    const openai = botForPipeline(both, 'openai');
    expect(openai.onCall).toBeUndefined();
    expect(openai.transcription).toBeUndefined();
    expect(openai.turnDetection).toBeUndefined();
    expect(openai.realtime).toEqual({ provider: 'openai', model: 'gpt-realtime', voice: 'marin', instructions: 'Be brief.' });
    expect(botForPipeline(both, 'gemini').realtime).toEqual({ provider: 'gemini', instructions: 'Be brief.' });
    expect(isBot(botForPipeline(both, 'gemini'))).toBe(true);
  });

  it('a bot with only one of the two runs it whatever the service says', () => {
    const s2sOnly = defineBot({ name: 's2s', realtime: geminiLive({ voice: 'Puck' }) });
    const cascadeOnly = defineBot({ name: 'cascade', onCall() {} });
    for (const p of [undefined, 'openai', 'gemini'] as const) {
      expect(botForPipeline(s2sOnly, p)).toBe(s2sOnly);
      expect(botForPipeline(cascadeOnly, p)).toBe(cascadeOnly);
    }
  });

  it('VOICE_PIPELINE: cascade by default; a speech-to-speech vendor without its key is refused at start-up', () => {
    expect(loadConfig({}).realtime.pipeline).toBeUndefined();
    expect(loadConfig({ VOICE_PIPELINE: 'openai-realtime', OPENAI_API_KEY: 'sk-1' }).realtime.pipeline).toBe('openai');
    expect(loadConfig({ VOICE_PIPELINE: 'gemini-live', GOOGLE_API_KEY: 'g-1' }).realtime.pipeline).toBe('gemini');
    expect(() => loadConfig({ VOICE_PIPELINE: 'openai-realtime' })).toThrow(ConfigError);
    expect(() => loadConfig({ VOICE_PIPELINE: 'openai-realtime' })).toThrow(/VOICE_PIPELINE=openai-realtime needs OPENAI_API_KEY/);
    expect(() => loadConfig({ VOICE_PIPELINE: 'gemini-live', OPENAI_API_KEY: 'sk-1' })).toThrow(/gemini-live needs GEMINI_API_KEY/);
    expect(() => loadConfig({ VOICE_PIPELINE: 'realtime' })).toThrow(/VOICE_PIPELINE/);
  });
});
