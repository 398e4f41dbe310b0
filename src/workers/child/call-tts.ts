/**
 * The bot's text-to-speech when it chooses its own (`defineBot({ tts: cartesia({...}) })`), else
 * the service's (TTS_PROVIDER). A chosen provider is built once per worker from the init's vendor
 * keys (the bot names no key), behind the same phrase cache as the service's (keyed by provider,
 * voice and model), and warmed when the bot is preloaded, so its vendor's SDK is not loaded while a
 * caller waits.
 */
import type { Logger } from 'pino';
import { errorMessage } from '../../core/errors.js';
import { createTts, type TtsInit, type TtsProvider } from '../../voice/tts.js';
import { cachingTts } from '../../voice/tts-cache.js';
import type { TtsChoice } from '../../voice/tts-types.js';
import type { WorkerInit } from '../protocol.js';

const built = new Map<string, TtsProvider>();

/** The init for `choice`: the vendor's key, base URL and defaults from the service's init. */
function initFor(base: TtsInit | undefined, choice: TtsChoice): TtsInit {
  const common: TtsInit = {
    provider: choice.provider,
    sampleRate: base?.sampleRate ?? 16_000,
    espeakPath: base?.espeakPath ?? 'espeak-ng',
    ...(base?.cacheDir ? { cacheDir: base.cacheDir } : {}),
    ...(base?.cacheEntries !== undefined ? { cacheEntries: base.cacheEntries } : {}),
  };
  const p = choice.provider;
  const vendor = p === 'openai' || p === 'cartesia' || p === 'elevenlabs' ? base?.vendors?.[p] : undefined;
  const voice = choice.voice ?? vendor?.voice;
  const model = choice.model ?? vendor?.model;
  return {
    ...common,
    ...(voice ? { voice } : {}),
    ...(model ? { model } : {}),
    ...(vendor ? { apiKey: vendor.apiKey, ...(vendor.baseUrl ? { baseUrl: vendor.baseUrl } : {}) } : {}),
  };
}

/**
 * The bot's chosen provider (built on first use, then shared by the worker's calls), or undefined
 * when the bot has no `tts`. A vendor without its key falls back to text-only (one warning line).
 */
export function botTts(init: WorkerInit, choice: TtsChoice | undefined, logger: Logger): TtsProvider | undefined {
  if (!choice) return undefined;
  const key = JSON.stringify([choice.provider, choice.voice ?? '', choice.model ?? '']);
  let tts = built.get(key);
  if (!tts) {
    const i = initFor(init.tts, choice);
    const inner = createTts(i, { callClient: init.callClient, logger });
    tts = cachingTts(inner, {
      entries: i.cacheEntries ?? 64,
      dir: i.cacheDir,
      keyParts: [i.voice ?? '', i.model ?? '', String(i.sampleRate)],
    });
    built.set(key, tts);
  }
  return tts;
}

/** At worker start, for a preloaded bot with its own `tts`: its vendor's SDK loaded and connected now. */
export async function warmBotTts(init: WorkerInit, choice: TtsChoice | undefined, logger: Logger): Promise<void> {
  await botTts(init, choice, logger)
    ?.warm?.()
    .catch((err: unknown) => logger.warn({ err: errorMessage(err), tts: choice?.provider }, "the bot's TTS could not warm up"));
}
