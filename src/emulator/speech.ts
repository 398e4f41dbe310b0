/**
 * A scripted caller's voice: real speech audio for `speak` steps (espeak-ng, Debian's package),
 * 16 kHz PCM16 mono, sent to the bots that receive audio as 20 ms frames in real time.
 */
import { espeakAvailable, espeakTts } from '../voice/tts.js';

export const SPEECH_RATE = 16_000;
/** 20 ms at 16 kHz, the frame size the call clients deliver. */
export const FRAME_SAMPLES = 320;

let available: boolean | undefined;
const tts = espeakTts({ sampleRate: SPEECH_RATE });

/** The words as audio, or undefined when espeak-ng is not installed (the words then travel as text only). */
export async function speechPcm(text: string): Promise<Int16Array | undefined> {
  available ??= espeakAvailable();
  if (!available) return undefined;
  return (await tts.synthesize(text)).pcm;
}
