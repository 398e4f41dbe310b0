/**
 * The caller's utterances for a request-per-utterance speech-to-text (stt-openai.ts): 16 kHz audio
 * kept in order, cut by patchbay's Silero VAD (vad.ts). An utterance starts `preRollMs` before the
 * VAD's speech-start (its first syllable is not clipped) and ends at its speech-end; one longer
 * than `maxMs` is cut there and sent while the caller goes on (that piece is not the end of the
 * turn). Audio outside an utterance is dropped once older than the pre-roll, so memory is bounded
 * by `maxMs`.
 */
import { VoiceActivity, type VadEvent, type VadOptions } from './vad.js';

export const UTTERANCE_RATE = 16_000;

export interface Utterance {
  pcm: Int16Array;
  /** Stream audio time of its last sample, ms. */
  endMs: number;
  /** False when cut at `maxMs` while the caller was still speaking. */
  endOfTurn: boolean;
}

export interface UtteranceOptions {
  preRollMs: number;
  maxMs: number;
  vad?: VadOptions;
}

export class Utterances {
  /** 16 kHz audio from sample `base` on (absolute sample index since the stream's first). */
  private chunks: Int16Array[] = [];
  private base = 0;
  private held = 0;
  /** Samples the VAD has judged. */
  private judged = 0;
  /** Absolute sample where the utterance in progress starts. */
  private start: number | undefined;
  private chain: Promise<void> = Promise.resolve();

  private constructor(
    private readonly vad: VoiceActivity,
    private readonly o: UtteranceOptions,
    private readonly on: { speechStarted(atMs: number): void; utterance(u: Utterance): void },
  ) {}

  static async create(o: UtteranceOptions, on: Utterances['on']): Promise<Utterances> {
    return new Utterances(await VoiceActivity.create(o.vad ?? {}), o, on);
  }

  /** Adds 16 kHz audio; the VAD's verdicts on it follow (in order). */
  push(pcm: Int16Array): void {
    if (pcm.length === 0) return;
    this.chunks.push(pcm);
    this.held += pcm.length;
    this.chain = this.chain
      .then(() => this.vad.push(pcm, UTTERANCE_RATE))
      .then((evs) => this.judge(evs, pcm.length))
      .catch(() => undefined);
  }

  /** Waits for the VAD to judge what was pushed; then hands over the utterance in progress (if any) as the end of a turn. */
  async flush(): Promise<void> {
    await this.chain;
    if (this.start !== undefined) this.emit(this.judged, true);
  }

  private judge(evs: VadEvent[], samples: number): void {
    for (const ev of evs) {
      const at = Math.round((ev.atMs * UTTERANCE_RATE) / 1000);
      if (ev.type === 'speech-start') {
        this.start = Math.max(this.base, at - this.ms(this.o.preRollMs));
        this.on.speechStarted(ev.atMs);
      } else if (this.start !== undefined) {
        this.emit(Math.min(at, this.base + this.held), true);
      }
    }
    this.judged += samples;
    const cap = this.ms(this.o.maxMs);
    while (this.start !== undefined && this.judged - this.start >= cap) this.emit(this.start + cap, false);
    this.trim(this.start ?? this.judged - this.ms(this.o.preRollMs));
  }

  private emit(end: number, endOfTurn: boolean): void {
    const start = this.start ?? end;
    this.start = endOfTurn ? undefined : end;
    if (end > start) this.on.utterance({ pcm: this.slice(start, end), endMs: Math.round((end * 1000) / UTTERANCE_RATE), endOfTurn });
  }

  private ms(ms: number): number {
    return Math.round((ms * UTTERANCE_RATE) / 1000);
  }

  /** Samples [from, to) (absolute), from what is held. */
  private slice(from: number, to: number): Int16Array {
    const out = new Int16Array(to - from);
    let at = this.base;
    for (const c of this.chunks) {
      const lo = Math.max(from, at);
      const hi = Math.min(to, at + c.length);
      if (hi > lo) out.set(c.subarray(lo - at, hi - at), lo - from);
      at += c.length;
      if (at >= to) break;
    }
    return out;
  }

  /** Drops whole chunks that end before `keepFrom`. */
  private trim(keepFrom: number): void {
    while (this.chunks.length > 0 && this.base + this.chunks[0]!.length <= keepFrom) {
      const c = this.chunks.shift()!;
      this.base += c.length;
      this.held -= c.length;
    }
  }
}
