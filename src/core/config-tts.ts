/** The bots' speech settings (`Config['tts']`), derived from the environment `config.ts` read. */
import type { Env } from './config-schema.js';

export interface TtsConfig {
  provider: Env['TTS_PROVIDER'];
  voice: string | undefined;
  sampleRate: number;
  espeakPath: string;
  /** TTS_CACHE_DIR: synthesized speech shared across workers on disk. */
  cacheDir: string | undefined;
  cacheEntries: number;
  /** The vendor's API base: OpenAI-compatible speech endpoint, CARTESIA_BASE_URL or ELEVENLABS_BASE_URL (undefined: the vendor's own). */
  baseUrl: string | undefined;
  /** The vendor's model (TTS_MODEL or the provider's default). */
  model: string;
  /** The vendor's key (OPENAI_API_KEY, CARTESIA_API_KEY, ELEVENLABS_API_KEY); never logged. */
  apiKey: string | undefined;
  /** Every vendor whose key is set (bots may choose theirs: `tts: cartesia({...})`), with its base URL and defaults. */
  vendors: Partial<
    Record<'openai' | 'cartesia' | 'elevenlabs', { apiKey: string; baseUrl: string | undefined; voice: string | undefined; model: string }>
  >;
}

/** The key each TTS vendor needs. */
export const TTS_KEYS: Partial<Record<Env['TTS_PROVIDER'], 'OPENAI_API_KEY' | 'CARTESIA_API_KEY' | 'ELEVENLABS_API_KEY'>> = {
  openai: 'OPENAI_API_KEY',
  cartesia: 'CARTESIA_API_KEY',
  elevenlabs: 'ELEVENLABS_API_KEY',
};
const TTS_DEFAULT_MODELS: Partial<Record<Env['TTS_PROVIDER'], string>> = {
  openai: 'gpt-4o-mini-tts',
  cartesia: 'sonic-3',
  elevenlabs: 'eleven_flash_v2_5',
};
/** Voices from the vendors' own documentation examples, used when TTS_VOICE is unset. */
const TTS_DEFAULT_VOICES: Partial<Record<Env['TTS_PROVIDER'], string>> = {
  cartesia: '6ccbfb76-1fc6-48f7-b71d-91ac6298247b',
  elevenlabs: 'JBFqnCBsd6RMkjVDRZzb',
};

/** Speech: the provider, its voice and model, the vendor's key and base URL, the cache. */
export function ttsConfig(e: Env): TtsConfig {
  const p = e.TTS_PROVIDER;
  const keyName = TTS_KEYS[p];
  const baseUrl = p === 'cartesia' ? e.CARTESIA_BASE_URL : p === 'elevenlabs' ? e.ELEVENLABS_BASE_URL : (e.TTS_BASE_URL ?? e.LLM_BASE_URL);
  const vendors: TtsConfig['vendors'] = {};
  for (const v of ['openai', 'cartesia', 'elevenlabs'] as const) {
    const apiKey = e[TTS_KEYS[v]!];
    const base = v === 'cartesia' ? e.CARTESIA_BASE_URL : v === 'elevenlabs' ? e.ELEVENLABS_BASE_URL : (e.TTS_BASE_URL ?? e.LLM_BASE_URL);
    // The service's own provider keeps TTS_VOICE and TTS_MODEL; another vendor gets its documented defaults.
    const same = v === p;
    const model = (same ? e.TTS_MODEL : undefined) ?? TTS_DEFAULT_MODELS[v] ?? 'gpt-4o-mini-tts';
    if (apiKey) vendors[v] = { apiKey, baseUrl: base, voice: (same ? e.TTS_VOICE : undefined) ?? TTS_DEFAULT_VOICES[v], model };
  }
  return {
    vendors,
    provider: p,
    voice: e.TTS_VOICE ?? TTS_DEFAULT_VOICES[p],
    sampleRate: e.TTS_SAMPLE_RATE,
    espeakPath: e.ESPEAK_PATH,
    cacheDir: e.TTS_CACHE_DIR,
    cacheEntries: e.TTS_CACHE_ENTRIES,
    baseUrl,
    model: e.TTS_MODEL ?? TTS_DEFAULT_MODELS[p] ?? 'gpt-4o-mini-tts',
    apiKey: keyName ? e[keyName] : undefined,
  };
}
