/**
 * A whole call with a streaming speech-to-text vendor (issue 22 item 3): the emulator's caller
 * speaks real espeak-ng audio, the bot (test/fixtures/bots/stt-deepgram.ts, `stt: deepgram(...)`)
 * hears it through the Deepgram stand-in driven by the official SDK in its worker, and answers.
 * Then the failures: the vendor drops mid-sentence, refuses the key at start, answers slowly.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { SPEECH_RATE, speechPcm } from '../../src/emulator/speech.js';
import { runBotTest } from '../../src/testing/index.js';
import { startDeepgramStandIn, type DeepgramStandIn, type DeepgramStandInOptions } from '../../src/testing/stt-standins.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const bot = path.join(here, '../fixtures/bots/stt-deepgram.ts');
const PHRASE = 'I would like to pay the invoice from last month';

let dg: DeepgramStandIn | undefined;
afterEach(async () => {
  await dg?.close();
  dg = undefined;
});

async function standIn(opts: DeepgramStandInOptions = {}): Promise<DeepgramStandIn> {
  dg = await startDeepgramStandIn(opts);
  dg.register(PHRASE, (await speechPcm(PHRASE))!, SPEECH_RATE);
  return dg;
}

const env = (s: DeepgramStandIn, key = s.apiKey) => ({ DEEPGRAM_API_KEY: key, DEEPGRAM_BASE_URL: s.baseUrl });
const caller = (timeoutMs = 20_000) => [
  { waitFor: 'say' as const, match: /how can I help/ },
  { say: PHRASE },
  { waitFor: 'say' as const, match: /you said/, timeoutMs },
];

describe('a call whose bot hears through Deepgram (stand-in)', () => {
  it('the caller speaks, the bot hears the words through Deepgram (not Daily) and answers', async () => {
    const s = await standIn();
    const r = await runBotTest(bot, { env: env(s), caller: caller() });
    expect(r.said.at(-1)).toBe(`you said: ${PHRASE}`);
    // Heard once: Deepgram's final, not also a Daily transcript.
    expect(r.heard).toEqual([PHRASE]);
    expect(s.connections).toHaveLength(1);
    expect(s.connections[0]!.query).toMatchObject({ model: 'nova-3', language: 'en-US', keyterm: 'invoice', sample_rate: '16000' });
    expect(s.connections[0]!.finals).toEqual([PHRASE]);
    expect(r.outcome).toBe('completed');
  }, 60_000);

  it('the vendor drops the connection mid-sentence: the stream is reopened, the buffered audio re-sent, the words heard once', async () => {
    const s = await standIn({ dropFirstAfterAudioMs: 1_000 });
    const r = await runBotTest(bot, { env: env(s), caller: caller() });
    expect(s.connections).toHaveLength(2);
    expect(s.connections[0]).toMatchObject({ closeCode: 1006, finals: [] });
    // The second stream got the sentence from its start: what the first heard was re-sent.
    expect(s.connections[1]!.audioMs).toBeGreaterThan(2_000);
    expect(s.connections[1]!.finals).toEqual([PHRASE]);
    expect(r.heard).toEqual([PHRASE]);
    expect(r.said.at(-1)).toBe(`you said: ${PHRASE}`);
  }, 60_000);

  it('the vendor refuses the key at start (401): the bot’s onError is told, Daily’s transcription takes over', async () => {
    const s = await standIn();
    const r = await runBotTest(bot, {
      env: env(s, 'not-the-key'),
      caller: caller(),
    });
    expect(s.refused).toContain(401);
    expect(s.connections).toHaveLength(0);
    // Told at once (a bot with `stt` starts it when the caller is connected): about when the caller
    // starts speaking, not after their words (a loaded machine may take the refusal's round trip
    // past the caller's first word).
    const told = r.transcript.find((l) => l.who === 'bot' && l.text === 'my hearing failed 401');
    expect(told?.atMs).toBeLessThan(r.transcript.find((l) => l.who === 'caller' && l.text === PHRASE)!.atMs + 1_000);
    expect(r.heard).toEqual([PHRASE]);
    expect(r.said.at(-1)).toBe(`you said: ${PHRASE}`);
  }, 60_000);

  it('with STT_FALLBACK=none the failure is told and listen() still returns (null) instead of hanging', async () => {
    const s = await standIn();
    const r = await runBotTest(bot, {
      env: { ...env(s, 'not-the-key'), STT_FALLBACK: 'none' },
      config: { listenMs: 3_000 },
      caller: [{ waitFor: 'say', match: /how can I help/ }, { say: PHRASE }, { waitFor: 'say', match: /you said/ }],
    });
    expect(r.said).toContain('my hearing failed 401');
    expect(r.heard).toEqual([]);
    expect(r.said.at(-1)).toBe('you said: nothing');
  }, 60_000);

  it('a slow vendor (2.5 s from end of speech to final): the bot waits for the words, listen() does not hang', async () => {
    const s = await standIn({ latencyMs: 2_500 });
    const r = await runBotTest(bot, { env: env(s), caller: caller(30_000) });
    expect(r.heard).toEqual([PHRASE]);
    const t = r.transcript;
    const spoke = t.find((l) => l.who === 'caller' && l.text === PHRASE)!;
    const answered = t.find((l) => l.who === 'bot' && /you said/.test(l.text))!;
    expect(answered.atMs - spoke.atMs).toBeGreaterThan(2_500);
  }, 60_000);
});
