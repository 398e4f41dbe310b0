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
  const cache = new PhraseCache(inner.name, opts);
  const stats = { hits: 0, misses: 0 };
  const synthesize = async (text: string, signal?: AbortSignal): Promise<SpeechAudio> => {
    const key = cache.keyOf(text);
    const hit = cache.lookup(key);
    if (hit) {
      stats.hits++;
      return hit;
    }
    stats.misses++;
    const audio = await inner.synthesize(text, signal);
    cache.store(key, audio);
    return audio;
  };
  const cached: CachedTts = {
    name: inner.name,
    stats,
    synthesize,
    has: (text) => cache.lookup(cache.keyOf(text)) !== undefined,
    async preload(text, signal) {
      await synthesize(text, signal);
    },
  };
  if (inner.synthesizeStream) cached.synthesizeStream = cachingStream(inner.synthesizeStream.bind(inner), cache, stats);
  // Turns are not cached (text arrives piece by piece); a cached phrase is played by `say(text)`.
  if (inner.openTurn) cached.openTurn = inner.openTurn.bind(inner);
  if (inner.warm) cached.warm = inner.warm.bind(inner);
  if (inner.close) cached.close = inner.close.bind(inner);
  return cached;
}

type SpeechStream = NonNullable<TtsProvider['synthesizeStream']>;

/** A streamed synthesis through the cache: a hit is one chunk; a miss is stored whole once it has streamed. */
function cachingStream(stream: SpeechStream, cache: PhraseCache, stats: CachedTts['stats']): SpeechStream {
  return async function* (text, signal) {
    const key = cache.keyOf(text);
    const hit = cache.lookup(key);
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
    if (parts.length > 0 && !signal?.aborted) cache.store(key, concat(parts));
  };
}

/** The phrases of one provider: an LRU in memory, and one file per phrase in `opts.dir` when set. */
class PhraseCache {
  private readonly mem = new Map<string, SpeechAudio>();

  constructor(
    private readonly provider: string,
    private readonly opts: TtsCacheOptions,
  ) {
    if (opts.dir) mkdirSync(opts.dir, { recursive: true });
  }

  keyOf(text: string): string {
    return createHash('sha256')
      .update([this.provider, ...this.opts.keyParts, text].join('\u0000'))
      .digest('hex');
  }

  lookup(key: string): SpeechAudio | undefined {
    const m = this.mem.get(key);
    if (m) {
      this.remember(key, m);
      return m;
    }
    if (!this.opts.dir) return undefined;
    const audio = readCacheFile(path.join(this.opts.dir, `${key}.pcm`));
    if (audio) this.remember(key, audio);
    return audio;
  }

  store(key: string, audio: SpeechAudio): void {
    this.remember(key, audio);
    if (this.opts.dir) writeCacheFile(path.join(this.opts.dir, `${key}.pcm`), audio);
  }

  private remember(key: string, audio: SpeechAudio): void {
    if (this.opts.entries <= 0) return;
    this.mem.delete(key);
    this.mem.set(key, audio);
    while (this.mem.size > this.opts.entries) this.mem.delete(this.mem.keys().next().value!);
  }
}

function readCacheFile(file: string): SpeechAudio | undefined {
  try {
    const b = readFileSync(file);
    if (b.length < 8 || b.readUInt32LE(0) !== MAGIC) return undefined;
    const pcm = new Int16Array((b.length - 8) >> 1);
    for (let i = 0; i < pcm.length; i++) pcm[i] = b.readInt16LE(8 + i * 2);
    return { pcm, sampleRate: b.readUInt32LE(4) };
  } catch {
    return undefined;
  }
}

/** Written atomically (a temporary file renamed), so another worker never reads half a phrase. */
function writeCacheFile(file: string, audio: SpeechAudio): void {
  const b = Buffer.alloc(8 + audio.pcm.length * 2);
  b.writeUInt32LE(MAGIC, 0);
  b.writeUInt32LE(audio.sampleRate, 4);
  for (let i = 0; i < audio.pcm.length; i++) b.writeInt16LE(audio.pcm[i]!, 8 + i * 2);
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, b);
    renameSync(tmp, file);
  } catch {
    /* a full or read-only disk only loses the cache */
  }
}

function concat(parts: SpeechAudio[]): SpeechAudio {
  const n = parts.reduce((a, p) => a + p.pcm.length, 0);
  const pcm = new Int16Array(n);
  let off = 0;
  for (const p of parts) {
    pcm.set(p.pcm, off);
    off += p.pcm.length;
  }
  return { pcm, sampleRate: parts[0]?.sampleRate ?? 16_000 };
}

export function isCachedTts(t: TtsProvider): t is CachedTts {
  return 'preload' in t && typeof t.preload === 'function';
}
