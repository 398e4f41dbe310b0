/**
 * Speech-to-speech through Gemini Live (issue 23 item 4): full calls of a bot on `geminiLive({...})`
 * through the emulator, against the BidiGenerateContent stand-in driven by the official
 * `@google/genai` SDK (plain ws:// from an http:// base): the caller's speech reaches the model as
 * 16 kHz PCM, a tool call changes what it says, and a bad key gives a clear outcome.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GoogleGenAI, Modality } from '@google/genai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBotHarness, type BotHarness } from '../../src/testing/index.js';
import { startGeminiLiveStandIn, type GeminiLiveStandIn } from '../../src/testing/gemini-live-standin.js';
import type { RealtimeReply, RealtimeTurn } from '../../src/testing/openai-realtime-standin.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const bot = path.join(here, '../fixtures/bots/gemini-live.ts');
const APOLOGY = 'Sorry, I am having technical trouble right now.';

let s: GeminiLiveStandIn;
let h: BotHarness;
let script: (t: RealtimeTurn) => RealtimeReply = () => ({ say: 'Hello.' });
beforeAll(async () => {
  s = await startGeminiLiveStandIn({ firstAudioMs: 100, chunkMs: 100, chunkGapMs: 40, respond: (t) => script(t) });
  h = await createBotHarness({
    firstBot: bot,
    env: { GEMINI_API_KEY: s.apiKey, GEMINI_BASE_URL: s.baseUrl, WORKER_INIT_TIMEOUT_MS: '60000', HOLD_BUDGET_MS: '120000' },
  });
}, 60_000);
afterAll(async () => {
  await h?.close();
  await s?.close();
});

describe('Gemini Live stand-in, through the official SDK', () => {
  it('refuses a setup that does not ask for audio, closing 1007 as the API does', async () => {
    const ai = new GoogleGenAI({ apiKey: s.apiKey, httpOptions: { baseUrl: s.baseUrl } });
    const closed = new Promise<{ code: number; reason: string }>((resolve) => {
      void ai.live
        .connect({
          model: 'gemini-live-2.5-flash-preview',
          config: { responseModalities: [Modality.TEXT] },
          callbacks: { onmessage: () => undefined, onclose: (e) => resolve(e) },
        })
        .catch(() => undefined);
    });
    const e = await closed;
    expect(e.code).toBe(1007);
    expect(s.closes.at(-1)!.reason).toMatch(/invalid argument/);
  });
});

describe('a call with a geminiLive bot', () => {
  it('greets, hears the caller, runs the tool the model calls and says its result', async () => {
    script = (t) => {
      if (t.trigger === 'text') return { say: 'Hello, this is the bakery.' };
      if (t.trigger === 'speech') return { call: { name: 'todays_bread' } };
      if (t.trigger === 'tool')
        return {
          say: `Today we have ${(JSON.parse(t.tool!.output) as { output: string }).output.includes('rye') ? 'rye' : 'nothing'} bread.`,
        };
      return {};
    };
    const r = await h.run(bot, {
      timeoutMs: 60_000,
      caller: [
        { waitFor: 'say', match: /bakery/, timeoutMs: 20_000 },
        { wait: 800 },
        { speak: 'What bread do you have today?' },
        { waitFor: 'say', match: /rye/, timeoutMs: 20_000 },
        { wait: 1_000 },
        { hangup: true },
      ],
    });
    const conn = s.connections.at(-1)!;
    expect(conn.setup.model).toBe('models/gemini-live-2.5-flash-preview');
    expect(conn.audioMs).toBeGreaterThan(1_000);
    expect(conn.toolResponses.map((t) => t.name)).toEqual(['todays_bread']);
    expect(JSON.stringify(conn.toolResponses[0]!.response)).toContain('rye');
    expect(r.said).toEqual(['Hello, this is the bakery.', 'Today we have rye bread.']);
    expect(r.outcome).toBe('caller_hangup');
  }, 90_000);

  it('a bad key (close 1007): onError, an apology, then bot_error with the reason (429: see the OpenAI file, the same path)', async () => {
    const key = s.apiKey;
    s.apiKey = 'someone-else';
    let bad;
    try {
      bad = await h.run(bot, { timeoutMs: 30_000, caller: [{ waitFor: 'connected' }] });
    } finally {
      s.apiKey = key;
    }
    expect(bad.outcome).toBe('bot_error');
    expect(bad.detail).toMatch(/1007: API key not valid/);
    expect(bad.said).toContain(APOLOGY);
    expect(bad.steps).toContain('vendor-failed');
  }, 90_000);
});
