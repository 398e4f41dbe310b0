/**
 * Streaming text-to-speech for a whole turn (issue 23): the contract every provider offers.
 *
 * One `TtsTurn` is one vendor context (Cartesia's `context_id`, ElevenLabs' multi-stream context):
 * the bot's text goes in piece by piece as the LLM writes it (`push`), audio comes out as the vendor
 * generates it, and because every piece lands in the same context the vendor's prosody flows across
 * sentences. Where the vendor gives word timestamps they come out too, as `words` events whose times
 * are relative to the first sample of the turn's audio. `end()` says no more text will come; the
 * events end after the turn's last audio. `cancel()` (barge-in, hang-up) stops the context now.
 *
 * Providers without contexts (espeak-ng, OpenAI's speech endpoint, text-only) get one through
 * `pieceTurn`: each piece is synthesized on its own (the next while the current one streams), and
 * the words' times are estimated from each piece's audio length (by characters).
 *
 * `heardText` turns what was played (milliseconds of the turn's audio) and the words into the text
 * the caller actually heard: what goes into the bot's history after an interruption.
 */
import { errorMessage, isRetryableStatus } from '../core/errors.js';
import {
  TtsError,
  type SpeechAudio,
  type TtsProvider,
  type TtsTurn,
  type TtsTurnEvent,
  type TtsWord,
  type TurnOptions,
} from './tts-types.js';

export type { TtsTurn, TtsTurnEvent, TtsWord, TurnOptions } from './tts-types.js';

/** A push-fed async queue: `put` events, `close` (or `fail`) once; iterate once. */
export class EventQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private wake: (() => void) | undefined;
  private closed = false;
  private failure: { err: unknown } | undefined;

  put(item: T): void {
    if (this.closed) return;
    this.items.push(item);
    this.wake?.();
  }

  close(): void {
    this.closed = true;
    this.wake?.();
  }

  fail(err: unknown): void {
    if (this.closed) return;
    this.failure = { err };
    this.close();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (this.items.length > 0) {
        yield this.items.shift()!;
        continue;
      }
      if (this.failure) throw this.failure.err;
      if (this.closed) return;
      await new Promise<void>((r) => (this.wake = r));
      this.wake = undefined;
    }
  }
}

/** The words of `text` (white-space separated), as the caller hears them in order. */
export function wordsOf(text: string): string[] {
  return text.split(/\s+/).filter((w) => w.length > 0);
}

/** Times for the words of `text` spread over `durationMs` of its audio, by their length (an estimate). */
export function estimateWords(text: string, startMs: number, durationMs: number): TtsWord[] {
  const words = wordsOf(text);
  const weight = words.reduce((n, w) => n + w.length + 1, 0);
  const out: TtsWord[] = [];
  let at = startMs;
  for (const w of words) {
    const d = weight > 0 ? ((w.length + 1) / weight) * durationMs : 0;
    out.push({ word: w, startMs: at, endMs: at + d });
    at += d;
  }
  return out;
}

/**
 * A turn for a provider without contexts: every piece synthesized on its own (streamed when the
 * provider streams), one piece ahead of the one playing; words estimated from each piece's audio.
 */
export function pieceTurn(tts: TtsProvider, opts: TurnOptions = {}): TtsTurn {
  const out = new EventQueue<TtsTurnEvent>();
  const texts = new EventQueue<string>();
  const abort = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, abort.signal]) : abort.signal;
  /** One piece: its mark, then its audio; its words before the audio when its length is known first. */
  const speak = async (text: string, atMs: number): Promise<number> => {
    out.put({ type: 'mark', text });
    if (!tts.synthesizeStream) {
      const audio = await tts.synthesize(text, signal);
      const ms = audio.sampleRate > 0 ? (audio.pcm.length / audio.sampleRate) * 1000 : 0;
      if (signal.aborted) return ms;
      out.put({ type: 'words', words: estimateWords(text, atMs, ms) });
      out.put({ type: 'audio', ...audio });
      return ms;
    }
    let ms = 0;
    for await (const chunk of tts.synthesizeStream(text, signal)) {
      if (signal.aborted) return ms;
      out.put({ type: 'audio', ...chunk });
      ms += chunk.sampleRate > 0 ? (chunk.pcm.length / chunk.sampleRate) * 1000 : 0;
    }
    out.put({ type: 'words', words: estimateWords(text, atMs, ms) });
    return ms;
  };
  void (async () => {
    let atMs = 0;
    try {
      for await (const text of texts) {
        atMs += await speak(text, atMs);
        if (signal.aborted) return;
      }
      out.close();
    } catch (err) {
      if (signal.aborted) return out.close();
      out.fail(err instanceof TtsError ? err : new TtsError(`${tts.name}: ${errorMessage(err)}`, { cause: err }));
    }
  })();
  return {
    push: (text) => {
      if (text.trim()) texts.put(text);
    },
    end: () => texts.close(),
    cancel: () => {
      abort.abort();
      texts.close();
      out.close();
    },
    [Symbol.asyncIterator]: () => out[Symbol.asyncIterator](),
  };
}

/** The provider's own turn when it has contexts, else one built from its pieces. */
export function openTurn(tts: TtsProvider, opts: TurnOptions = {}): TtsTurn {
  return tts.openTurn ? tts.openTurn(opts) : pieceTurn(tts, opts);
}

/**
 * The text the caller heard of a turn: its words, cut at the last word whose audio had started
 * when playing stopped (`playedMs` of the turn's audio). With no word times at all, the cut is
 * estimated from the share of the received audio that was played.
 */
export function heardText(spoken: string, words: readonly TtsWord[], playedMs: number, receivedMs: number): string {
  const all = wordsOf(spoken);
  let n: number;
  if (words.length > 0) n = words.filter((w) => w.startMs < playedMs).length;
  else n = receivedMs > 0 ? Math.round((Math.min(playedMs, receivedMs) / receivedMs) * all.length) : 0;
  return all.slice(0, Math.min(n, all.length)).join(' ');
}

/** A refused upgrade as `ws` reports it: "Unexpected server response: 401". */
export function statusOfWsError(err: unknown): number | undefined {
  const m = /Unexpected server response: (\d{3})/.exec(errorMessage(err));
  return m ? Number(m[1]) : undefined;
}

export function vendorError(vendor: string, err: unknown, status?: number): TtsError {
  if (err instanceof TtsError) return err;
  const s = status ?? statusOfWsError(err);
  const what = s === 401 || s === 403 ? 'refused the key' : s === 429 ? 'is rate limiting (429)' : s ? `answered ${s}` : 'failed';
  return new TtsError(`${vendor} ${what}: ${errorMessage(err)}`, {
    retryable: s === undefined || isRetryableStatus(s),
    status: s,
    cause: err,
  });
}

/** One-shot synthesis through a turn: all its audio, joined. */
export async function collect(open: (o: TurnOptions) => TtsTurn, text: string, signal?: AbortSignal): Promise<SpeechAudio> {
  const parts: SpeechAudio[] = [];
  for await (const a of audioOf(open, text, signal)) parts.push(a);
  const pcm = new Int16Array(parts.reduce((n, p) => n + p.pcm.length, 0));
  let off = 0;
  for (const p of parts) {
    pcm.set(p.pcm, off);
    off += p.pcm.length;
  }
  return { pcm, sampleRate: parts[0]?.sampleRate ?? 16_000 };
}

/** One-shot streamed synthesis through a turn: its audio chunks. */
export async function* audioOf(open: (o: TurnOptions) => TtsTurn, text: string, signal?: AbortSignal): AsyncGenerator<SpeechAudio> {
  if (wordsOf(text).length === 0) return;
  const turn = open(signal ? { signal } : {});
  turn.push(text);
  turn.end();
  try {
    for await (const ev of turn) if (ev.type === 'audio') yield { pcm: ev.pcm, sampleRate: ev.sampleRate };
  } finally {
    turn.cancel();
  }
}
