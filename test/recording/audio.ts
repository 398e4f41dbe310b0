/** Test helpers: read the emulator's WAV recordings and find known clips in them (normalised cross-correlation). */

export interface Wav {
  sampleRate: number;
  channels: Int16Array[];
}

export function readWav(buf: Buffer): Wav {
  if (buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') throw new Error('not a WAV file');
  const channels = buf.readUInt16LE(22);
  const sampleRate = buf.readUInt32LE(24);
  const dataBytes = buf.readUInt32LE(40);
  const frames = Math.floor(Math.min(dataBytes, buf.length - 44) / (2 * channels));
  const out = Array.from({ length: channels }, () => new Int16Array(frames));
  for (let i = 0; i < frames; i++) for (let c = 0; c < channels; c++) out[c]![i] = buf.readInt16LE(44 + (i * channels + c) * 2);
  return { sampleRate, channels: out };
}

/** Averages `factor` samples into one (a crude low-pass and decimation, enough to compare speech shapes quickly). */
export function decimate(x: Int16Array, factor: number): Float64Array {
  const out = new Float64Array(Math.floor(x.length / factor));
  for (let i = 0; i < out.length; i++) {
    let s = 0;
    for (let k = 0; k < factor; k++) s += x[i * factor + k]!;
    out[i] = s / factor;
  }
  return out;
}

/** Best normalised cross-correlation of `clip` in `signal` over every lag, and the lag (in samples) where it is. */
export function findClip(signal: Float64Array, clip: Float64Array): { score: number; lag: number } {
  const n = clip.length;
  let clipEnergy = 0;
  for (const v of clip) clipEnergy += v * v;
  let best = { score: 0, lag: -1 };
  if (signal.length < n || clipEnergy === 0) return best;
  let win = 0;
  for (let i = 0; i < n; i++) win += signal[i]! * signal[i]!;
  for (let lag = 0; lag + n <= signal.length; lag++) {
    if (lag > 0) win += signal[lag + n - 1]! ** 2 - signal[lag - 1]! ** 2;
    if (win <= 1e-9) continue;
    let dot = 0;
    for (let i = 0; i < n; i++) dot += signal[lag + i]! * clip[i]!;
    const score = dot / Math.sqrt(win * clipEnergy);
    if (score > best.score) best = { score, lag };
  }
  return best;
}

/** Goertzel: the power of `freq` in `x` (a block of samples at `rate`). */
export function goertzel(x: Int16Array, from: number, n: number, freq: number, rate: number): number {
  const k = 2 * Math.cos((2 * Math.PI * freq) / rate);
  let s1 = 0;
  let s2 = 0;
  for (let i = from; i < from + n && i < x.length; i++) {
    const s0 = x[i]! + k * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  return s1 * s1 + s2 * s2 - k * s1 * s2;
}

const ROWS = [697, 770, 852, 941];
const COLS = [1209, 1336, 1477, 1633];
const KEYS = ['123A', '456B', '789C', '*0#D'];

/**
 * The DTMF keys heard in `x` (20 ms blocks): a block whose strongest row and column tones hold
 * most of its energy. Consecutive blocks of one key count once.
 */
export function dtmfKeys(x: Int16Array, rate: number): Array<{ key: string; atSec: number }> {
  const n = Math.round(rate / 50);
  const out: Array<{ key: string; atSec: number }> = [];
  let last = '';
  for (let from = 0; from + n <= x.length; from += n) {
    let energy = 0;
    for (let i = from; i < from + n; i++) energy += x[i]! * x[i]!;
    const rows = ROWS.map((f) => goertzel(x, from, n, f, rate));
    const cols = COLS.map((f) => goertzel(x, from, n, f, rate));
    const r = rows.indexOf(Math.max(...rows));
    const c = cols.indexOf(Math.max(...cols));
    // A pure tone of amplitude A over n samples has Goertzel power ≈ (A·n/2)², energy ≈ A²·n/2: ratio n/2.
    const share = (rows[r]! + cols[c]!) / ((energy * n) / 2 + 1e-9);
    const key = energy > n * 1e4 && share > 0.6 ? KEYS[r]![c]! : '';
    if (key && key !== last) out.push({ key, atSec: from / rate });
    last = key;
  }
  return out;
}
