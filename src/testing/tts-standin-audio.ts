/**
 * What the streaming TTS stand-ins (Cartesia, ElevenLabs) share: real speech for a transcript
 * (espeak-ng, resampled to the rate the client asked for) with word times spread over that audio,
 * and a pacer for the audio.
 */
import { espeakAvailable, espeakTts } from '../voice/tts.js';
import { estimateWords, type TtsWord } from '../voice/tts-stream.js';

export interface StandInSpeech {
  pcm: Int16Array;
  sampleRate: number;
  /** The transcript's words, with times (ms) from the start of this audio. */
  words: TtsWord[];
}

/** Latencies of a streaming TTS stand-in. */
export interface TtsPace {
  /** Delay before a context's first audio (default 150 ms). */
  firstChunkMs?: number;
  /** Audio per chunk in ms (default 100). */
  chunkMs?: number;
  /** Delay between chunks (default chunkMs / 4: faster than real time, like the vendors). */
  chunkGapMs?: number;
}

const cache = new Map<string, StandInSpeech>();

/** Real speech for `text` at `sampleRate` (a tone as long as the text when espeak-ng is missing). */
export async function speechFor(text: string, sampleRate: number): Promise<StandInSpeech> {
  const key = `${sampleRate}\u0000${text}`;
  const hit = cache.get(key);
  if (hit) return hit;
  let pcm: Int16Array;
  if (text.trim() === '') pcm = new Int16Array(0);
  else if (espeakAvailable()) pcm = (await espeakTts({ sampleRate }).synthesize(text)).pcm;
  else {
    pcm = new Int16Array(Math.round(text.length * 0.06 * sampleRate));
    for (let i = 0; i < pcm.length; i++) pcm[i] = Math.round(3000 * Math.sin((2 * Math.PI * 220 * i) / sampleRate));
  }
  const speech = { pcm, sampleRate, words: estimateWords(text, 0, (pcm.length / sampleRate) * 1000) };
  if (cache.size > 200) cache.clear();
  cache.set(key, speech);
  return speech;
}

/** PCM16 samples as little-endian bytes. */
export function pcmBytes(pcm: Int16Array): Buffer {
  const b = Buffer.alloc(pcm.length * 2);
  for (let i = 0; i < pcm.length; i++) b.writeInt16LE(pcm[i]!, i * 2);
  return b;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
