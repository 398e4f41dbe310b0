/**
 * Text-to-speech providers. `say(text)` asks the provider for PCM and plays it.
 *
 *  - `text`:   no audio, only the words travel (the emulator shows them to the caller). Tests, demos.
 *  - `espeak`: Debian's espeak-ng (`espeak-ng --stdout`), offline; its 22 050 Hz WAV is resampled.
 *  - `openai`: an OpenAI-compatible `POST /audio/speech` (needs OPENAI_API_KEY).
 *  - `cartesia`, `elevenlabs`: the vendors' WebSockets, one context per turn (tts-cartesia.ts,
 *    tts-elevenlabs.ts; the turn contract is tts-stream.ts).
 *
 * `createTts()` picks one from the worker's init (TTS_PROVIDER, default `auto`).
 */
import { spawn, spawnSync } from 'node:child_process';
import type { Logger } from 'pino';
import { isRetryableStatus, errorMessage } from '../core/errors.js';
import type { Config } from '../core/config.js';
import { decodeWav } from './wav.js';
import { TtsError, type SpeechAudio, type TtsProvider } from './tts-types.js';

export { TtsError, type SpeechAudio, type TtsProvider } from './tts-types.js';
export { resample } from './resample.js';
import { resample } from './resample.js';
import { cartesiaTts } from './tts-cartesia.js';
import { elevenLabsTts } from './tts-elevenlabs.js';

/** The worker's speech settings (from the config; sent in `init`). */
export interface TtsInit {
  provider: Config['tts']['provider'];
  voice?: string;
  sampleRate: number;
  espeakPath: string;
  /** Synthesized speech shared by workers (TTS_CACHE_DIR); absent → memory only. */
  cacheDir?: string;
  /** Phrases kept in memory per worker (TTS_CACHE_ENTRIES). */
  cacheEntries?: number;
  /** TTS_PROVIDER=openai, cartesia, elevenlabs: the vendor's endpoint (unset: its own), model and key. The key is never logged. */
  baseUrl?: string;
  model?: string;
  apiKey?: string;
  /** Every vendor whose key is set, for bots that choose their own (`tts: cartesia({...})`): key (never logged), base URL, default voice and model. */
  vendors?: Partial<Record<'openai' | 'cartesia' | 'elevenlabs', TtsVendorInit>>;
}

/** One TTS vendor's access and defaults, from the environment. */
export interface TtsVendorInit {
  apiKey: string;
  baseUrl?: string;
  voice?: string;
  model: string;
}

/** No audio: only the text travels. Good for the emulator and tests. */
export const textOnlyTts: TtsProvider = {
  name: 'text',
  async synthesize() {
    return { pcm: new Int16Array(0), sampleRate: 16_000 };
  },
};

/** True when `espeakPath` runs (`--version`). */
export function espeakAvailable(espeakPath = 'espeak-ng'): boolean {
  try {
    const r = spawnSync(espeakPath, ['--version'], { stdio: 'ignore', timeout: 5_000 });
    return r.status === 0;
  } catch {
    return false;
  }
}

export interface EspeakOptions {
  espeakPath?: string;
  /** espeak-ng voice, e.g. `en-us` (default). */
  voice?: string;
  /** Output rate (default 16 000 Hz). */
  sampleRate?: number;
  /** Words per minute (espeak default 175). */
  wordsPerMinute?: number;
}

const MAX_TTS_TEXT = 5_000;

/** espeak-ng in a child process per utterance (~tens of ms for a sentence). */
export function espeakTts(opts: EspeakOptions = {}): TtsProvider {
  const bin = opts.espeakPath ?? 'espeak-ng';
  const rate = opts.sampleRate ?? 16_000;
  return {
    name: 'espeak',
    synthesize(text, signal) {
      if (text.length > MAX_TTS_TEXT) return Promise.reject(new TtsError(`text longer than ${MAX_TTS_TEXT} characters`));
      return new Promise<SpeechAudio>((resolve, reject) => {
        const args = ['--stdout', '-v', opts.voice ?? 'en-us'];
        if (opts.wordsPerMinute) args.push('-s', String(opts.wordsPerMinute));
        // Text on stdin: never parsed as options, whatever the bot says.
        const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'], ...(signal ? { signal } : {}) });
        const out: Buffer[] = [];
        let err = '';
        child.stdout.on('data', (b: Buffer) => out.push(b));
        child.stderr.on('data', (b: Buffer) => (err += b.toString()));
        child.on('error', (e) => reject(new TtsError(`espeak-ng failed to run (${bin}): ${e.message}`, { cause: e })));
        child.on('close', (code) => {
          if (code !== 0) return reject(new TtsError(`espeak-ng exited with ${code}: ${err.trim().slice(0, 200)}`));
          try {
            const wav = decodeWav(Buffer.concat(out));
            resolve({ pcm: resample(wav.pcm, wav.sampleRate, rate), sampleRate: rate });
          } catch (e) {
            reject(new TtsError(`espeak-ng output unreadable: ${errorMessage(e)}`, { cause: e }));
          }
        });
        child.stdin.on('error', () => undefined);
        child.stdin.end(text);
      });
    },
  };
}

export interface OpenAiTtsOptions {
  baseUrl: string;
  apiKey: string;
  model: string;
  voice?: string;
  sampleRate?: number;
  timeoutMs?: number;
}

/** OpenAI's `response_format: 'pcm'`: raw 24 kHz 16-bit little-endian mono. */
const OPENAI_PCM_RATE = 24_000;

/**
 * OpenAI-compatible speech endpoint (`POST {baseUrl}/audio/speech`): WAV for `synthesize`, raw
 * PCM streamed in pieces for `synthesizeStream` (playing starts on the first piece).
 */
export function openAiTts(opts: OpenAiTtsOptions): TtsProvider {
  const rate = opts.sampleRate ?? 16_000;
  const request = async (text: string, format: 'wav' | 'pcm', signal?: AbortSignal): Promise<Response> => {
    if (text.length > MAX_TTS_TEXT) throw new TtsError(`text longer than ${MAX_TTS_TEXT} characters`);
    const signals = [AbortSignal.timeout(opts.timeoutMs ?? 15_000), ...(signal ? [signal] : [])];
    let res: Response;
    try {
      res = await fetch(`${opts.baseUrl.replace(/\/$/, '')}/audio/speech`, {
        method: 'POST',
        headers: { authorization: `Bearer ${opts.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: opts.model, input: text, voice: opts.voice ?? 'alloy', response_format: format }),
        signal: AbortSignal.any(signals),
      });
    } catch (err) {
      throw new TtsError(`speech request failed: ${errorMessage(err)}`, { retryable: true, cause: err });
    }
    if (!res.ok || !res.body) {
      const body = (await res.text().catch(() => '')).slice(0, 200);
      throw new TtsError(`speech endpoint answered ${res.status}: ${body}`, { retryable: isRetryableStatus(res.status) });
    }
    return res;
  };
  return {
    name: 'openai',
    async synthesize(text, signal) {
      const res = await request(text, 'wav', signal);
      const wav = decodeWav(Buffer.from(await res.arrayBuffer()));
      return { pcm: resample(wav.pcm, wav.sampleRate, rate), sampleRate: rate };
    },
    async *synthesizeStream(text, signal) {
      const res = await request(text, 'pcm', signal);
      let odd: Buffer | undefined;
      try {
        for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
          let b = Buffer.from(chunk);
          if (odd) b = Buffer.concat([odd, b]);
          const even = b.length & ~1;
          odd = even < b.length ? b.subarray(even) : undefined;
          if (even === 0) continue;
          const pcm = new Int16Array(even / 2);
          for (let i = 0; i < pcm.length; i++) pcm[i] = b.readInt16LE(i * 2);
          yield { pcm: resample(pcm, OPENAI_PCM_RATE, rate), sampleRate: rate };
        }
      } catch (err) {
        if (signal?.aborted) throw err;
        throw new TtsError(`speech stream broke: ${errorMessage(err)}`, { retryable: true, cause: err });
      }
    },
  };
}

/**
 * The provider for a worker. `auto`: espeak-ng when the call client is Daily's and espeak-ng is
 * installed; text-only otherwise (the emulator carries the words; one log line says why).
 */
export function createTts(init: TtsInit | undefined, ctx: { callClient: 'emulator' | 'daily'; logger: Logger }): TtsProvider {
  const provider = init?.provider ?? 'text';
  const rate = init?.sampleRate ?? 16_000;
  const espeakPath = init?.espeakPath ?? 'espeak-ng';
  const espeak = () => espeakTts({ espeakPath, sampleRate: rate, ...(init?.voice ? { voice: init.voice } : {}) });
  switch (provider) {
    case 'text':
      ctx.logger.debug({ tts: 'text' }, 'TTS: text-only');
      return textOnlyTts;
    case 'openai':
      if (!init?.apiKey || !init.baseUrl || !init.model) {
        ctx.logger.warn({ tts: 'text' }, 'TTS: openai needs OPENAI_API_KEY; falling back to text-only');
        return textOnlyTts;
      }
      ctx.logger.debug({ tts: 'openai', model: init.model }, 'TTS: OpenAI-compatible speech endpoint');
      return openAiTts({
        baseUrl: init.baseUrl,
        apiKey: init.apiKey,
        model: init.model,
        sampleRate: rate,
        ...(init.voice ? { voice: init.voice } : {}),
      });
    case 'cartesia':
    case 'elevenlabs':
      return vendorTts(provider, init, rate, ctx.logger);
    case 'espeak':
      if (espeakAvailable(espeakPath)) {
        ctx.logger.debug({ tts: 'espeak', espeakPath }, 'TTS: espeak-ng');
        return espeak();
      }
      ctx.logger.warn(
        { tts: 'text', espeakPath },
        `TTS: espeak-ng not found at "${espeakPath}" (apt-get install espeak-ng); falling back to text-only`,
      );
      return textOnlyTts;
    case 'auto':
    default:
      if (ctx.callClient === 'emulator') {
        ctx.logger.debug({ tts: 'text' }, 'TTS: text-only with the emulator');
        return textOnlyTts;
      }
      if (espeakAvailable(espeakPath)) {
        ctx.logger.debug({ tts: 'espeak', espeakPath }, 'TTS: espeak-ng');
        return espeak();
      }
      ctx.logger.warn(
        { tts: 'text' },
        'TTS: espeak-ng is not installed (apt-get install espeak-ng) and no TTS_PROVIDER is set: callers will hear silence',
      );
      return textOnlyTts;
  }
}

/** Cartesia or ElevenLabs (their SDKs load at `warm()` or on first use, in the worker only). */
function vendorTts(provider: 'cartesia' | 'elevenlabs', init: TtsInit | undefined, rate: number, logger: Logger): TtsProvider {
  if (!init?.apiKey || !init.voice) {
    logger.warn({ tts: 'text' }, `TTS: ${provider} needs its key and a voice; falling back to text-only`);
    return textOnlyTts;
  }
  logger.debug({ tts: provider, model: init.model }, `TTS: ${provider} over its WebSocket`);
  const opts = { apiKey: init.apiKey, voice: init.voice, sampleRate: rate, baseUrl: init.baseUrl, model: init.model };
  return provider === 'cartesia' ? cartesiaTts(opts) : elevenLabsTts(opts);
}

/**
 * What a streamed `say()` falls back to when a vendor fails mid-turn, so the caller is never left
 * silent: espeak-ng when it runs (its default voice: TTS_VOICE names the vendor's), else text-only.
 */
export function fallbackTts(init: TtsInit | undefined): TtsProvider {
  const espeakPath = init?.espeakPath ?? 'espeak-ng';
  if (init?.provider === 'text' || !espeakAvailable(espeakPath)) return textOnlyTts;
  return espeakTts({ espeakPath, sampleRate: init?.sampleRate ?? 16_000 });
}

/**
 * For the service, once at start-up: turns `auto` into the provider workers will use and logs one
 * line saying which and why (workers then skip the detection).
 */
export function resolveTtsProvider(
  provider: TtsInit['provider'],
  ctx: { callClient: 'emulator' | 'daily'; espeakPath: string; logger: Logger },
): TtsInit['provider'] {
  const log = ctx.logger;
  if (provider === 'auto') {
    if (ctx.callClient === 'emulator') {
      log.info({ tts: 'text' }, 'TTS: text-only with the emulator (it carries the words); TTS_PROVIDER=espeak for real audio');
      return 'text';
    }
    if (espeakAvailable(ctx.espeakPath)) {
      log.info({ tts: 'espeak' }, 'TTS: espeak-ng (offline)');
      return 'espeak';
    }
    log.warn(
      { tts: 'text' },
      'TTS: espeak-ng is not installed (apt-get install espeak-ng) and TTS_PROVIDER is unset: callers will hear silence',
    );
    return 'text';
  }
  if (provider === 'espeak' && !espeakAvailable(ctx.espeakPath)) {
    log.warn(
      { tts: 'text', espeakPath: ctx.espeakPath },
      'TTS: TTS_PROVIDER=espeak but espeak-ng does not run (apt-get install espeak-ng): falling back to text-only',
    );
    return 'text';
  }
  log.info({ tts: provider }, `TTS: ${provider}`);
  return provider;
}
