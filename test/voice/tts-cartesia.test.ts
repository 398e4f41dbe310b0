/**
 * Cartesia's TTS WebSocket: the stand-in driven by the official SDK (`@cartesia/cartesia-js`)
 * pointed at it by `baseURL`, then patchbay's provider (one context per turn) against it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCartesiaStandIn, type CartesiaStandIn } from '../../src/testing/cartesia-standin.js';
import { cartesiaTts, loadCartesiaSdk } from '../../src/voice/tts-cartesia.js';

// The SDK's CommonJS build: its ESM build cannot find `ws` on Node (src/voice/tts-cartesia.ts).
const { Cartesia, TTSWS } = loadCartesiaSdk();
import { TtsError, type TtsTurnEvent, type TtsWord } from '../../src/voice/tts-types.js';

let s: CartesiaStandIn;
beforeAll(async () => {
  s = await startCartesiaStandIn({ firstChunkMs: 50, chunkMs: 100, chunkGapMs: 5 });
});
afterAll(() => s?.close());

const FORMAT = { container: 'raw', encoding: 'pcm_s16le', sample_rate: 16000 } as const;
const sdk = (apiKey = s.apiKey) => new Cartesia({ apiKey, baseURL: s.baseUrl, maxRetries: 0 });

async function drain(turn: AsyncIterable<TtsTurnEvent>): Promise<{ samples: number; words: TtsWord[] }> {
  let samples = 0;
  const words: TtsWord[] = [];
  for await (const ev of turn) {
    if (ev.type === 'audio') samples += ev.pcm.length;
    else if (ev.type === 'words') words.push(...ev.words);
  }
  return { samples, words };
}

describe('Cartesia stand-in, through the official SDK', () => {
  it('streams one context fed in pieces: chunks, word timestamps in seconds, then done', async () => {
    const ws = await sdk().tts.websocket({ ca: s.ca });
    ws.on('error', () => undefined);
    const ctx = ws.context({ model_id: 'sonic-3', voice: { mode: 'id', id: 'v1' }, output_format: FORMAT, add_timestamps: true });
    await ctx.push({ transcript: 'Hello there. ' });
    await ctx.push({ transcript: 'We open at nine. ' });
    await ctx.no_more_inputs();
    let bytes = 0;
    const words: string[] = [];
    let lastEnd = 0;
    const types = new Set<string>();
    for await (const ev of ctx.receive()) {
      types.add(ev.type);
      if (ev.type === 'chunk') bytes += ev.audio?.length ?? 0;
      if (ev.type === 'timestamps' && ev.word_timestamps) {
        words.push(...ev.word_timestamps.words);
        lastEnd = Math.max(lastEnd, ...ev.word_timestamps.end);
      }
    }
    ws.close();
    expect(types).toEqual(new Set(['chunk', 'timestamps', 'done']));
    expect(words).toEqual(['Hello', 'there.', 'We', 'open', 'at', 'nine.']);
    // Timestamps run over the context's audio (seconds, cumulative across the inputs).
    expect(lastEnd).toBeCloseTo(bytes / 2 / 16000, 1);
    expect(s.inputs.filter((i) => i.context_id === ctx.contextId).map((i) => i.continue)).toEqual([true, true, false]);
  }, 30_000);

  it('refuses a bad key at the upgrade (401)', async () => {
    const ws = new TTSWS(sdk('wrong'), { ca: s.ca });
    ws.on('error', () => undefined);
    await expect(ws.connect()).rejects.toThrow(/401/);
    expect(s.upgrades.at(-1)!.status).toBe(401);
  });

  it('refuses an unsupported sample rate, input after continue:false, and a context whose fields change', async () => {
    const ws = await sdk().tts.websocket({ ca: s.ca });
    ws.on('error', () => undefined);
    const errors: string[] = [];
    ws.on('event', (ev) => {
      if (ev.type === 'error') errors.push(`${ev.context_id}: ${ev.message}`);
    });
    const bad = { container: 'raw', encoding: 'pcm_s16le', sample_rate: 12000 } as unknown as typeof FORMAT;
    await ws.send({ context_id: 'rate', model_id: 'sonic-3', voice: { id: 'v1' }, output_format: bad, transcript: 'Hi' });
    await ws.send({
      context_id: 'closed',
      model_id: 'sonic-3',
      voice: { id: 'v1' },
      output_format: FORMAT,
      transcript: 'Hi. ',
      continue: false,
    });
    await ws.send({
      context_id: 'closed',
      model_id: 'sonic-3',
      voice: { id: 'v1' },
      output_format: FORMAT,
      transcript: 'More.',
      continue: false,
    });
    await ws.send({
      context_id: 'mixed',
      model_id: 'sonic-3',
      voice: { id: 'v1' },
      output_format: FORMAT,
      transcript: 'A ',
      continue: true,
    });
    await ws.send({
      context_id: 'mixed',
      model_id: 'sonic-3',
      voice: { id: 'v2' },
      output_format: FORMAT,
      transcript: 'B',
      continue: false,
    });
    await expect.poll(() => errors.length, { timeout: 5_000 }).toBe(3);
    ws.close();
    expect(errors[0]).toMatch(/^rate: unsupported output_format.sample_rate: 12000/);
    expect(errors.some((e) => /^closed: context closed has finished/.test(e))).toBe(true);
    expect(errors.some((e) => /^mixed: inputs of a context must keep/.test(e))).toBe(true);
  }, 15_000);
});

describe('Cartesia provider (one context per turn)', () => {
  const provider = (apiKey = s.apiKey) => cartesiaTts({ apiKey, baseUrl: s.baseUrl, voice: 'v1', sampleRate: 16000, ca: s.ca });

  it('a turn fed sentence by sentence is one context: audio and words, consistent with each other', async () => {
    const tts = provider();
    const turn = tts.openTurn!();
    turn.push('Good morning.');
    setTimeout(() => {
      turn.push('How can I help you today?');
      turn.end();
    }, 100);
    const { samples, words } = await drain(turn);
    tts.close!();
    expect(words.map((w) => w.word)).toEqual(['Good', 'morning.', 'How', 'can', 'I', 'help', 'you', 'today?']);
    expect(words.at(-1)!.endMs).toBeCloseTo((samples / 16000) * 1000, -2);
    const ids = new Set(s.inputs.slice(-3).map((i) => i.context_id));
    expect(ids.size).toBe(1);
  }, 30_000);

  it('cancel() cancels the vendor context', async () => {
    const tts = provider();
    const turn = tts.openTurn!();
    turn.push('This is a long answer that the caller will interrupt before it ends.');
    for await (const ev of turn) if (ev.type === 'audio') break;
    turn.cancel();
    const id = s.inputs.at(-1)!.context_id;
    await expect.poll(() => s.cancelled.includes(id), { timeout: 5_000 }).toBe(true);
    tts.close!();
  }, 15_000);

  it('a bad key, a 429 and a connection cut mid-turn are TtsErrors that say so', async () => {
    const fail = async (tts = provider()) => {
      const turn = tts.openTurn!();
      turn.push('Hello there, this is a sentence long enough for several chunks of audio.');
      turn.end();
      const err = await drain(turn).then(
        () => undefined,
        (e: unknown) => e,
      );
      tts.close!();
      return err;
    };
    const badKey = await fail(provider('nope'));
    expect(badKey).toBeInstanceOf(TtsError);
    expect(badKey).toMatchObject({ status: 401, retryable: false });
    s.fault = { kind: 'reject', status: 429 };
    expect(await fail()).toMatchObject({ status: 429, retryable: true, message: expect.stringMatching(/rate limiting/) });
    s.fault = { kind: 'drop', afterChunks: 1 };
    expect(await fail()).toMatchObject({ retryable: true, message: expect.stringMatching(/closed the connection mid-turn/) });
    s.fault = undefined;
  }, 30_000);
});
