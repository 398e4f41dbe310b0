import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { VoiceActivity, type VadEvent } from '../../src/voice/vad.js';
import { resample } from '../../src/voice/tts.js';
import { decodeWav } from '../../src/voice/wav.js';

/** Real speech: espeak-ng (Debian), 16 kHz PCM16. */
function speak(text: string): Int16Array {
  const r = spawnSync('espeak-ng', ['--stdout', '-v', 'en-us'], { input: text, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`espeak-ng failed (apt-get install espeak-ng): ${r.stderr?.toString()}`);
  const wav = decodeWav(r.stdout);
  return resample(wav.pcm, wav.sampleRate, 16_000);
}
const silence = (ms: number, rate = 16_000) => new Int16Array(Math.round((rate * ms) / 1000));
function noise(ms: number, amplitude: number, rate = 16_000): Int16Array {
  const out = new Int16Array(Math.round((rate * ms) / 1000));
  let seed = 7;
  for (let i = 0; i < out.length; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    out[i] = Math.round(((seed / 0x7fffffff) * 2 - 1) * amplitude);
  }
  return out;
}
function concat(...parts: Int16Array[]): Int16Array {
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
/** Feeds `pcm` as 20 ms frames, like the call client delivers them. */
async function feed(vad: VoiceActivity, pcm: Int16Array, rate = 16_000): Promise<VadEvent[]> {
  const frame = (rate * 20) / 1000;
  const events: VadEvent[] = [];
  for (let i = 0; i < pcm.length; i += frame) events.push(...(await vad.push(pcm.subarray(i, i + frame), rate)));
  return events;
}

describe('voice activity (Silero VAD on real speech)', () => {
  it('finds the start and the end of a spoken turn between silences', async () => {
    const words = speak('Hello, I would like to check my account balance please.');
    const speechMs = (words.length / 16_000) * 1000;
    const vad = await VoiceActivity.create({ minSilenceMs: 500 });
    const events = await feed(vad, concat(silence(1000), words, silence(1500)));
    expect(events.map((e) => e.type)).toEqual(['speech-start', 'speech-end']);
    const [start, end] = events as [VadEvent, Extract<VadEvent, { type: 'speech-end' }>];
    // espeak's WAV has a little lead-in; the start is found within ~150 ms of where the words are.
    expect(start.atMs).toBeGreaterThan(900);
    expect(start.atMs).toBeLessThan(1300);
    // The end of turn fires minSilenceMs after the words stop (espeak pads its WAV with a little silence).
    const wordsEnd = 1000 + speechMs;
    expect(end.atMs).toBeGreaterThan(wordsEnd);
    expect(end.atMs).toBeLessThan(wordsEnd + 800);
    expect(vad.inSpeech).toBe(false);
  });

  it('a pause shorter than minSilenceMs does not end the turn', async () => {
    const vad = await VoiceActivity.create({ minSilenceMs: 700 });
    const events = await feed(
      vad,
      concat(silence(500), speak('My number is'), silence(300), speak('five five five, one two.'), silence(1200)),
    );
    expect(events.map((e) => e.type)).toEqual(['speech-start', 'speech-end']);
  });

  it('steady noise and silence are not speech; 8 kHz telephone audio works too', async () => {
    const quiet = await VoiceActivity.create();
    expect(await feed(quiet, concat(silence(500), noise(1500, 300), silence(500)))).toEqual([]);
    const narrow = await VoiceActivity.create();
    const words8k = resample(speak('Can you transfer me to a person?'), 16_000, 8_000);
    const events = await feed(narrow, concat(silence(500, 8000), words8k, silence(1200, 8000)), 8000);
    expect(events.map((e) => e.type)).toEqual(['speech-start', 'speech-end']);
  });
});
