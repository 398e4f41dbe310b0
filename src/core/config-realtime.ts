/** The bots' speech-to-speech vendors (`Config['realtime']`), derived from the environment `config.ts` read. */
import { ConfigError } from './config-error.js';
import type { Env } from './config-schema.js';

export interface RealtimeConfig {
  /** OpenAI's Realtime API: OPENAI_API_KEY and OPENAI_REALTIME_BASE_URL (else LLM_BASE_URL unless it is another vendor's). */
  openai: { apiKey: string; baseUrl: string | undefined } | undefined;
  /** Gemini Live: GEMINI_API_KEY (or GOOGLE_API_KEY) and GEMINI_BASE_URL. */
  gemini: { apiKey: string; baseUrl: string | undefined } | undefined;
}

/** The keys and bases a realtime bot (`realtime: openaiRealtime({...})`) may use; keys are never logged. */
export function realtimeConfig(e: Env): RealtimeConfig {
  const openaiBase = e.OPENAI_REALTIME_BASE_URL ?? (e.LLM_PROVIDER === 'openai-compatible' ? undefined : e.LLM_BASE_URL);
  if (e.OPENAI_REALTIME_BASE_URL !== undefined && !/^(https?|wss?):\/\//i.test(e.OPENAI_REALTIME_BASE_URL))
    throw new ConfigError(
      'invalid configuration: OPENAI_REALTIME_BASE_URL must be an http(s):// or ws(s):// URL (the SDK speaks wss:// to it)',
    );
  const geminiKey = e.GEMINI_API_KEY ?? e.GOOGLE_API_KEY;
  return {
    openai: e.OPENAI_API_KEY ? { apiKey: e.OPENAI_API_KEY, baseUrl: openaiBase } : undefined,
    gemini: geminiKey ? { apiKey: geminiKey, baseUrl: e.GEMINI_BASE_URL } : undefined,
  };
}
