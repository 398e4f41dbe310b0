/**
 * Pieces the composition root (runtime.ts) assembles: where Daily is (or the emulator), the REST
 * client with the call path's policies, what every worker is started with, the shared browsers.
 */
import { randomBytes } from 'node:crypto';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { DailyRestClient, type RestRateLimit } from '../daily/rest.js';
import { BrowserHost } from '../daily/browser/host.js';
import type { Emulator } from '../emulator/server.js';
import { resolveTtsProvider } from '../voice/tts.js';
import { orphanDirOf } from '../workers/orphans.js';
import type { WorkerInit } from '../workers/protocol.js';

/** The emulator to use instead of starting one (tests, benchmarks). */
export interface GivenEmulator {
  instance: Emulator;
  apiKey: string;
}

/** Where Daily is and the secrets of its webhooks: Daily's, or the emulator's (one started here if none was given). */
export interface DailyAccess {
  apiUrl: string;
  apiKey: string;
  pinlessSecrets: string[];
  webhookSecrets: string[];
  emulator: Emulator | undefined;
  /** The emulator was started by this runtime (and is closed by its shutdown). */
  ownEmulator: boolean;
}

export async function dailyAccess(config: Config, logger: Logger, opts: { emulator?: GivenEmulator | undefined }): Promise<DailyAccess> {
  const { apiUrl, apiKey, pinlessHmacSecrets, webhookHmacSecrets } = config.daily;
  if (!config.emulator.enabled) {
    if (pinlessHmacSecrets.length === 0)
      logger.warn(
        '!!! DAILY_PINLESS_HMAC is not set: dial-in webhooks are NOT verified. Anyone who can reach /dialin can start bots. Development only. !!!',
      );
    if (!apiUrl || !apiKey) throw new Error('Daily API URL and key are required');
    const secrets = { pinlessSecrets: pinlessHmacSecrets, webhookSecrets: webhookHmacSecrets };
    return { apiUrl, apiKey, ...secrets, emulator: undefined, ownEmulator: false };
  }
  const given = opts.emulator;
  const emu = given ? { emulator: given.instance, apiKey: given.apiKey } : await startEmulator(config, logger);
  logger.info({ emulator: emu.emulator.origin }, 'no DAILY_API_KEY: using the built-in Daily emulator');
  if (!emu.emulator.apiUrl || !emu.apiKey) throw new Error('Daily API URL and key are required');
  return {
    apiUrl: emu.emulator.apiUrl,
    apiKey: emu.apiKey,
    pinlessSecrets: pinlessHmacSecrets.length > 0 ? pinlessHmacSecrets : [randomBytes(32).toString('base64')],
    webhookSecrets: webhookHmacSecrets.length > 0 ? webhookHmacSecrets : [randomBytes(32).toString('base64')],
    emulator: emu.emulator,
    ownEmulator: !given,
  };
}

async function startEmulator(config: Config, logger: Logger): Promise<{ emulator: Emulator; apiKey: string }> {
  const { createEmulator } = await import('../emulator/server.js');
  const apiKey = config.emulator.apiKey ?? `emu_${randomBytes(12).toString('hex')}`;
  const emulator = await createEmulator({
    host: config.emulator.host,
    port: config.emulator.port,
    apiKey,
    logger: logger.child({ component: 'emulator' }),
    rateLimits: config.emulator.rateLimits,
  });
  return { emulator, apiKey };
}

/** The service's REST client: the `forward` policy as the workers have it (the service sends warm calls' updates, issue 27, and the fallback's). */
export function dailyClient(config: Config, access: DailyAccess, rateLimit: RestRateLimit): DailyRestClient {
  return new DailyRestClient({
    apiUrl: access.apiUrl,
    apiKey: access.apiKey,
    timeoutMs: config.daily.apiTimeoutMs,
    pinlessUpdateTimeoutMs: config.call.pinlessUpdateTimeoutMs,
    pinlessUpdateDeadlineMs: config.call.pinlessUpdateDeadlineMs,
    rateLimit,
  });
}

/** What every worker of the pool is started with. */
export function workerInit(config: Config, logger: Logger, access: DailyAccess, preloadBots: string[]): WorkerInit {
  const { daily, tts, call } = config;
  return {
    logLevel: config.logLevel,
    maskNumbers: config.logMaskNumbers,
    callClient: daily.callClient,
    chromiumPath: daily.chromiumPath,
    dailyBundleUrl: daily.bundleUrl,
    dailyApiUrl: access.apiUrl,
    dailyApiKey: access.apiKey,
    apiTimeoutMs: daily.apiTimeoutMs,
    botsDir: config.bots.dir,
    preloadBots: [...new Set(preloadBots)],
    dialinReadyTimeoutMs: call.dialinReadyTimeoutMs,
    joinTimeoutMs: call.joinTimeoutMs,
    maxCallMs: call.maxCallMs,
    pinlessUpdateTimeoutMs: call.pinlessUpdateTimeoutMs,
    pinlessUpdateDeadlineMs: call.pinlessUpdateDeadlineMs,
    pingTimeoutMs: config.workers.pingTimeoutMs,
    recording: { mode: call.recording.mode, dir: call.recording.dir },
    tts: {
      provider: resolveTtsProvider(tts.provider, { callClient: daily.callClient, espeakPath: tts.espeakPath, logger }),
      sampleRate: tts.sampleRate,
      espeakPath: tts.espeakPath,
      cacheEntries: tts.cacheEntries,
      ...(tts.cacheDir ? { cacheDir: tts.cacheDir } : {}),
      ...(tts.voice ? { voice: tts.voice } : {}),
      ...(tts.apiKey ? { model: tts.model, apiKey: tts.apiKey, ...(tts.baseUrl ? { baseUrl: tts.baseUrl } : {}) } : {}),
      vendors: ttsVendors(tts.vendors),
    },
    ...(config.llm ? { llm: config.llm } : {}),
    ...(config.resilience.admittedPath ? { orphanDir: orphanDirOf(config.resilience.admittedPath) } : {}),
    stt: {
      provider: config.stt.provider,
      fallback: config.stt.fallback,
      ...(config.stt.deepgram ? { deepgram: sttVendor(config.stt.deepgram) } : {}),
      ...(config.stt.assemblyai ? { assemblyai: sttVendor(config.stt.assemblyai) } : {}),
      ...(config.stt.openai ? { openai: sttVendor(config.stt.openai) } : {}),
    },
    realtime: {
      ...(config.realtime.openai ? { openai: sttVendor(config.realtime.openai) } : {}),
      ...(config.realtime.gemini ? { gemini: sttVendor(config.realtime.gemini) } : {}),
      ...(config.realtime.pipeline ? { pipeline: config.realtime.pipeline } : {}),
    },
  };
}

/** CALL_CLIENT=daily with BROWSER_LAYOUT=shared: the supervised browsers the workers' pages live in. */
export function sharedBrowsers(config: Config, logger: Logger): BrowserHost | undefined {
  const { callClient, browserLayout, chromiumPath, botsPerBrowser } = config.daily;
  if (callClient !== 'daily' || browserLayout !== 'shared') return undefined;
  return new BrowserHost({
    chromiumPath,
    botsPerBrowser,
    browsers: Math.ceil((config.admission.maxConcurrentBots + config.workers.idle) / botsPerBrowser),
    logger,
  });
}

/** A vendor's key and base URL, as WorkerInit.stt and WorkerInit.realtime carry them. */
function sttVendor(v: { apiKey: string; baseUrl: string | undefined }): { apiKey: string; baseUrl?: string } {
  return { apiKey: v.apiKey, ...(v.baseUrl ? { baseUrl: v.baseUrl } : {}) };
}

/** The TTS vendors with a key, as a worker's init carries them (no undefined fields). */
function ttsVendors(v: Config['tts']['vendors']): NonNullable<WorkerInit['tts']>['vendors'] {
  const out: NonNullable<NonNullable<WorkerInit['tts']>['vendors']> = {};
  for (const name of ['openai', 'cartesia', 'elevenlabs'] as const) {
    const x = v[name];
    if (x)
      out[name] = {
        apiKey: x.apiKey,
        model: x.model,
        ...(x.baseUrl ? { baseUrl: x.baseUrl } : {}),
        ...(x.voice ? { voice: x.voice } : {}),
      };
  }
  return out;
}
