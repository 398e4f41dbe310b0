/**
 * The bot's speech-to-text when it is a streaming vendor (bot option `stt`, else STT_PROVIDER):
 * the caller's audio frames go to the vendor through a `ResilientStt` (reopened with its buffered
 * audio after a dropped connection); its finals reach the bot like Daily's transcripts
 * (`giveTranscript`: `listen()` and `onTranscript`). When the vendor fails for good, the bot's
 * `onError` is told and, with STT_FALLBACK=daily, Daily's transcription takes over.
 */
import type { Logger } from 'pino';
import { errorMessage } from '../../core/errors.js';
import { SttError, type SttChoice, type SttEvent, type SttInit, type SttProvider, type SttProviderName } from '../../voice/stt.js';
import { loadStt } from '../../voice/stt-load.js';
import { ResilientStt } from '../../voice/stt-resilient.js';
import type { WorkerInit } from '../protocol.js';
import type { LoadedBot } from './bot-loader.js';
import type { CallRun } from './call-state.js';

/** Where the vendor's results go: the bot's transcripts (`listen()`, `onTranscript`) and its `onError`. */
export interface SttSink {
  /** A final transcript. */
  transcript(text: string): void;
  /** The other events: interim words, the vendor's end of turn. */
  event(ev: SttEvent): void;
  /** The caller's frames (denoised when the bot asks), started once by whoever needs them. */
  audio: { on(fn: (pcm: Int16Array, sampleRate: number) => void): () => void; start(): Promise<void> };
  error(err: SttError): Promise<void>;
}

type StreamingName = Exclude<SttProviderName, 'daily'>;
const providers = new Map<StreamingName, Promise<SttProvider>>();

function providerFor(name: StreamingName, init: SttInit): Promise<SttProvider> {
  let p = providers.get(name);
  if (!p) {
    p = loadStt(name, init);
    providers.set(name, p);
    p.catch(() => providers.delete(name));
  }
  return p;
}

/** At worker start: loads the service's default vendor's SDK (a bot choosing another loads it at its call). */
export async function preloadStt(init: WorkerInit, logger: Logger): Promise<void> {
  const name = init.stt?.provider;
  if (!init.stt || !name || name === 'daily') return;
  await providerFor(name, init.stt).catch((err: unknown) => logger.warn({ err: errorMessage(err) }, 'speech-to-text could not load'));
}

/** The bot's choice, else the service's; undefined for Daily's transcription. */
export function sttChoiceOf(init: WorkerInit, bot: LoadedBot['bot']): (SttChoice & { provider: StreamingName }) | undefined {
  const choice: SttChoice = bot.stt ?? { provider: init.stt?.provider ?? 'daily' };
  if (choice.provider === 'daily') return undefined;
  const language = choice.language ?? (typeof bot.transcription === 'object' ? bot.transcription.language : undefined);
  return { ...choice, provider: choice.provider, ...(language ? { language } : {}) };
}

/**
 * Starts the vendor for this call: the session's `startStt`. Resolves once the first stream is open
 * or the vendor failed (then the fallback is on); never rejects, so `listen()` never waits on it.
 */
export async function startStt(run: CallRun, sink: SttSink, choice: SttChoice & { provider: StreamingName }): Promise<void> {
  const { init } = run.deps;
  const log = run.logger.child({ stt: choice.provider });
  const failed = (err: SttError) => void fallBack(run, sink, choice, err);
  let provider: SttProvider;
  try {
    provider = await providerFor(choice.provider, init.stt ?? { provider: choice.provider, fallback: 'daily' });
  } catch (err) {
    failed(err instanceof SttError ? err : new SttError(errorMessage(err)));
    return;
  }
  const { provider: _p, ...options } = choice;
  const stt = new ResilientStt({
    provider,
    options,
    onEvent: (ev) => {
      if (ev.type === 'final') sink.transcript(ev.text);
      else sink.event(ev);
    },
    onFailed: failed,
    onReopen: (err, attempt) => log.warn({ err: err.message, status: err.status, attempt }, 'speech-to-text stream lost; reopening'),
  });
  const off = sink.audio.on((pcm, sampleRate) => stt.write(pcm, sampleRate));
  run.ending.signal.addEventListener(
    'abort',
    () => {
      off();
      void stt.close();
    },
    { once: true },
  );
  await sink.audio.start().catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'receiveAudio failed'));
  await stt.start();
}

/** The vendor failed for good: the bot is told; Daily's transcription takes over when configured. */
async function fallBack(run: CallRun, sink: SttSink, choice: SttChoice, err: SttError): Promise<void> {
  if (run.ending.signal.aborted) return;
  const daily = (run.deps.init.stt?.fallback ?? 'daily') === 'daily';
  run.logger.warn({ err: err.message, status: err.status, fallback: daily ? 'daily' : 'none' }, 'speech-to-text failed');
  await sink.error(err);
  if (!daily || run.ending.signal.aborted) return;
  await run.deps.client
    .startTranscription(choice.language ? { language: choice.language } : undefined)
    .catch((e: unknown) => run.logger.warn({ err: errorMessage(e) }, 'Daily transcription (fallback) failed to start'));
}
