/**
 * OpenAI transcription (request per utterance, `stream: true`): the stand-in
 * (src/testing/stt-standin-openai.ts) driven by the official `openai` SDK, directly and through
 * patchbay's provider (src/voice/stt-openai.ts, utterances cut by the Silero VAD); then a whole call.
 * One stand-in for the file; real espeak-ng audio.
 */
import OpenAI, { toFile } from 'openai';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SPEECH_RATE, speechPcm } from '../../src/emulator/speech.js';
import { runBotTest } from '../../src/testing/index.js';
import { startOpenAiSttStandIn, type OpenAiSttStandIn } from '../../src/testing/stt-standin-openai.js';
import { SttError, type SttEvent } from '../../src/voice/stt.js';
import { openAiStt } from '../../src/voice/stt-openai.js';
import { resample } from '../../src/voice/tts.js';
import { encodeWav } from '../../src/voice/wav.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const PHRASE = 'I would like to pay the invoice from last month';
const PHONE = 8_000;
let s: OpenAiSttStandIn;
let speech: Int16Array;

beforeAll(async () => {
  s = await startOpenAiSttStandIn();
  speech = (await speechPcm(PHRASE))!;
  s.register(PHRASE, speech, SPEECH_RATE);
});
afterAll(() => s.close());

/** The official SDK, straight at the stand-in. */
function sdk(key = s.apiKey): OpenAI {
  return new OpenAI({ apiKey: key, baseURL: s.baseUrl, maxRetries: 0 });
}

/** Phone audio (8 kHz, 20 ms frames) of the phrase then 1 s of silence into the provider; its events until `until` ends it. */
async function hear(
  opts: { key?: string; maxUtteranceMs?: number; until?: (stream: { abort(): void; close(): Promise<void> }) => Promise<void> } = {},
) {
  const provider = openAiStt({ apiKey: opts.key ?? s.apiKey, baseUrl: s.baseUrl, maxUtteranceMs: opts.maxUtteranceMs ?? 15_000 });
  const stream = await provider.open({ language: 'en-US', keywords: ['invoice'] });
  const events: SttEvent[] = [];
  const done = (async () => {
    for await (const e of stream.events()) events.push(e);
  })();
  const audio = resample(speech, SPEECH_RATE, PHONE);
  const all = new Int16Array(audio.length + PHONE);
  all.set(audio);
  for (let off = 0; off < all.length; off += PHONE / 50) stream.write(all.slice(off, off + PHONE / 50), PHONE);
  await (opts.until ? opts.until(stream) : stream.close());
  await done;
  return events;
}

describe('OpenAI transcription stand-in, driven by the official openai SDK', () => {
  it('refuses what OpenAI refuses: bad key, unknown model, not audio, under 0.1 s; silence has no words', async () => {
    const wav = (pcm: Int16Array, name = 'a.wav') => toFile(encodeWav(pcm, SPEECH_RATE), name, { type: 'audio/wav' });
    const refusal = (p: Promise<unknown>) =>
      p.then(
        () => undefined,
        (e: unknown) => e as { status: number; code: string | null },
      );
    expect(
      await refusal(sdk('sk-wrong').audio.transcriptions.create({ file: await wav(speech), model: 'gpt-4o-transcribe' })),
    ).toMatchObject({
      status: 401,
      code: 'invalid_api_key',
    });
    expect(await refusal(sdk().audio.transcriptions.create({ file: await wav(speech), model: 'gpt-9' }))).toMatchObject({ status: 404 });
    const notWav = await toFile(Buffer.from('not audio at all, just text'), 'a.wav');
    expect(await refusal(sdk().audio.transcriptions.create({ file: notWav, model: 'gpt-4o-transcribe' }))).toMatchObject({ status: 400 });
    expect(
      await refusal(sdk().audio.transcriptions.create({ file: await wav(speech.slice(0, 800)), model: 'gpt-4o-transcribe' })),
    ).toMatchObject({
      status: 400,
      code: 'audio_too_short',
    });
    const plain = await sdk().audio.transcriptions.create({ file: await wav(speech), model: 'whisper-1' });
    expect(plain).toMatchObject({ text: PHRASE });
    const quiet = await sdk().audio.transcriptions.create({ file: await wav(new Int16Array(SPEECH_RATE)), model: 'gpt-4o-transcribe' });
    expect(quiet.text).toBe('');
  });
});

describe('patchbay’s OpenAI provider (src/voice/stt-openai.ts)', () => {
  it('an utterance of phone audio is one streamed request: interims, then final and end of turn', async () => {
    const before = s.requests.length;
    const events = await hear();
    expect(events.filter((e) => e.type !== 'interim').map((e) => ('text' in e ? [e.type, e.text] : [e.type]))).toEqual([
      ['speech-started'],
      ['final', PHRASE],
      ['end-of-turn', PHRASE],
    ]);
    const interims = events.filter((e) => e.type === 'interim');
    expect(interims.length).toBeGreaterThan(1);
    expect(interims.at(-1)).toMatchObject({ text: PHRASE });
    expect(s.requests.slice(before)).toEqual([
      expect.objectContaining({
        status: 200,
        model: 'gpt-4o-transcribe',
        stream: true,
        language: 'en',
        prompt: 'invoice',
        sampleRate: 16_000,
      }),
    ]);
  }, 30_000);

  it('a bad key is an SttError with status 401, not retryable; a 429 is retryable', async () => {
    const bad = (await hear({ key: 'sk-wrong' })).at(-1);
    expect(bad).toMatchObject({ type: 'error', error: { status: 401, retryable: false } });
    expect(bad?.type === 'error' && bad.error).toBeInstanceOf(SttError);
    s.failNext(1, 429);
    expect((await hear()).at(-1)).toMatchObject({ type: 'error', error: { status: 429, retryable: true } });
  }, 30_000);

  it('an utterance longer than the cap is cut there and sent in pieces; a backlog past the cap is a retryable error', async () => {
    const before = s.requests.length;
    await hear({ maxUtteranceMs: 1_000 });
    const sent = s.requests.slice(before);
    expect(sent.length).toBeGreaterThanOrEqual(3);
    for (const r of sent) expect(r.audioMs).toBeLessThanOrEqual(1_000);
    // OpenAI slower than the caller: 3 pieces wait, the next cannot join them under the cap.
    s.latencyMs = 3_000;
    try {
      const events = await hear({ maxUtteranceMs: 400 });
      expect(events.at(-1)).toMatchObject({ type: 'error', error: { retryable: true, message: expect.stringMatching(/falling behind/) } });
    } finally {
      s.latencyMs = 150;
    }
  }, 30_000);

  it('a long call’s utterances leave nothing behind on the stream: no abort listener piles up per request', async () => {
    // Each request's abort listener used to stay on the stream's one signal (Node warns at 11).
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    const provider = openAiStt({ apiKey: s.apiKey, baseUrl: s.baseUrl });
    const stream = await provider.open({ language: 'en-US' });
    const finals: string[] = [];
    let heard: () => void = () => undefined;
    const done = (async () => {
      for await (const e of stream.events()) {
        if (e.type !== 'final') continue;
        finals.push(e.text);
        heard();
      }
    })();
    const audio = resample(speech, SPEECH_RATE, PHONE);
    const turn = new Int16Array(audio.length + PHONE);
    turn.set(audio);
    try {
      for (let n = 1; n <= 12; n++) {
        const final = new Promise<void>((r) => (heard = r));
        for (let off = 0; off < turn.length; off += PHONE / 50) stream.write(turn.slice(off, off + PHONE / 50), PHONE);
        await final;
      }
      await stream.close();
      await done;
    } finally {
      process.off('warning', onWarning);
    }
    expect(finals).toHaveLength(12);
    expect(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning'))).toEqual([]);
  }, 60_000);

  it('abort() while a request is in flight cancels it: no transcript comes', async () => {
    const before = s.requests.length;
    s.latencyMs = 5_000;
    try {
      const events = await hear({
        until: async (stream) => {
          await vi.waitFor(() => expect(s.requests.length).toBe(before + 1), { timeout: 10_000 });
          stream.abort();
        },
      });
      expect(events.some((e) => e.type === 'final' || e.type === 'interim')).toBe(false);
      await vi.waitFor(() => expect(s.requests.at(-1)!.aborted).toBe(true));
    } finally {
      s.latencyMs = 150;
    }
  }, 30_000);
});

describe('a call whose bot hears through OpenAI (stand-in)', () => {
  it('the caller speaks, the bot hears the words and answers', async () => {
    const before = s.requests.length;
    const r = await runBotTest(path.join(here, '../fixtures/bots/stt-openai.ts'), {
      env: { OPENAI_API_KEY: s.apiKey, OPENAI_STT_BASE_URL: s.baseUrl },
      caller: [{ waitFor: 'say', match: /how can I help/ }, { say: PHRASE }, { waitFor: 'say', match: /you said/, timeoutMs: 20_000 }],
    });
    expect(r.heard).toEqual([PHRASE]);
    expect(r.said.at(-1)).toBe(`you said: ${PHRASE}`);
    expect(s.requests.slice(before).filter((q) => q.text)).toEqual([
      expect.objectContaining({ model: 'gpt-4o-mini-transcribe', language: 'en', prompt: 'invoice', text: PHRASE }),
    ]);
  }, 60_000);
});
