/** The bots' speech-to-text settings (`Config['stt']`), derived from the environment `config.ts` read. */
import { ConfigError } from './config-error.js';
import type { Env } from './config-schema.js';

export interface SttConfig {
  /** STT_PROVIDER: the service's default; a bot may choose another (`stt: deepgram({...})`). */
  provider: Env['STT_PROVIDER'];
  /** STT_FALLBACK: when a provider fails for good in a call, `daily` turns Daily's transcription on; `none` does not. */
  fallback: Env['STT_FALLBACK'];
  /** The vendors whose key is set: their key (never logged) and base URL. */
  deepgram: { apiKey: string; baseUrl: string | undefined } | undefined;
  assemblyai: { apiKey: string; baseUrl: string | undefined } | undefined;
}

/** STT_PROVIDER with the vendors' keys; refuses a provider without its key, and providers not built yet (openai). */
export function sttConfig(e: Env): SttConfig {
  const deepgram = e.DEEPGRAM_API_KEY ? { apiKey: e.DEEPGRAM_API_KEY, baseUrl: e.DEEPGRAM_BASE_URL } : undefined;
  if (e.STT_PROVIDER === 'deepgram' && !deepgram)
    throw new ConfigError('invalid configuration: STT_PROVIDER=deepgram needs DEEPGRAM_API_KEY');
  const assemblyai = e.ASSEMBLYAI_API_KEY ? { apiKey: e.ASSEMBLYAI_API_KEY, baseUrl: e.ASSEMBLYAI_BASE_URL } : undefined;
  if (e.STT_PROVIDER === 'assemblyai' && !assemblyai)
    throw new ConfigError('invalid configuration: STT_PROVIDER=assemblyai needs ASSEMBLYAI_API_KEY');
  if (e.STT_PROVIDER === 'openai')
    throw new ConfigError('invalid configuration: STT_PROVIDER=openai is not available yet (daily, deepgram or assemblyai)');
  if (e.ASSEMBLYAI_BASE_URL !== undefined && !/^(https|wss):\/\//i.test(e.ASSEMBLYAI_BASE_URL))
    throw new ConfigError(
      'invalid configuration: ASSEMBLYAI_BASE_URL must be a wss:// or https:// URL (the AssemblyAI SDK streams over TLS only)',
    );
  if (e.DEEPGRAM_BASE_URL !== undefined && !/^(https?|wss?):\/\//i.test(e.DEEPGRAM_BASE_URL))
    throw new ConfigError('invalid configuration: DEEPGRAM_BASE_URL must be an http(s):// or ws(s):// URL');
  return { provider: e.STT_PROVIDER, fallback: e.STT_FALLBACK, deepgram, assemblyai };
}
