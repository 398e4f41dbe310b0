/**
 * The bot's part of a call in the worker: loading it before anyone is connected to it, its
 * session, the greeting, its `onCall`, and its hooks (a hook that throws ends the call as bot_error).
 */
import type { CallClient } from '../../daily/call-client.js';
import { CallEndedError, errorMessage } from '../../core/errors.js';
import { CallSession, type BotEventKind } from '../../sdk/session.js';
import { textOnlyTts } from '../../voice/tts.js';
import { botFrame, type LoadedBot } from './bot-loader.js';
import { step, type CallResult } from './call-ending.js';
import { infoOf, type CallRun } from './call-state.js';
import { startGreeting } from './greeting.js';

type Bot = LoadedBot['bot'];

/** A bot's code threw (in `where`): the call ends as bot_error, unless it was already ending. */
export function botFailed(run: CallRun, err: unknown, where: string): void {
  if (err instanceof CallEndedError || run.ending.signal.aborted) return;
  const frame = run.loaded ? botFrame(err, run.loaded.file) : undefined;
  const message = errorMessage(err);
  run.logger.error({ err, botFile: run.loaded?.file, at: frame, hook: where }, 'bot error');
  run.ending.end({ kind: 'bot-error', where, message, frame });
}

export async function runHook(run: CallRun, where: string, fn: (b: Bot) => unknown): Promise<void> {
  if (!run.loaded) return;
  try {
    await fn(run.loaded.bot);
  } catch (err) {
    botFailed(run, err, where);
  }
}

/** A key for the bot: its session's digit buffer, then its `onDtmf`. */
export function giveDigit(run: CallRun, session: CallSession, tone: string): void {
  session.pushDigit(tone);
  void runHook(run, 'onDtmf', (b) => b.onDtmf?.(session, tone));
}

/** Stage: the bot must be loaded before we connect anyone to it. */
export async function awaitBot(run: CallRun): Promise<boolean> {
  const { deps, ending } = run;
  run.loaded = await step(
    ending,
    deps.bot.catch((err: unknown) => {
      ending.end({ kind: 'bot-load-failed', message: errorMessage(err) });
      return undefined;
    }),
    deps.init.joinTimeoutMs,
    { kind: 'bot-load-timeout' },
  );
  return run.loaded !== undefined && !ending.result;
}

/** The call ends at the bot's (or the service's) longest call; returns the timer. */
export function startMaxDuration(run: CallRun, bot: Bot): NodeJS.Timeout {
  const maxCallMs = Math.min(run.deps.init.maxCallMs, bot.maxCallMs ?? Infinity);
  return setTimeout(() => run.ending.end({ kind: 'max-duration', maxCallMs }), maxCallMs);
}

/** The call client as the bot sees it: the first `sendAudio` reports the `first_audio` stage. */
function botClient(run: CallRun): CallClient {
  const { client } = run.deps;
  let firstAudio = false;
  const sendAudio: CallClient['sendAudio'] = (audio, signal) => {
    if (!firstAudio) {
      firstAudio = true;
      run.stage('first_audio');
    }
    const cut = audio.pcm.length > 0 ? run.botAudioTap?.(audio.pcm, audio.sampleRate) : undefined;
    if (cut) signal?.addEventListener('abort', cut, { once: true });
    return client.sendAudio(audio, signal);
  };
  return new Proxy(client, {
    get: (target, prop) => {
      if (prop === 'sendAudio') return sendAudio;
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

function openSession(run: CallRun, bot: Bot): CallSession {
  const { deps, ending } = run;
  const { call, send } = deps;
  const transcriptionLanguage = typeof bot.transcription === 'object' ? bot.transcription.language : undefined;
  return new CallSession({
    info: infoOf(call),
    client: botClient(run),
    logger: run.logger,
    tts: deps.tts ?? textOnlyTts,
    signal: ending.signal,
    end: (outcome, detail) => ending.end({ kind: 'bot-ended', outcome, detail }),
    report: (kind: BotEventKind, value: string) => send({ type: 'bot', patchbayId: call.id, kind, value, atMs: Date.now() }),
    callerSessionId: () => run.callerSessionId,
    ...(bot.idleTimeoutMs ? { idleTimeoutMs: bot.idleTimeoutMs } : {}),
    ...(deps.llm ? { llm: deps.llm } : {}),
    ...(transcriptionLanguage ? { transcriptionLanguage } : {}),
    // Late-bound: a recording that waits for consent starts after the session opens.
    recording: {
      pause: async () => run.recordingControl?.pause(),
      resume: async () => run.recordingControl?.resume(),
    },
  });
}

/** Transcription and voice activity, as the bot asked; a failure to start only logs. */
async function startListening(run: CallRun, session: CallSession, bot: Bot): Promise<void> {
  const { logger } = run;
  if (bot.onTranscript || bot.transcription)
    await session.startTranscription().catch((err: unknown) => logger.warn({ err }, 'startTranscription failed'));
  if (bot.turnDetection) {
    await session
      .startVoiceActivity(bot.turnDetection === true ? {} : bot.turnDetection)
      .catch((err: unknown) => logger.warn({ err }, 'voice activity detection could not start; turns end on transcripts'));
  }
}

/** Waits for the greeting to be said; false when the call ended meanwhile. */
async function awaitGreeting(run: CallRun, greeting: Promise<void>): Promise<boolean> {
  await greeting.catch((err: unknown) => {
    if (!(err instanceof CallEndedError) && !run.ending.signal.aborted)
      run.logger.warn({ err: errorMessage(err) }, 'greeting could not be said');
  });
  return !run.ending.result;
}

/** Stage: the session, the greeting (started at once; transcription starts meanwhile), then `onCall` until the call ends. */
export async function runBot(run: CallRun, loaded: LoadedBot): Promise<CallResult> {
  const { bot } = loaded;
  const session = openSession(run, bot);
  run.session = session;
  if (run.askConsent) await run.askConsent(session);
  const greeting = startGreeting(session, loaded);
  greeting?.catch(() => undefined);
  await startListening(run, session, bot);
  session.touch();
  for (const tone of run.earlyDigits.splice(0)) giveDigit(run, session, tone);
  if (greeting && !(await awaitGreeting(run, greeting))) return run.ending.done;
  run.stage('bot_started');
  const handler = (async () => bot.onCall(session))();
  handler.then(
    () => run.ending.end({ kind: 'bot-finished' }),
    (err: unknown) => botFailed(run, err, 'onCall'),
  );
  const outcome = await run.ending.done;
  // Give the handler a moment to unwind (its primitives reject with CallEndedError now).
  await Promise.race([handler.catch(() => undefined), new Promise((r) => setTimeout(r, 500).unref())]);
  return outcome;
}
