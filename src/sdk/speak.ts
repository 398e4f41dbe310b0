/**
 * Speaking one turn of the bot (`say()` with streamed text, or a phrase the vendor streams): the
 * text's pieces go into one TTS turn (one vendor context, tts-stream.ts) as they arrive, the turn's
 * audio is played as it comes, and what was played is counted so that, when the caller barges in,
 * the result says what they actually heard: the words whose audio had started (from the vendor's word
 * timestamps, or from the played share of the audio when there are none).
 *
 * When the vendor fails mid-turn (disconnect, 429, bad key), what was not heard yet and the rest of
 * the text are spoken by the fallback (espeak-ng, or text), the bot is told (`onError`, and
 * `Spoken.error`), and the caller is never left in silence.
 */
import type { Logger } from 'pino';
import type { CallClient } from '../daily/call-client.js';
import { asError } from '../core/errors.js';
import { heardText, openTurn, pieceTurn, wordsOf, type TtsTurn, type TtsTurnEvent, type TtsWord } from '../voice/tts-stream.js';
import { TtsError, type SpeechAudio, type TtsProvider } from '../voice/tts-types.js';

/** What `say()` resolves with. */
export interface Spoken {
  /** What the caller heard: everything, or after an interruption the words played up to it. */
  text: string;
  /** Everything the bot meant to say (the stream's pieces, joined). */
  said: string;
  /** The caller barged in (a key or speech) before the end. */
  interrupted: boolean;
  /** The TTS vendor failed and the rest was spoken by the fallback (espeak-ng or text). */
  error?: TtsError;
}

export interface SpeakDeps {
  client: Pick<CallClient, 'sendAudio'>;
  tts: TtsProvider;
  fallback: TtsProvider;
  logger: Logger;
  report(text: string): void;
  /** Told when the vendor failed and the fallback took over. */
  onError?: ((err: TtsError) => void) | undefined;
}

/** A vendor that sends nothing this long while text waits for its audio has failed (the fallback takes over). */
export const TTS_STALL_MS = 5_000;

/** One TTS turn of the bot's turn (a second one when the fallback took over). */
class Segment {
  readonly pieces: Array<{ text: string; startTok: number }> = [];
  readonly words: TtsWord[] = [];
  tokens = 0;
  playedMs = 0;
  receivedMs = 0;
  /** Words shown as text (audio-less chunks): heard once shown. */
  shownTokens = 0;
  announced = 0;
  /** Piece-built turns mark where each piece's audio begins. */
  marked = false;
  marks = 0;

  ended = false;

  constructor(readonly turn: TtsTurn) {}

  end(): void {
    this.ended = true;
    this.turn.end();
  }

  /** Text pushed whose audio has not begun yet, or an ended turn that has not finished. */
  waiting(): boolean {
    return this.ended || this.announced < this.pieces.length;
  }

  push(text: string): void {
    this.pieces.push({ text, startTok: this.tokens });
    this.tokens += wordsOf(text).length;
    this.turn.push(text);
  }

  /**
   * The pieces to show with audio that ends at `endMs`: one per mark (piece-built turns), else
   * those whose first word starts before `endMs` (all pushed ones while no words came yet); `all`
   * at the end of the turn.
   */
  due(endMs: number, all = false): string[] {
    const out: string[] = [];
    while (this.announced < this.pieces.length) {
      const p = this.pieces[this.announced]!;
      const w = this.words[p.startTok];
      const ok = all || (this.marked ? this.marks > 0 : w ? w.startMs < endMs : this.words.length === 0);
      if (!ok) break;
      if (this.marked && this.marks > 0) this.marks--;
      out.push(p.text);
      this.announced++;
    }
    return out;
  }

  heardWords(): string[] {
    const text = this.pieces.map((p) => p.text).join(' ');
    const byAudio = wordsOf(heardText(text, this.words, this.playedMs, this.receivedMs));
    const all = wordsOf(text);
    return all.slice(0, Math.max(byAudio.length, Math.min(this.shownTokens, all.length)));
  }

  /** The words pushed but not heard: what the fallback must still say. */
  unheard(): string {
    return wordsOf(this.pieces.map((p) => p.text).join(' '))
      .slice(this.heardWords().length)
      .join(' ');
  }
}

const msOf = (a: SpeechAudio) => (a.sampleRate > 0 ? (a.pcm.length / a.sampleRate) * 1000 : 0);

/**
 * Speaks `pieces` as one turn. Resolves with what was heard; `signal` (call ended, or barge-in) stops
 * the playing at once. Rejects when the text source fails, or when the fallback fails too.
 */
export async function speakTurn(deps: SpeakDeps, pieces: AsyncIterable<string>, signal: AbortSignal): Promise<Spoken> {
  const segments: Segment[] = [new Segment(openTurn(deps.tts, { signal }))];
  const current = () => segments.at(-1)!;
  const said: string[] = [];
  let sourceDone = false;
  let sourceError: { err: unknown } | undefined;
  let error: TtsError | undefined;
  const feeding = (async () => {
    try {
      for await (const p of pieces) {
        if (signal.aborted) return;
        said.push(p);
        current().push(p);
      }
    } catch (err) {
      if (signal.aborted) return; // barge-in aborted the source too
      sourceError = { err };
      current().turn.cancel();
    } finally {
      sourceDone = true;
      current().end();
    }
  })();
  for (;;) {
    const seg = current();
    try {
      await play(deps, seg, signal);
      break;
    } catch (err) {
      if (signal.aborted || sourceError) break;
      // Not the vendor (the call client failed), or the fallback failed too: say() rejects.
      if (!(err instanceof TtsError) || segments.length > 1) throw err;
      error = err;
      deps.logger.warn(
        { err: err.message, status: err.status, tts: deps.tts.name },
        'TTS vendor failed mid-turn; the rest is spoken by the fallback',
      );
      deps.onError?.(err);
      // Synchronous from here to the push: the feeder pushes into the new segment from now on.
      const next = new Segment(pieceTurn(deps.fallback, { signal }));
      const rest = seg.unheard();
      segments.push(next);
      if (rest) next.push(rest);
      if (sourceDone) next.end();
    }
  }
  if (!signal.aborted) await feeding;
  if (sourceError) throw asError(sourceError.err);
  const heard = segments.flatMap((s) => s.heardWords()).join(' ');
  return { text: signal.aborted ? heard : said.join(' '), said: said.join(' '), interrupted: signal.aborted, ...(error ? { error } : {}) };
}

/** Plays a segment's events until its turn ends; counts what was played. Rejects with the turn's error. */
async function play(deps: SpeakDeps, seg: Segment, signal: AbortSignal): Promise<void> {
  const events = seg.turn[Symbol.asyncIterator]();
  try {
    for (let r = await nextEvent(deps, seg, events); !r.done; r = await nextEvent(deps, seg, events)) {
      const ev = r.value;
      if (signal.aborted) return;
      if (ev.type === 'mark') {
        seg.marked = true;
        seg.marks++;
      } else if (ev.type === 'words') seg.words.push(...ev.words);
      else await playChunk(deps, seg, ev, signal);
    }
    // Pieces the words never placed (a vendor that normalised them away): shown now, as text.
    const late = seg.due(Infinity, true);
    if (late.length > 0 && !signal.aborted) await playChunk(deps, seg, { pcm: new Int16Array(0), sampleRate: 16_000 }, signal, late);
  } finally {
    if (signal.aborted) seg.turn.cancel();
  }
}

/** The turn's next event; a vendor silent for TTS_STALL_MS while text waits fails the turn. */
async function nextEvent(deps: SpeakDeps, seg: Segment, events: AsyncIterator<TtsTurnEvent>): Promise<IteratorResult<TtsTurnEvent>> {
  const next = events.next();
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<'stalled'>((r) => (timer = setTimeout(() => r('stalled'), TTS_STALL_MS)));
    const r = await Promise.race([next, stalled]).finally(() => clearTimeout(timer));
    if (r !== 'stalled') return r;
    if (seg.waiting()) {
      next.catch(() => undefined);
      seg.turn.cancel();
      throw new TtsError(`${deps.tts.name} sent no audio for ${TTS_STALL_MS} ms`, { retryable: true });
    }
  }
}

async function playChunk(deps: SpeakDeps, seg: Segment, audio: SpeechAudio, signal: AbortSignal, forced?: string[]): Promise<void> {
  const ms = msOf(audio);
  const text = forced ?? seg.due(seg.receivedMs + Math.max(ms, 1));
  for (const t of text) deps.report(t);
  seg.receivedMs += ms;
  if (ms === 0 && text.length === 0) return;
  if (ms === 0) seg.shownTokens = seg.announced === seg.pieces.length ? seg.tokens : (seg.pieces[seg.announced]?.startTok ?? seg.tokens);
  const started = Date.now();
  try {
    const out = text.length > 0 ? { ...audio, text: text.join(' ') } : { ...audio, continues: true };
    await deps.client.sendAudio(out, signal);
    seg.playedMs += ms;
  } catch (err) {
    seg.playedMs += Math.min(ms, Date.now() - started);
    if (signal.aborted) return;
    throw err;
  }
}

/** A phrase played whole and interrupted after `playedMs`: the share of its words heard (all of it, as text, when it had no audio). */
export function heardOfPhrase(text: string, audio: SpeechAudio, playedMs: number): Spoken {
  const ms = msOf(audio);
  return { text: ms > 0 ? heardText(text, [], playedMs, ms) : text, said: text, interrupted: true };
}

/** A phrase as a stream of one piece (a phrase a vendor streams is a turn of its own). */
export async function* onePiece(text: string): AsyncGenerator<string> {
  yield text;
}
