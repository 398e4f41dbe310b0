/**
 * Noise suppression on the caller's audio (issue 22 item 4): RNNoise (xiph/rnnoise, BSD-3-Clause),
 * compiled to WebAssembly by the Echogarden project (`@echogarden/rnnoise-wasm`, BSD-3-Clause, an
 * Emscripten build that loads in Node; `@shiguredo/rnnoise-wasm` refuses Node, and
 * `@jitsi/rnnoise-wasm`'s entry point does not load as ESM in Node).
 *
 * RNNoise takes 10 ms frames of 480 samples at 48 kHz, floats in the int16 range. The call's audio
 * (8 kHz phone audio, 16 kHz from the emulator) is resampled up to 48 kHz, denoised frame by
 * frame, and resampled back to its own rate. The output is the same length as the input and lags
 * it by one RNNoise frame (10 ms). One WASM module per process, one RNNoise state per caller.
 */
import { PatchbayError } from '../core/errors.js';
import { resample } from './tts.js';

/** The parts of the Emscripten module that patchbay uses. */
interface RnnoiseModule {
  _rnnoise_create(model: number): number;
  _rnnoise_destroy(state: number): void;
  _rnnoise_process_frame(state: number, out: number, input: number): number;
  _malloc(bytes: number): number;
  _free(ptr: number): void;
  HEAPF32: Float32Array;
}

const RATE = 48_000;
const FRAME = 480;

let wasm: Promise<RnnoiseModule> | undefined;

/** The package name, in one place (the integrator installs it; see docs/voice.md). */
const PACKAGE = '@echogarden/rnnoise-wasm';

async function loadModule(): Promise<RnnoiseModule> {
  try {
    const m = (await import(PACKAGE)) as { default: () => Promise<RnnoiseModule> };
    return await m.default();
  } catch (err) {
    throw new PatchbayError('noise_suppression', `RNNoise (${PACKAGE}) could not be loaded: ${String(err)}`, { cause: err });
  }
}

/** One caller's noise suppression. Feed frames in order; `close()` frees its state. */
export class NoiseSuppressor {
  private pending = new Float32Array(0);
  /** Denoised 48 kHz samples not handed out yet (starts with one frame of silence: the 10 ms lag). */
  private out: Float32Array = new Float32Array(FRAME);
  private closed = false;
  /** RNNoise's voice probability of the last frame (0..1). */
  lastVoiceProbability = 0;

  private constructor(
    private readonly m: RnnoiseModule,
    private readonly state: number,
    private readonly buf: number,
  ) {}

  static async create(): Promise<NoiseSuppressor> {
    wasm ??= loadModule();
    let m: RnnoiseModule;
    try {
      m = await wasm;
    } catch (err) {
      wasm = undefined;
      throw err;
    }
    return new NoiseSuppressor(m, m._rnnoise_create(0), m._malloc(FRAME * 4));
  }

  /** Denoises PCM16 mono at `sampleRate`; returns as many samples at the same rate. */
  process(pcm: Int16Array, sampleRate: number): Int16Array {
    if (this.closed || pcm.length === 0) return pcm;
    const up = resample(pcm, sampleRate, RATE);
    const joined = new Float32Array(this.pending.length + up.length);
    joined.set(this.pending, 0);
    for (let i = 0; i < up.length; i++) joined[this.pending.length + i] = up[i]!;
    const frames = Math.floor(joined.length / FRAME);
    const out = new Float32Array(this.out.length + frames * FRAME);
    out.set(this.out, 0);
    const heap = this.buf >> 2;
    for (let f = 0; f < frames; f++) {
      this.m.HEAPF32.set(joined.subarray(f * FRAME, (f + 1) * FRAME), heap);
      this.lastVoiceProbability = this.m._rnnoise_process_frame(this.state, this.buf, this.buf);
      out.set(this.m.HEAPF32.subarray(heap, heap + FRAME), this.out.length + f * FRAME);
    }
    this.pending = joined.slice(frames * FRAME);
    const n = Math.min(up.length, out.length);
    this.out = out.slice(n);
    const at48 = new Int16Array(n);
    for (let i = 0; i < n; i++) at48[i] = Math.max(-32768, Math.min(32767, Math.round(out[i]!)));
    const back = resample(at48, RATE, sampleRate);
    if (back.length === pcm.length) return back;
    const fit = new Int16Array(pcm.length);
    fit.set(back.subarray(0, pcm.length));
    return fit;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.m._rnnoise_destroy(this.state);
    this.m._free(this.buf);
  }
}
