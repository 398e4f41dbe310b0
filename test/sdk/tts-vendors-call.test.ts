/**
 * Full calls with a streaming TTS vendor (issue 23): the emulator, a worker, a bot that says an
 * LLM-streamed answer; Cartesia and ElevenLabs are local stand-ins speaking their wire protocols.
 * Audio reaches the caller, a barge-in cuts what the bot says it said at the last word played, and
 * vendor failures (a cut connection mid-turn, a 429, a bad key) never leave the caller in silence.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBotHarness, runBotTest, type BotHarness, type BotTestResult } from '../../src/testing/index.js';
import { startVoiceStandIns, type VoiceStandIns } from '../../src/testing/voice-standins.js';
import { startCartesiaStandIn, type CartesiaStandIn } from '../../src/testing/cartesia-standin.js';
import { startElevenLabsStandIn, type ElevenLabsStandIn } from '../../src/testing/elevenlabs-standin.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const heardBot = path.join(here, '../fixtures/bots/heard.ts');
const assistant = path.join(here, '../../bots/voice-assistant.ts');
const REPLY = 'Sure, let me check that for you. Our shop opens at nine in the morning. It closes at six in the evening.';
const words = (s: string) => s.split(/\s+/).filter(Boolean);

let llm: VoiceStandIns;
let cartesia: CartesiaStandIn;
let eleven: ElevenLabsStandIn;
beforeAll(async () => {
  llm = await startVoiceStandIns({
    firstTokenMs: 50,
    tokensPerSec: 40,
    reply: (messages) => (/stop/.test(messages.at(-1)?.content ?? '') ? 'Okay, stopping there.' : REPLY),
  });
  cartesia = await startCartesiaStandIn({ firstChunkMs: 80, chunkMs: 100, chunkGapMs: 10 });
  eleven = await startElevenLabsStandIn({ firstChunkMs: 80, chunkMs: 100, chunkGapMs: 10 });
  // Workers trust the Cartesia stand-in's certificate (its SDK speaks wss:// only).
  process.env.NODE_EXTRA_CA_CERTS = cartesia.caFile;
});
afterAll(async () => {
  delete process.env.NODE_EXTRA_CA_CERTS;
  await Promise.all([llm?.close(), cartesia?.close(), eleven?.close()]);
});

const VENDORS = {
  cartesia: () => ({ TTS_PROVIDER: 'cartesia', CARTESIA_API_KEY: cartesia.apiKey, CARTESIA_BASE_URL: cartesia.baseUrl }),
  elevenlabs: () => ({ TTS_PROVIDER: 'elevenlabs', ELEVENLABS_API_KEY: eleven.apiKey, ELEVENLABS_BASE_URL: eleven.baseUrl }),
} as const;
const env = (vendor: keyof typeof VENDORS, extra: Record<string, string> = {}) => ({
  // A loaded machine (shared CI) must not turn a slow worker start into the apology bot.
  WORKER_INIT_TIMEOUT_MS: '60000',
  HOLD_BUDGET_MS: '120000',
  OPENAI_API_KEY: 'sk-standin',
  LLM_BASE_URL: llm.baseUrl,
  ...VENDORS[vendor](),
  ...extra,
});
const botLines = (r: BotTestResult) => r.transcript.filter((l) => l.who === 'bot').map((l) => l.text);
const tagged = (r: BotTestResult, tag: string) => {
  for (const t of r.said) {
    const m = new RegExp(`\\[${tag} ([^\\]]*)\\]`).exec(t);
    if (m) return m[1];
  }
  return undefined;
};

describe.each(['cartesia', 'elevenlabs'] as const)('a call speaking through %s', (vendor) => {
  // One emulator, service and worker pool for this vendor's calls (a stack per call cost seconds each).
  let h: BotHarness;
  beforeAll(async () => {
    h = await createBotHarness({ firstBot: heardBot, env: env(vendor) });
  }, 120_000);
  afterAll(async () => {
    await h?.close();
  });
  it('the LLM-streamed answer reaches the caller, sentence by sentence, from one vendor context', async () => {
    const started = Date.now();
    const r = await h.run(heardBot, {
      timeoutMs: 120_000,
      caller: [{ waitFor: 'say', match: /^\[interrupted/, timeoutMs: 30_000 }],
    });
    expect(r.outcome).toBe('completed');
    const lines = botLines(r);
    const answer = lines.slice(
      0,
      lines.findIndex((l) => l.startsWith('[heard')),
    );
    expect(words(answer.join(' '))).toEqual(words(REPLY));
    expect(answer.length).toBeGreaterThan(2);
    expect(tagged(r, 'heard')).toBe(REPLY);
    expect(tagged(r, 'interrupted')).toBe('false');
    expect(r.said.at(-1)).toContain('[error none]');
    // The answer's audio was played out in real time: the real speech lasts several seconds.
    const first = r.events.find((e) => e.kind === 'say')!.atMs;
    const heard = r.events.find((e) => e.kind === 'say' && e.value.startsWith('[heard'))!.atMs;
    expect(heard - first).toBeGreaterThan(3_000);
    if (vendor === 'cartesia') {
      const inputs = cartesia.inputs.filter(
        (i) => i.body.model_id !== undefined && REPLY.includes(i.transcript.trim()) && i.transcript.trim(),
      );
      expect(new Set(inputs.map((i) => i.context_id)).size).toBe(1);
    } else {
      const sent = eleven.messages.filter((m) => typeof m.text === 'string' && m.text.trim() && REPLY.includes(String(m.text).trim()));
      expect(new Set(sent.map((m) => m.context_id)).size).toBe(1);
    }
    expect(Date.now() - started).toBeLessThan(60_000);
  }, 180_000);

  it('barge-in mid-sentence: what the bot heard it say stops at the last word played', async () => {
    const r = await h.run(heardBot, {
      timeoutMs: 120_000,
      caller: [{ waitFor: 'say', match: /opens at nine/ }, { press: '1' }, { waitFor: 'say', match: /^\[interrupted/, timeoutMs: 30_000 }],
    });
    const heard = tagged(r, 'heard')!;
    expect(tagged(r, 'interrupted')).toBe('true');
    // A prefix of the answer, word for word, cut inside the second sentence.
    expect(words(REPLY).slice(0, words(heard).length)).toEqual(words(heard));
    expect(heard).toContain('let me check that for you.');
    expect(heard).not.toContain('closes');
    expect(words(heard).length).toBeLessThan(words('Sure, let me check that for you. Our shop opens at nine in the morning.').length);
  }, 180_000);

  // Each failure kind once, on one vendor each (CI time): how each vendor's socket reports a cut, a
  // 429 and a bad key is tested per vendor in test/voice/tts-cartesia.test.ts and
  // tts-elevenlabs.test.ts; what follows it in a call (the fallback speaks the rest, the bot is told)
  // is the same code for both (src/voice/tts-stream.ts, src/sdk/speak.ts).
  it.runIf(vendor === 'cartesia')(
    'a connection cut mid-turn: the rest is spoken by the fallback and the bot is told',
    async () => {
      const standIn = vendor === 'cartesia' ? cartesia : eleven;
      standIn.fault = { kind: 'drop', afterChunks: 12 };
      try {
        const r = await h.run(heardBot, {
          timeoutMs: 120_000,
          caller: [{ waitFor: 'say', match: /^\[interrupted/, timeoutMs: 30_000 }],
        });
        const lines = botLines(r);
        const answer = lines.slice(
          0,
          lines.findIndex((l) => l.startsWith('[heard')),
        );
        // The vendor's part (its lines show whole pieces, of which the caller heard a prefix), then
        // espeak-ng's: every word not heard yet, to the end of the answer.
        const rest = words(answer.at(-1)!);
        const vendorPart = words(answer.slice(0, -1).join(' '));
        expect(words(REPLY).slice(-rest.length)).toEqual(rest);
        expect(words(REPLY).slice(0, vendorPart.length)).toEqual(vendorPart);
        expect(vendorPart.length + rest.length).toBeGreaterThanOrEqual(words(REPLY).length);
        expect(rest.length).toBeLessThan(words(REPLY).length);
        expect(r.said.at(-1)).toMatch(/\[error - true\]/);
        expect(tagged(r, 'heard')).toBe(REPLY);
      } finally {
        standIn.fault = undefined;
      }
    },
    180_000,
  );

  it.runIf(vendor === 'cartesia')(
    'a vendor that takes the text and never answers: after 5 s the fallback speaks, the bot is told',
    async () => {
      const standIn = vendor === 'cartesia' ? cartesia : eleven;
      standIn.fault = { kind: 'silent' };
      let r: BotTestResult;
      try {
        r = await h.run(heardBot, {
          timeoutMs: 120_000,
          caller: [{ waitFor: 'say', match: /^\[heard/, timeoutMs: 60_000 }],
        });
      } finally {
        standIn.fault = undefined;
      }
      const lines = botLines(r);
      expect(
        words(
          lines
            .slice(
              0,
              lines.findIndex((l) => l.startsWith('[heard')),
            )
            .join(' '),
        ),
      ).toEqual(words(REPLY));
      expect(tagged(r, 'heard')).toBe(REPLY);
      expect(r.said.join(' ')).toMatch(/\[error - true\]/);
    },
    180_000,
  );

  it.runIf(vendor === 'elevenlabs')(
    'a 429 and a bad key: the whole answer is spoken by the fallback, the bot is told which',
    async () => {
      const standIn = vendor === 'cartesia' ? cartesia : eleven;
      standIn.fault = { kind: 'reject', status: 429 };
      let r: BotTestResult;
      try {
        r = await h.run(heardBot, {
          timeoutMs: 120_000,
          caller: [{ waitFor: 'say', match: /^\[interrupted/, timeoutMs: 30_000 }],
        });
      } finally {
        standIn.fault = undefined;
      }
      expect(words(botLines(r).slice(0, -2).join(' '))).toEqual(words(REPLY));
      expect(r.said.at(-1)).toMatch(/\[error 429 true\]/);
      const key: Record<string, string> = vendor === 'cartesia' ? { CARTESIA_API_KEY: 'wrong' } : { ELEVENLABS_API_KEY: 'wrong' };
      const r2 = await runBotTest(heardBot, {
        env: env(vendor, key),
        timeoutMs: 120_000,
        caller: [{ waitFor: 'say', match: /^\[interrupted/, timeoutMs: 30_000 }],
      });
      expect(words(botLines(r2).slice(0, -2).join(' '))).toEqual(words(REPLY));
      expect(r2.said.at(-1)).toMatch(/\[error 401 false\]/);
    },
    300_000,
  );
});

describe('the reference assistant: its LLM history holds what the caller heard', () => {
  it('barge-in by voice mid-sentence: the assistant message the model sees next is cut at the last word played', async () => {
    const before = llm.requests.length;
    const r = await runBotTest(assistant, {
      env: env('cartesia'),
      timeoutMs: 120_000,
      caller: [
        { waitFor: 'say', match: /how can I help/, timeoutMs: 30_000 },
        { say: 'what are your hours' },
        { waitFor: 'say', match: /opens at nine/, timeoutMs: 30_000 },
        { say: 'stop please' },
        { waitFor: 'say', match: /stopping there/, timeoutMs: 30_000 },
        { say: 'bye' },
      ],
    });
    expect(r.outcome).toBe('completed');
    const chats = llm.requests.slice(before).filter((q) => q.kind === 'chat');
    const messages = chats.at(-1)!.body.messages as Array<{ role: string; content: string }>;
    const assistantMsg = messages.findLast((m) => m.role === 'assistant')!.content;
    expect(messages.at(-1)).toEqual({ role: 'user', content: 'stop please' });
    // Only what was played: a word-for-word prefix of the answer, cut inside its second sentence.
    expect(words(REPLY).slice(0, words(assistantMsg).length)).toEqual(words(assistantMsg));
    expect(assistantMsg).toContain('let me check that for you.');
    expect(assistantMsg).not.toContain('closes');
    expect(words(assistantMsg).length).toBeLessThan(words(REPLY).length);
  }, 180_000);
});
