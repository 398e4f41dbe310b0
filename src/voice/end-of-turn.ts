/**
 * End-of-turn models (issue 22 item 5): the caller's recent audio, at 16 kHz, and an ONNX model
 * the user supplies (e.g. Smart Turn) that says whether a pause ends their turn.
 *
 * No weights ship or download here: `onnxEndOfTurn({ model })` takes a file path (or its bytes).
 * onnxruntime-node (already loaded for the Silero VAD) runs it on one thread, imported on first use.
 *
 * Input: by default a rank-2 float tensor `[1, samples]` of the last `maxAudioMs` of audio
 * (16 kHz, floats in [-1, 1], zero-padded at the start to a fixed length), normalised to zero mean
 * and unit variance when `normalize` is set (what Wav2Vec2-style models such as Smart Turn v2
 * expect). Models that take features (Smart Turn v3 takes Whisper log-mel features, `[1, 80, 800]`)
 * get them from the `features` option. Output: the first output's first value, a probability
 * (`output: 'probability'`, default) or a logit (`'logit'`: a sigmoid is applied).
 */
import type { InferenceSession } from 'onnxruntime-node';
import { PatchbayError } from '../core/errors.js';
import { resample } from './tts.js';
import type { EndOfTurnDetector, TurnSoFar } from './turns.js';

export const TURN_RATE = 16_000;

/** The caller's last `maxMs` of audio at 16 kHz, for an end-of-turn model. */
export class TurnAudio {
  private readonly buf: Int16Array;
  private len = 0;

  constructor(readonly maxMs = 8_000) {
    this.buf = new Int16Array(Math.round((maxMs * TURN_RATE) / 1000));
  }

  push(pcm: Int16Array, sampleRate: number): void {
    const at16 = resample(pcm, sampleRate, TURN_RATE);
    const cap = this.buf.length;
    if (at16.length >= cap) {
      this.buf.set(at16.subarray(at16.length - cap));
      this.len = cap;
      return;
    }
    const keep = Math.min(this.len, cap - at16.length);
    this.buf.copyWithin(0, this.len - keep, this.len);
    this.buf.set(at16, keep);
    this.len = keep + at16.length;
  }

  /** A copy of what is held, oldest first. */
  snapshot(): Int16Array {
    return this.buf.slice(0, this.len);
  }

  clear(): void {
    this.len = 0;
  }
}

export interface OnnxEndOfTurnOptions {
  /** The model: a file path, or its bytes. */
  model: string | Uint8Array;
  /** At or above this probability the turn is over (default 0.5). */
  threshold?: number;
  /** How much audio the model sees (default 8 000 ms, Smart Turn's window). */
  maxAudioMs?: number;
  /** Zero mean, unit variance (Wav2Vec2 feature extractors' `do_normalize`; default false). */
  normalize?: boolean;
  /** What the first output is (default `probability`). */
  output?: 'probability' | 'logit';
  /** The model's input tensor from the audio (16 kHz floats in [-1, 1], already padded to `maxAudioMs`), for feature-based models. */
  features?: (audio: Float32Array) => { data: Float32Array; dims: number[] };
}

/** An end-of-turn model in an ONNX file the user supplies. The file is loaded at the first question (or `load()`). */
export function onnxEndOfTurn(o: OnnxEndOfTurnOptions): EndOfTurnDetector & { load(): Promise<void> } {
  const maxMs = o.maxAudioMs ?? 8_000;
  const samples = Math.round((maxMs * TURN_RATE) / 1000);
  let session: Promise<{ ort: typeof import('onnxruntime-node'); s: InferenceSession }> | undefined;
  const load = () =>
    (session ??= (async () => {
      const ort = await import('onnxruntime-node');
      const opts = { intraOpNumThreads: 1, interOpNumThreads: 1 };
      try {
        const s =
          typeof o.model === 'string' ? await ort.InferenceSession.create(o.model, opts) : await ort.InferenceSession.create(o.model, opts);
        return { ort, s };
      } catch (err) {
        throw new PatchbayError('end_of_turn_model', `the end-of-turn model could not be loaded: ${String(err)}`, { cause: err });
      }
    })());
  return {
    threshold: o.threshold ?? 0.5,
    async load() {
      await load();
    },
    async endOfTurn(turn: TurnSoFar): Promise<number> {
      const { ort, s } = await load();
      const audio = padStart(turn.audio16k, samples, o.normalize ?? false);
      const input = o.features ? o.features(audio) : { data: audio, dims: [1, samples] };
      const out = await s.run({ [s.inputNames[0]!]: new ort.Tensor('float32', input.data, input.dims) });
      const first = out[s.outputNames[0]!];
      const v = Number(first?.data[0]);
      if (!Number.isFinite(v)) throw new PatchbayError('end_of_turn_model', 'the end-of-turn model gave no number');
      return o.output === 'logit' ? 1 / (1 + Math.exp(-v)) : v;
    },
    async close() {
      const s = session;
      session = undefined;
      if (s) await (await s).s.release();
    },
  };
}

/** The last `n` samples as floats in [-1, 1], zeros before them when there are fewer. */
function padStart(pcm: Int16Array, n: number, normalize: boolean): Float32Array {
  const out = new Float32Array(n);
  const src = pcm.length > n ? pcm.subarray(pcm.length - n) : pcm;
  const off = n - src.length;
  for (let i = 0; i < src.length; i++) out[off + i] = src[i]! / 32768;
  if (!normalize) return out;
  let mean = 0;
  for (const v of out) mean += v;
  mean /= n;
  let varSum = 0;
  for (const v of out) varSum += (v - mean) ** 2;
  const std = Math.sqrt(varSum / n + 1e-7);
  for (let i = 0; i < n; i++) out[i] = (out[i]! - mean) / std;
  return out;
}
