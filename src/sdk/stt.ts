/**
 * Choosing a bot's speech-to-text (`stt:` in defineBot): Daily's transcription (the default) or a
 * streaming vendor fed the caller's audio. Keys come from the service's environment, never the bot.
 *
 *   stt: deepgram({ model: 'nova-3', language: 'en-US', keywords: ['invoice'] })
 */
import { STT_PROVIDERS, type SttChoice, type SttOptions, type SttProviderName } from '../voice/stt.js';

/** Deepgram live streaming (nova-3 by default; DEEPGRAM_API_KEY, DEEPGRAM_BASE_URL). */
export function deepgram(opts: SttOptions = {}): SttChoice {
  return { provider: 'deepgram', ...opts };
}

/** AssemblyAI Universal Streaming (v3; ASSEMBLYAI_API_KEY, ASSEMBLYAI_BASE_URL); `model` is its `speech_model`. */
export function assemblyai(opts: SttOptions = {}): SttChoice {
  return { provider: 'assemblyai', ...opts };
}

/**
 * OpenAI transcription (OPENAI_API_KEY, OPENAI_STT_BASE_URL): `gpt-4o-transcribe` by default or
 * `gpt-4o-mini-transcribe`; one request per utterance, cut by patchbay's VAD; `keywords` become its prompt.
 */
export function openai(opts: SttOptions = {}): SttChoice {
  return { provider: 'openai', ...opts };
}

/** Daily's own transcription (what a bot without `stt` gets when STT_PROVIDER=daily). */
export function dailyTranscription(opts: Pick<SttOptions, 'language'> = {}): SttChoice {
  return { provider: 'daily', ...opts };
}

/** Checks a bot's `stt` option; returns an error message or undefined. */
export function checkSttChoice(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null || !('provider' in v))
    return '`stt` must be deepgram({...}), assemblyai({...}), openai({...}) or dailyTranscription({...})';
  if (!STT_PROVIDERS.includes(v.provider as SttProviderName)) return `\`stt.provider\` must be one of ${STT_PROVIDERS.join(', ')}`;
  if ('keywords' in v && v.keywords !== undefined && !(Array.isArray(v.keywords) && v.keywords.every((k) => typeof k === 'string')))
    return '`stt.keywords` must be an array of strings';
  return undefined;
}
