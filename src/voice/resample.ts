/** PCM16 mono resampling (tts.ts re-exports it). */

/** Linear-interpolation resampling of PCM16 mono (speech quality; fine for telephony rates). */
export function resample(pcm: Int16Array, from: number, to: number): Int16Array {
  if (from === to || pcm.length === 0) return pcm;
  const outLen = Math.max(1, Math.round((pcm.length * to) / from));
  const out = new Int16Array(outLen);
  const step = from / to;
  for (let i = 0; i < outLen; i++) {
    const pos = i * step;
    const i0 = Math.floor(pos);
    const i1 = Math.min(i0 + 1, pcm.length - 1);
    const frac = pos - i0;
    const a = pcm[Math.min(i0, pcm.length - 1)]!;
    const b = pcm[i1]!;
    out[i] = Math.round(a + (b - a) * frac);
  }
  return out;
}
