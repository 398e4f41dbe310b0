/**
 * A scripted caller's voice: real speech audio for `say` / `speak` steps (espeak-ng, Debian's
 * package), 16 kHz PCM16 mono, sent to the bots that receive audio as 20 ms frames in real time.
 */
import { espeakAvailable, espeakTts } from '../voice/tts.js';

export const SPEECH_RATE = 16_000;
/** 20 ms at 16 kHz, the frame size the call clients deliver. */
export const FRAME_SAMPLES = 320;

export interface SpeechOptions {
  /** White noise mixed in, its RMS relative to the speech's (0.3 ≈ 10 dB signal-to-noise); 0 or absent: none. */
  noise?: number;
  /** false: a sound with no words (a laugh, a cough): its audio, and no transcript follows. */
  words?: boolean;
}

let available: boolean | undefined;
const tts = espeakTts({ sampleRate: SPEECH_RATE });

/** The words as audio, or undefined when espeak-ng is not installed (the words then travel as text only). */
export async function speechPcm(text: string): Promise<Int16Array | undefined> {
  available ??= espeakAvailable();
  if (!available) return undefined;
  return (await tts.synthesize(text)).pcm;
}

/** RMS of the voiced part of `pcm` (samples above 1 % of full scale), so leading silence does not lower it. */
function speechRms(pcm: Int16Array): number {
  let sum = 0;
  let n = 0;
  for (const v of pcm) {
    if (Math.abs(v) < 328) continue;
    sum += v * v;
    n++;
  }
  return n ? Math.sqrt(sum / n) : 0;
}

/**
 * `parts` (the speech first) with white noise added to each, its RMS `level` × the speech's RMS.
 * Uniform noise in [−a, a] has RMS a/√3.
 */
export function withNoise(parts: Int16Array[], level: number): Int16Array[] {
  if (!(level > 0) || parts.length === 0) return parts;
  const amp = speechRms(parts[0]!) * level * Math.sqrt(3);
  return parts.map((p) => {
    const out = new Int16Array(p.length);
    for (let i = 0; i < p.length; i++) out[i] = Math.max(-32768, Math.min(32767, Math.round(p[i]! + (Math.random() * 2 - 1) * amp)));
    return out;
  });
}
