/**
 * Speech-to-speech through OpenAI's Realtime API (issue 23 item 4): the stand-in driven by the
 * official `openai` SDK, then full calls of bots/realtime-assistant.ts through the emulator: the
 * caller's real speech reaches the model, a tool call changes what it says, keys reach it as text,
 * a barge-in truncates its item at what was played, and vendor failures are never a silent caller.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBotHarness, type BotHarness, type BotTestResult } from '../../src/testing/index.js';
import {
  startOpenAiRealtimeStandIn,
  type OpenAiRealtimeStandIn,
  type RealtimeReply,
  type RealtimeTurn,
} from '../../src/testing/openai-realtime-standin.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const assistant = path.join(here, '../../bots/realtime-assistant.ts');
const GREETING = 'Hi, how can I help?';
const LONG =
  'Sure. Our shop opens at nine in the morning on weekdays, and it closes at five in the evening, except on Saturdays and Sundays.';

let s: OpenAiRealtimeStandIn;
let h: BotHarness;
let script: (turn: RealtimeTurn) => RealtimeReply = () => ({ say: GREETING });
beforeAll(async () => {
  s = await startOpenAiRealtimeStandIn({ firstAudioMs: 100, chunkMs: 100, chunkGapMs: 40, respond: (t) => script(t) });
  process.env.NODE_EXTRA_CA_CERTS = s.caFile; // workers trust the stand-in's certificate (the SDK speaks wss:// only)
  h = await createBotHarness({
    firstBot: assistant,
    env: { OPENAI_API_KEY: s.apiKey, OPENAI_REALTIME_BASE_URL: s.baseUrl, WORKER_INIT_TIMEOUT_MS: '60000', HOLD_BUDGET_MS: '120000' },
  });
}, 60_000);
afterAll(async () => {
  delete process.env.NODE_EXTRA_CA_CERTS;
  await h?.close();
  await s?.close();
});

const lastConn = () => s.connections.at(-1)!;

describe('OpenAI Realtime stand-in, through the official SDK', () => {
  it('refuses a session whose audio is not 24 kHz PCM, and a bad key', async () => {
    const rt = new OpenAIRealtimeWS({ model: 'gpt-realtime', options: { ca: s.ca } }, new OpenAI({ apiKey: s.apiKey, baseURL: s.baseUrl }));
    const errors: string[] = [];
    rt.on('error', (e) => errors.push(e.error?.code ?? e.message));
    await new Promise((r) => rt.socket.once('open', r));
    rt.send({
      type: 'session.update',
      session: { type: 'realtime', audio: { input: { format: { type: 'audio/pcm', rate: 16000 as 24000 } } } },
    });
    rt.send({ type: 'session.update', session: { audio: {} } as never });
    await expect.poll(() => errors.length).toBe(2);
    expect(errors).toEqual(['invalid_value', 'missing_required_parameter']);
    rt.close();
    const bad = new OpenAIRealtimeWS(
      { model: 'gpt-realtime', options: { ca: s.ca } },
      new OpenAI({ apiKey: 'sk-wrong', baseURL: s.baseUrl }),
    );
    const badErrors: string[] = [];
    bad.on('error', (e) => badErrors.push(e.error?.code ?? e.message));
    await new Promise((r) => bad.socket.once('close', r));
    expect(badErrors).toEqual(['invalid_api_key']);
  });
});

const saidAll = (r: BotTestResult) => r.said.join(' | ');

describe('a call with bots/realtime-assistant.ts (speech-to-speech)', () => {
  it('greets, hears the caller, runs the tool the model calls and says its result; keys reach it as text; it hangs up', async () => {
    script = (t) => {
      if (t.trigger === 'create') return { say: GREETING };
      if (t.trigger === 'speech') return { call: { name: 'opening_hours', arguments: { day: 'monday' } } };
      if (t.trigger === 'tool')
        return { say: `On Monday we are open ${(JSON.parse(t.tool!.output) as { monday: string }).monday.replace('–', ' to ')}.` };
      if (t.trigger === 'text' && /keys: 9/.test(t.text ?? ''))
        return { say: 'Goodbye!', call: { name: 'hangup', arguments: { reason: 'caller done' } } };
      return { say: 'Sorry?' };
    };
    const r = await h.run(assistant, {
      timeoutMs: 60_000,
      caller: [
        { waitFor: 'say', match: /help/, timeoutMs: 20_000 },
        { wait: 300 },
        { speak: 'Open on Monday?' },
        { waitFor: 'say', match: /17:00/, timeoutMs: 20_000 },
        { press: '9' },
        { waitFor: 'say', match: /Goodbye/, timeoutMs: 20_000 },
      ],
    });
    expect(r.outcome).toBe('completed');
    expect(r.hangup).toBe('caller done');
    // The tool's result (from the bot's code) is what the model said next.
    expect(lastConn().toolOutputs.map((o) => o.output)).toEqual(['{"monday":"9:00–17:00"}']);
    expect(saidAll(r)).toContain('On Monday we are open 9:00 to 17:00.');
    expect(r.said[0]).toBe(GREETING);
    // The caller's audio reached the model (24 kHz), and their keys as text.
    const conn = lastConn();
    expect(conn.audioMs).toBeGreaterThan(1_000);
    expect(conn.events.some((e) => e.type === 'conversation.item.create' && JSON.stringify(e).includes('keys: 9'))).toBe(true);
    const session = conn.session as { audio: { input: { format: unknown } }; tools: Array<{ name: string }> };
    expect(session.audio.input.format).toEqual({ type: 'audio/pcm', rate: 24000 });
    // transfer is offered (transferTo is set; with no agentUri it answers that nobody is free).
    expect(session.tools.map((t) => t.name).sort()).toEqual(['hangup', 'opening_hours', 'transfer']);
    // The turn's stages, for the turn timer.
    const stages = r.events.filter((e) => e.kind === 'turn' && e.value.startsWith('s2s ')).map((e) => e.value.split(' ')[1]);
    expect(stages.slice(0, 3)).toEqual(['speechEnd', 'modelFirstAudio', 'firstFrameSent']);
    // ... and the call's turn timer made a timed turn of them (the record's `turn_latency` events).
    const timed = r.events.filter((e) => e.kind === 'turn_latency').map((e) => e.value);
    expect(timed.length).toBeGreaterThan(0);
    expect(timed[0]).toMatch(/^#1 speechEnd=0 modelFirstAudio=\d+ firstFrameSent=\d+$/);
  }, 90_000);

  it('barge-in mid-sentence: playing stops and the model item is truncated at what was played', async () => {
    script = (t) =>
      t.trigger === 'create' ? { say: LONG } : t.trigger === 'speech' ? { say: 'Okay.', call: { name: 'hangup' } } : { say: 'Hm?' };
    const r = await h.run(assistant, {
      timeoutMs: 60_000,
      caller: [
        { waitFor: 'say', match: /nine/, timeoutMs: 20_000 },
        { speak: 'Stop please.' },
        { waitFor: 'say', match: /Okay/, timeoutMs: 20_000 },
      ],
    });
    const conn = lastConn();
    expect(conn.truncations).toHaveLength(1);
    const t = conn.truncations[0]!;
    expect(t.item_id).toBe(conn.responses[0]!.itemId);
    expect(t.audio_end_ms).toBeGreaterThan(500);
    expect(t.audio_end_ms).toBeLessThan(t.itemAudioMs);
    const cut = r.said.find((x) => x.includes('[interrupted at'))!;
    // What the caller heard: the answer's first words, word for word, up to the cut.
    const heard = cut.replace(/ \[interrupted at \d+ ms\]$/, '').split(' ');
    expect(heard.length).toBeGreaterThan(1);
    expect(LONG.split(' ').slice(0, heard.length)).toEqual(heard);
    expect(cut).not.toContain('Sundays');
    expect(conn.errors).toEqual([]);
    expect(r.outcome).toBe('completed');
  }, 90_000);
});

describe('vendor failures: a clear outcome, never a silent caller', () => {
  it('429 at the upgrade: apology, then the call ends as bot_error naming the rate limit', async () => {
    s.fault = { kind: 'reject', status: 429 };
    try {
      const r = await h.run(assistant, { timeoutMs: 30_000, caller: [{ waitFor: 'connected' }] });
      expect(r.outcome).toBe('bot_error');
      expect(r.detail).toMatch(/429/);
      expect(r.said).toContain('Sorry, I am having technical trouble right now.');
    } finally {
      s.fault = undefined;
    }
  }, 60_000);

  it('a bad key: the vendor error says so', async () => {
    const key = s.apiKey;
    s.apiKey = 'sk-someone-else';
    try {
      const r = await h.run(assistant, { timeoutMs: 30_000, caller: [{ waitFor: 'connected' }] });
      expect(r.outcome).toBe('bot_error');
      expect(r.detail).toMatch(/Incorrect API key/);
      expect(r.said).toContain('Sorry, I am having technical trouble right now.');
    } finally {
      s.apiKey = key;
    }
  }, 60_000);

  it('a disconnect mid-answer: apology, then the caller goes to a person', async () => {
    script = () => ({ say: LONG });
    s.fault = { kind: 'drop', afterChunks: 8 };
    const r = await h.run(assistant, {
      timeoutMs: 30_000,
      config: { agentUri: 'sip:desk@example.com' },
      caller: [{ waitFor: 'connected' }],
    });
    expect(r.outcome).toBe('completed');
    expect(r.transfer).toBe('sip:desk@example.com');
    expect(r.said).toContain('Sorry, I am having technical trouble right now.');
    expect(r.events.some((e) => e.kind === 'turn' && /speech-to-speech failed: .*closed/.test(e.value))).toBe(true);
  }, 60_000);
});
