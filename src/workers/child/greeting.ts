/**
 * A bot's greeting (`defineBot({ greeting })`): text, said through the TTS cache (synthesized ahead
 * in a warm slot: src/workers/child/warm.ts), or `{ audio: 'file.wav' }`, a PCM16 WAV file (a path relative
 * to the bot's file) decoded once per worker and kept in memory, so a warm slot plays it with no
 * file read and no speech request.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { CallSession } from '../../sdk/session.js';
import { decodeWav } from '../../voice/wav.js';
import type { LoadedBot } from './bot-loader.js';

type Pcm = { pcm: Int16Array; sampleRate: number };

/** Decoded greeting files, by absolute path (a handful per worker). */
const decoded = new Map<string, Promise<Pcm>>();

/** The greeting's WAV file (absolute), or undefined for a text greeting or none. */
export function greetingFile(loaded: LoadedBot): string | undefined {
  const g = loaded.bot.greeting;
  if (g === undefined || typeof g === 'string') return undefined;
  return path.resolve(path.dirname(loaded.file), g.audio);
}

/** Reads and decodes the greeting's file once (a failed read is tried again next time). */
export function loadGreetingAudio(file: string): Promise<Pcm> {
  let p = decoded.get(file);
  if (!p) {
    p = readFile(file).then(decodeWav);
    p.catch(() => decoded.delete(file));
    decoded.set(file, p);
  }
  return p;
}

/** Starts the greeting (undefined when the bot has none). */
export function startGreeting(session: CallSession, loaded: LoadedBot): Promise<void> | undefined {
  const g = loaded.bot.greeting;
  if (g === undefined) return undefined;
  if (typeof g === 'string') return session.say(g).then(() => undefined);
  const file = greetingFile(loaded)!;
  return loadGreetingAudio(file).then((pcm) => session.playAs(pcm, file));
}
