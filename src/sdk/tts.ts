/**
 * Choosing a bot's text-to-speech (`tts:` in defineBot), like `stt:`: the service's TTS_PROVIDER is
 * the default; a bot may speak through another vendor. Keys and base URLs come from the service's
 * environment (CARTESIA_API_KEY, ELEVENLABS_API_KEY, OPENAI_API_KEY and their *_BASE_URL), never the bot.
 *
 *   tts: cartesia({ voice: '6ccbfb76-1fc6-48f7-b71d-91ac6298247b', model: 'sonic-3' })
 */
import { TTS_CHOICES, type TtsChoice, type TtsOptions } from '../voice/tts-types.js';

/** Cartesia over its WebSocket, one context per turn (CARTESIA_API_KEY, CARTESIA_BASE_URL). */
export function cartesia(opts: TtsOptions = {}): TtsChoice {
  return { provider: 'cartesia', ...opts };
}

/** ElevenLabs over its multi-context WebSocket (ELEVENLABS_API_KEY, ELEVENLABS_BASE_URL). */
export function elevenlabs(opts: TtsOptions = {}): TtsChoice {
  return { provider: 'elevenlabs', ...opts };
}

/** An OpenAI-compatible `POST /audio/speech` (OPENAI_API_KEY; TTS_BASE_URL, else LLM_BASE_URL). */
export function openaiSpeech(opts: TtsOptions = {}): TtsChoice {
  return { provider: 'openai', ...opts };
}

/** espeak-ng, offline (`voice`: an espeak-ng voice such as `en-us`). */
export function espeak(opts: Pick<TtsOptions, 'voice'> = {}): TtsChoice {
  return { provider: 'espeak', ...opts };
}

/** No audio: only the words travel (the emulator shows them to the caller). */
export function textOnly(): TtsChoice {
  return { provider: 'text' };
}

/** Checks a bot's `tts` option; returns an error message or undefined. */
export function checkTtsChoice(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null || !('provider' in v))
    return '`tts` must be cartesia({...}), elevenlabs({...}), openaiSpeech({...}), espeak({...}) or textOnly()';
  if (!TTS_CHOICES.some((c) => c === v.provider)) return `\`tts.provider\` must be one of ${TTS_CHOICES.join(', ')}`;
  for (const k of ['voice', 'model'] as const) {
    const x: unknown = Reflect.get(v, k);
    if (x !== undefined && (typeof x !== 'string' || x.length === 0)) return `\`tts.${k}\` must be a non-empty string`;
  }
  return undefined;
}
