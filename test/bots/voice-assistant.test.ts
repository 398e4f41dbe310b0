import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import assistant, { ruleReply } from '../../bots/voice-assistant.js';
import { createBotHarness, runBotTest, type BotHarness } from '../../src/testing/index.js';
import { startVoiceStandIns, type VoiceStandIns } from '../../src/testing/voice-standins.js';
import { assistantLlmReply } from '../helpers/assistant-llm.js';

describe('voice-assistant bot, offline (rule-based)', () => {
  let h: BotHarness;
  beforeAll(async () => {
    h = await createBotHarness({ firstBot: assistant });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('answers what the caller says and hangs up on "bye"', async () => {
    const r = await h.run(assistant, {
      caller: [
        { waitFor: 'say', match: /how can I help/ },
        { say: 'I have a question about my billing' },
        { waitFor: 'say', match: /invoice/ },
        { say: 'when are you open' },
        { waitFor: 'say', match: /Monday to Friday/ },
        { say: 'ok bye' },
      ],
    });
    expect(r.heard).toEqual(['I have a question about my billing', 'when are you open', 'ok bye']);
    expect(r.said).toEqual([
      'Hi, this is the patchbay assistant. How can I help?',
      ruleReply('I have a question about my billing'),
      ruleReply('when are you open'),
      'Goodbye!',
    ]);
    expect(r.hangup).toBe('conversation over');
    expect(r.outcome).toBe('completed');
  }, 30_000);

  it('asks once after a silence, then says goodbye after the second', async () => {
    const r = await h.run(assistant, { config: { listenTimeoutMs: 500 }, caller: [{ waitFor: 'say', match: /goodbye/ }] });
    expect(r.heard).toEqual([]);
    expect(r.said).toEqual(['Hi, this is the patchbay assistant. How can I help?', 'Are you still there?', 'Goodbye!']);
    expect(r.outcome).toBe('completed');
  }, 30_000);
});

describe('voice-assistant bot with an OpenAI-compatible LLM (streaming, tools)', () => {
  let s: VoiceStandIns;
  beforeAll(async () => {
    // A stand-in for the external LLM service (not our code): streams chat completions.
    s = await startVoiceStandIns({
      firstTokenMs: 50,
      tokensPerSec: 200,
      reply: assistantLlmReply,
    });
  });
  afterAll(() => s?.close());
  const env = () => ({ OPENAI_API_KEY: 'sk-test-123', LLM_BASE_URL: s.baseUrl, LLM_MODEL: 'tiny-model' });

  it('answers through the LLM endpoint, streamed, when a key is configured', async () => {
    const before = s.requests.length;
    const r = await runBotTest(assistant, {
      env: env(),
      caller: [
        { waitFor: 'say', match: /how can I help/ },
        { say: 'tell me a joke' },
        { waitFor: 'say', match: /a joke$/ },
        { say: 'bye' },
      ],
    });
    expect(r.said.slice(1, -1).join(' ')).toBe('LLM heard: tell me a joke');
    expect(r.outcome).toBe('completed');
    const reqs = s.requests.slice(before);
    expect(reqs).toHaveLength(1);
    const body = reqs[0]!.body as { model: string; stream: boolean; messages: Array<{ role: string; content: string }> };
    expect(body.model).toBe('tiny-model');
    expect(body.stream).toBe(true);
    expect(body.messages[0]!.role).toBe('system');
    expect(body.messages.at(-1)).toEqual({ role: 'user', content: 'tell me a joke' });
  }, 30_000);

  it('runs a tool call and speaks the answer built from its result', async () => {
    const before = s.requests.length;
    const r = await runBotTest(assistant, {
      env: env(),
      caller: [
        { waitFor: 'say', match: /how can I help/ },
        { say: 'what are your hours on monday' },
        { waitFor: 'say', match: /17:00/ },
        { say: 'bye' },
      ],
    });
    expect(r.said.join(' ')).toContain('Here you go: {"monday":"9:00–17:00"}');
    const second = s.requests.slice(before)[1]!.body as { messages: Array<Record<string, unknown>> };
    expect(second.messages.at(-2)).toMatchObject({
      role: 'assistant',
      tool_calls: [{ id: 'call_1', function: { name: 'opening_hours' } }],
    });
    expect(second.messages.at(-1)).toEqual({ role: 'tool', tool_call_id: 'call_1', content: '{"monday":"9:00–17:00"}' });
  }, 30_000);

  it('hands the caller to a human (blind transfer) when the model asks for it', async () => {
    const r = await runBotTest(assistant, {
      env: env(),
      config: { agentUri: 'sip:queue@pbx.example.com', handover: 'blind' },
      caller: [{ waitFor: 'say', match: /how can I help/ }, { say: 'can I talk to a person' }],
    });
    expect(r.said).toContain('Let me put you through to a colleague.');
    expect(r.transfer).toBe('sip:queue@pbx.example.com');
    expect(r.outcome).toBe('completed');
  }, 30_000);

  it('warm transfer: briefs the agent with what the caller said, then bridges them', async () => {
    const r = await runBotTest(assistant, {
      env: { ...env(), DAILY_DIALOUT: 'true' },
      config: { agentUri: 'sip:queue@pbx.example.com' },
      agents: {
        'sip:queue@pbx.example.com': {
          answerAfterMs: 200,
          script: [
            { waitFor: 'say', match: /talk to a person/ },
            { wait: 4_000 },
            { say: 'Hello, Sam speaking.' },
            { waitFor: 'peer', match: /bye/ },
            { hangup: true },
          ],
        },
      },
      caller: [
        { waitFor: 'say', match: /how can I help/ },
        { say: 'can I talk to a person' },
        { waitFor: 'peer', match: /Sam/, timeoutMs: 20_000 },
        { say: 'bye' },
      ],
    });
    expect(r.warmTransfer).toEqual({ target: 'sip:queue@pbx.example.com', bridged: true });
    expect(r.agents[0]!.transcript.filter((l) => l.who === 'bot').map((l) => l.text)).toEqual([
      'A caller asked for a person. They said: can I talk to a person.',
    ]);
    // The caller never heard the briefing.
    expect(r.transcript.some((l) => l.who === 'bot' && /asked for a person/.test(l.text))).toBe(false);
    expect(r.outcome).toBe('completed');
  }, 45_000);
});
