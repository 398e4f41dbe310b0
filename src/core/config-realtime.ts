/** The bots' speech-to-speech vendors (`Config['realtime']`), derived from the environment `config.ts` read. */
import { ConfigError } from './config-error.js';
import type { Env } from './config-schema.js';

/** A speech-to-speech vendor, as VOICE_PIPELINE names it in short. */
export type S2sVendor = 'openai' | 'gemini';

export interface RealtimeConfig {
  /** OpenAI's Realtime API: OPENAI_API_KEY and OPENAI_REALTIME_BASE_URL (else LLM_BASE_URL unless it is another vendor's). */
  openai: { apiKey: string; baseUrl: string | undefined } | undefined;
  /** Gemini Live: GEMINI_API_KEY (or GOOGLE_API_KEY) and GEMINI_BASE_URL. */
  gemini: { apiKey: string; baseUrl: string | undefined } | undefined;
  /**
   * VOICE_PIPELINE: the speech-to-speech vendor bots that offer both pipelines (`onCall` and
   * `realtime`) run on; undefined (`cascade`) → their `onCall`.
   */
  pipeline: S2sVendor | undefined;
}

const PIPELINE_VENDOR: Record<Env['VOICE_PIPELINE'], S2sVendor | undefined> = {
  cascade: undefined,
  'openai-realtime': 'openai',
  'gemini-live': 'gemini',
};

/**
 * An OpenAI API base for a service of OpenAI's (realtime, transcription): its own setting, else
 * LLM_BASE_URL when that is OpenAI's too (LLM_PROVIDER=openai-compatible points elsewhere), else
 * undefined (OpenAI's own).
 */
export function openAiBase(e: Env, own: string | undefined): string | undefined {
  return own ?? (e.LLM_PROVIDER === 'openai-compatible' ? undefined : e.LLM_BASE_URL);
}

/** The keys and bases a realtime bot (`realtime: openaiRealtime({...})`) may use; keys are never logged. */
export function realtimeConfig(e: Env): RealtimeConfig {
  const openaiBase = openAiBase(e, e.OPENAI_REALTIME_BASE_URL);
  if (e.OPENAI_REALTIME_BASE_URL !== undefined && !/^(https?|wss?):\/\//i.test(e.OPENAI_REALTIME_BASE_URL))
    throw new ConfigError(
      'invalid configuration: OPENAI_REALTIME_BASE_URL must be an http(s):// or ws(s):// URL (the SDK speaks wss:// to it)',
    );
  const geminiKey = e.GEMINI_API_KEY ?? e.GOOGLE_API_KEY;
  const pipeline = PIPELINE_VENDOR[e.VOICE_PIPELINE];
  // A speech-to-speech pipeline without its vendor's key would fail every call: refuse it now.
  if (pipeline === 'openai' && !e.OPENAI_API_KEY)
    throw new ConfigError('invalid configuration: VOICE_PIPELINE=openai-realtime needs OPENAI_API_KEY');
  if (pipeline === 'gemini' && !geminiKey)
    throw new ConfigError('invalid configuration: VOICE_PIPELINE=gemini-live needs GEMINI_API_KEY (or GOOGLE_API_KEY)');
  return {
    openai: e.OPENAI_API_KEY ? { apiKey: e.OPENAI_API_KEY, baseUrl: openaiBase } : undefined,
    gemini: geminiKey ? { apiKey: geminiKey, baseUrl: e.GEMINI_BASE_URL } : undefined,
    pipeline,
  };
}
