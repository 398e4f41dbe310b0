/**
 * Synthesized speech, cached: greetings and repeated prompts (menus) are synthesized once per
 * worker (an LRU in memory) and, with TTS_CACHE_DIR, once across workers (one file per phrase,
 * written atomically). Keyed by provider, voice, sample rate and text. The text-only provider has
 * nothing to cache and is returned as it is.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { SpeechAudio, TtsProvider } from './tts.js';

export interface TtsCacheOptions {
  /** Phrases kept in memory (0: no memory cache). */
  entries: number;
  /** Shared directory (several workers); unset → memory only. */
  dir?: string | undefined;
  /** Part of the key besides the provider's name: voice, model, sample rate. */
  keyParts: string[];
}

export interface CachedTts extends TtsProvider {
  /** Synthesizes `text` into the cache now (a greeting before the call). */
  preload(text: string, signal?: AbortSignal): Promise<void>;
  /** True when `text` is cached (memory or disk). */
  has(text: string): boolean;
  readonly stats: { hits: number; misses: number };
}

/** Magic + sample rate header of a cache file, then PCM16 LE. */
const MAGIC = 0x70627473; // "pbts"

export function cachingTts(inner: TtsProvider, opts: TtsCacheOptions): CachedTts | TtsProvider {
  if (inner.name === 'text' || (opts.entries <= 0 && !opts.dir)) return inner;
  const mem = new Map<string, SpeechAudio>();
  const stats = { hits: 0, misses: 0 };
  if (opts.dir) mkdirSync(opts.dir, { recursive: true });
  const keyOf = (text: string) =>
    createHash('sha256')
      .update([inner.name, ...opts.keyParts, text].join('\u0000'))
      .digest('hex');
  const fileOf = (key: string) => path.join(opts.dir!, `${key}.pcm`);

  const remember = (key: string, audio: SpeechAudio) => {
    if (opts.entries <= 0) return;
    mem.delete(key);
    mem.set(key, audio);
    while (mem.size > opts.entries) mem.delete(mem.keys().next().value!);
  };
  const lookup = (key: string): SpeechAudio | undefined => {
    const m = mem.get(key);
    if (m) {
      remember(key, m);
      return m;
    }
    if (!opts.dir) return undefined;
    try {
      const b = readFileSync(fileOf(key));
      if (b.length < 8 || b.readUInt32LE(0) !== MAGIC) return undefined;
      const pcm = new Int16Array((b.length - 8) >> 1);
      for (let i = 0; i < pcm.length; i++) pcm[i] = b.readInt16LE(8 + i * 2);
      const audio = { pcm, sampleRate: b.readUInt32LE(4) };
      remember(key, audio);
      return audio;
    } catch {
      return undefined;
    }
  };
  const store = (key: string, audio: SpeechAudio) => {
    remember(key, audio);
    if (!opts.dir) return;
    const b = Buffer.alloc(8 + audio.pcm.length * 2);
    b.writeUInt32LE(MAGIC, 0);
    b.writeUInt32LE(audio.sampleRate, 4);
    for (let i = 0; i < audio.pcm.length; i++) b.writeInt16LE(audio.pcm[i]!, 8 + i * 2);
    const tmp = `${fileOf(key)}.${process.pid}.tmp`;
    try {
      writeFileSync(tmp, b);
      renameSync(tmp, fileOf(key));
    } catch {
      /* a full or read-only disk only loses the cache */
    }
  };
  const concat = (parts: SpeechAudio[]): SpeechAudio => {
    const n = parts.reduce((a, p) => a + p.pcm.length, 0);
    const pcm = new Int16Array(n);
    let off = 0;
    for (const p of parts) {
      pcm.set(p.pcm, off);
      off += p.pcm.length;
    }
    return { pcm, sampleRate: parts[0]?.sampleRate ?? 16_000 };
  };

  const synthesize = async (text: string, signal?: AbortSignal): Promise<SpeechAudio> => {
    const key = keyOf(text);
    const hit = lookup(key);
    if (hit) {
      stats.hits++;
      return hit;
    }
    stats.misses++;
    const audio = await inner.synthesize(text, signal);
    store(key, audio);
    return audio;
  };

  const cached: CachedTts = {
    name: inner.name,
    stats,
    synthesize,
    has: (text) => lookup(keyOf(text)) !== undefined,
    async preload(text, signal) {
      await synthesize(text, signal);
    },
  };
  if (inner.synthesizeStream) {
    const stream = inner.synthesizeStream.bind(inner);
    cached.synthesizeStream = async function* (text, signal) {
      const key = keyOf(text);
      const hit = lookup(key);
      if (hit) {
        stats.hits++;
        yield hit;
        return;
      }
      stats.misses++;
      const parts: SpeechAudio[] = [];
      for await (const chunk of stream(text, signal)) {
        parts.push(chunk);
        yield chunk;
      }
      if (parts.length > 0 && !signal?.aborted) store(key, concat(parts));
    };
  }
  return cached;
}

export function isCachedTts(t: TtsProvider): t is CachedTts {
  return typeof (t as Partial<CachedTts>).preload === 'function';
}
