/**
 * Local recording (RECORDING=local, or a bot's `recording: {mode: 'local'}`): the worker writes
 * both sides of the call — the caller on channel 1, the bot on channel 2 — to a 16 kHz PCM16
 * stereo WAV under RECORDINGS_DIR as the call goes.
 *
 * Why WAV and not Opus in Ogg: no Opus encoder on npm works on Node 20 without a native build or
 * a WebAssembly bundle we would have to vet and keep (docs/operations.md, "Recording"); WAV needs
 * none, and its header is fixed up after every write, so a worker killed at any moment (SIGKILL
 * included) leaves a playable file up to its last flush (≤ FLUSH_MS behind).
 *
 * Memory is bounded: audio is held only from the last flush to what is still to be played (a bot's
 * utterance arrives whole, ahead of its play-out), at most MAX_PENDING_MS of it; written pieces are
 * dropped. The caller's frames are placed at the time they arrive, the bot's at the time it sends
 * them (after what it is still playing); an interrupted utterance is cut where it was cut.
 */
import { resample } from '../../voice/resample.js';
import { wavHeader } from '../../voice/wav.js';
import { mkdirSync, openSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';

export const LOCAL_RATE = 16_000;
/** How often audio is written (and the header fixed up). */
const FLUSH_MS = 250;
/** Audio this recent is not written yet (a frame later than this goes just after what is written). */
const LATENESS_MS = 500;
/** At most this much audio waits in memory (longer bot utterances are cut in the recording). */
const MAX_PENDING_MS = 60_000;
/**
 * A caller frame arriving up to this much after where the last one ended continues it: the
 * caller's audio is a stream of frames, which a busy worker receives late and in bunches; only a
 * longer silence in the stream (no frames) is a real gap. Timing error at worst: this much.
 */
const JOIN_TOLERANCE = (LOCAL_RATE * 3) / 2;
/** The bot's audio is sent whole, ahead of play-out: one sent this soon after the last ended follows it. */
const BOT_JOIN = LOCAL_RATE / 10;

type Leg = 0 | 1;
interface Piece {
  leg: Leg;
  at: number;
  pcm: Int16Array;
}

/** A copy at 16 kHz (what is placed is kept: never the caller's own buffer). */
function to16k(pcm: Int16Array, rate: number): Int16Array {
  return rate === LOCAL_RATE ? Int16Array.from(pcm) : resample(pcm, rate, LOCAL_RATE);
}

export class LocalRecorder {
  readonly file: string;
  private readonly fd: number;
  private readonly startedAtMs = Date.now();
  private pieces: Piece[] = [];
  /** Samples (per channel) written so far. */
  private written = 0;
  private readonly ends: [number, number] = [0, 0];
  private readonly timer: NodeJS.Timeout;
  private closed = false;
  /** Paused (PCI): nothing is kept until `resume`. */
  private paused = false;
  /** After a resume, nothing of the caller's before this sample is kept (the tail of a key's tone). */
  private resumeAt = 0;

  constructor(dir: string, name: string) {
    mkdirSync(dir, { recursive: true });
    this.file = join(dir, name);
    this.fd = openSync(this.file, 'w');
    writeSync(this.fd, wavHeader(2, LOCAL_RATE, 0), 0, 44, 0);
    this.timer = setInterval(() => this.flush(Date.now() - LATENESS_MS), FLUSH_MS);
    this.timer.unref();
  }

  private sampleAt(ms: number): number {
    return Math.max(0, Math.round(((ms - this.startedAtMs) * LOCAL_RATE) / 1000));
  }

  private place(leg: Leg, at: number, pcm: Int16Array): Piece | undefined {
    if (this.closed || this.paused || pcm.length === 0) return undefined;
    if (leg === 0 && at < this.resumeAt) {
      pcm = pcm.subarray(Math.min(pcm.length, this.resumeAt - at));
      at = this.resumeAt;
      if (pcm.length === 0) return undefined;
    }
    const limit = this.sampleAt(Date.now() + MAX_PENDING_MS);
    const cut = pcm.subarray(0, Math.max(0, Math.min(pcm.length, limit - at)));
    const piece: Piece = { leg, at: Math.max(at, this.written), pcm: cut };
    this.pieces.push(piece);
    this.ends[leg] = piece.at + cut.length;
    return piece;
  }

  /** A frame of the caller's audio, heard now. */
  caller(pcm: Int16Array, sampleRate: number): void {
    let at = this.sampleAt(Date.now());
    // Just after a resume: the tail of a key's tone; dropped, not moved.
    if (at < this.resumeAt) return;
    if (at < this.ends[0] + JOIN_TOLERANCE) at = this.ends[0];
    this.place(0, at, to16k(pcm, sampleRate));
  }

  /**
   * The bot's audio, sent now: played after what it is still playing. Returns `cut()`, for an
   * utterance stopped before its end (barge-in): the recording keeps what was played.
   */
  bot(pcm: Int16Array, sampleRate: number): () => void {
    const now = this.sampleAt(Date.now());
    const at = this.ends[1] > now - BOT_JOIN ? Math.max(this.ends[1], now) : now;
    const piece = this.place(1, at, to16k(pcm, sampleRate));
    return () => {
      if (!piece) return;
      const played = Math.max(0, this.sampleAt(Date.now()) - piece.at);
      if (played < piece.pcm.length) {
        piece.pcm = piece.pcm.subarray(0, played);
        this.ends[1] = piece.at + played;
      }
    };
  }

  /** From now on silence: what is still to be played is cut here, what comes is dropped. */
  pause(): void {
    this.paused = true;
    const now = this.sampleAt(Date.now());
    for (const p of this.pieces) if (p.at + p.pcm.length > now) p.pcm = p.pcm.subarray(0, Math.max(0, now - p.at));
    this.ends[0] = Math.min(this.ends[0], now);
    this.ends[1] = Math.min(this.ends[1], now);
  }

  /** Keeps audio again: the bot's at once, the caller's from `guardMs` from now. */
  resume(guardMs: number): void {
    if (!this.paused) return;
    this.paused = false;
    this.resumeAt = this.sampleAt(Date.now() + guardMs);
    this.ends[0] = this.resumeAt;
  }

  /** Writes everything before `untilMs`, then fixes up the header. */
  private flush(untilMs: number): void {
    if (this.closed) return;
    const until = this.sampleAt(untilMs);
    if (until <= this.written) return;
    const n = until - this.written;
    const frames = new Int16Array(n * 2);
    for (const p of this.pieces) {
      const from = Math.max(p.at, this.written);
      const to = Math.min(p.at + p.pcm.length, until);
      for (let s = from; s < to; s++) {
        const k = (s - this.written) * 2 + p.leg;
        frames[k] = Math.max(-32768, Math.min(32767, frames[k]! + p.pcm[s - p.at]!));
      }
    }
    const data = Buffer.from(frames.buffer, frames.byteOffset, frames.byteLength);
    writeSync(this.fd, data, 0, data.length, 44 + this.written * 4);
    this.written = until;
    writeSync(this.fd, wavHeader(2, LOCAL_RATE, this.written * 4), 0, 44, 0);
    this.pieces = this.pieces.filter((p) => p.at + p.pcm.length > until);
  }

  /** What the file holds so far. */
  get durationMs(): number {
    return (this.written * 1000) / LOCAL_RATE;
  }

  /** Writes what was played until now and closes the file. Idempotent. */
  close(): void {
    if (this.closed) return;
    clearInterval(this.timer);
    this.flush(Date.now());
    this.closed = true;
    closeSync(this.fd);
  }
}
