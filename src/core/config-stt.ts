/** The bots' speech-to-text settings (`Config['stt']`), derived from the environment `config.ts` read. */
import { ConfigError } from './config-error.js';
import type { Env } from './config-schema.js';
import { openAiBase } from './config-realtime.js';

export interface SttConfig {
  /** STT_PROVIDER: the service's default; a bot may choose another (`stt: deepgram({...})`). */
  provider: Env['STT_PROVIDER'];
  /** STT_FALLBACK: when a provider fails for good in a call, `daily` turns Daily's transcription on; `none` does not. */
  fallback: Env['STT_FALLBACK'];
  /** The vendors whose key is set: their key (never logged) and base URL. */
  deepgram: { apiKey: string; baseUrl: string | undefined } | undefined;
  assemblyai: { apiKey: string; baseUrl: string | undefined } | undefined;
  /** OPENAI_API_KEY with OPENAI_STT_BASE_URL (else LLM_BASE_URL unless it is another server's, as for realtime). */
  openai: { apiKey: string; baseUrl: string | undefined } | undefined;
}

/** STT_PROVIDER with the vendors' keys; refuses a provider without its key. */
export function sttConfig(e: Env): SttConfig {
  const deepgram = e.DEEPGRAM_API_KEY ? { apiKey: e.DEEPGRAM_API_KEY, baseUrl: e.DEEPGRAM_BASE_URL } : undefined;
  if (e.STT_PROVIDER === 'deepgram' && !deepgram)
    throw new ConfigError('invalid configuration: STT_PROVIDER=deepgram needs DEEPGRAM_API_KEY');
  const assemblyai = e.ASSEMBLYAI_API_KEY ? { apiKey: e.ASSEMBLYAI_API_KEY, baseUrl: e.ASSEMBLYAI_BASE_URL } : undefined;
  if (e.STT_PROVIDER === 'assemblyai' && !assemblyai)
    throw new ConfigError('invalid configuration: STT_PROVIDER=assemblyai needs ASSEMBLYAI_API_KEY');
  const openaiBase = openAiBase(e, e.OPENAI_STT_BASE_URL);
  const openai = e.OPENAI_API_KEY ? { apiKey: e.OPENAI_API_KEY, baseUrl: openaiBase } : undefined;
  if (e.STT_PROVIDER === 'openai' && !openai) throw new ConfigError('invalid configuration: STT_PROVIDER=openai needs OPENAI_API_KEY');
  if (e.OPENAI_STT_BASE_URL !== undefined && !/^https?:\/\//i.test(e.OPENAI_STT_BASE_URL))
    throw new ConfigError('invalid configuration: OPENAI_STT_BASE_URL must be an http(s):// URL');
  if (e.ASSEMBLYAI_BASE_URL !== undefined && !/^(https|wss):\/\//i.test(e.ASSEMBLYAI_BASE_URL))
    throw new ConfigError(
      'invalid configuration: ASSEMBLYAI_BASE_URL must be a wss:// or https:// URL (the AssemblyAI SDK streams over TLS only)',
    );
  if (e.DEEPGRAM_BASE_URL !== undefined && !/^(https?|wss?):\/\//i.test(e.DEEPGRAM_BASE_URL))
    throw new ConfigError('invalid configuration: DEEPGRAM_BASE_URL must be an http(s):// or ws(s):// URL');
  return { provider: e.STT_PROVIDER, fallback: e.STT_FALLBACK, deepgram, assemblyai, openai };
}
