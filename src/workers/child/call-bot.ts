/**
 * The bot's part of a call in the worker: loading it before anyone is connected to it, its
 * session, the greeting, its `onCall`, and its hooks (a hook that throws ends the call as bot_error).
 */
import type { CallClient } from '../../daily/call-client.js';
import { CallEndedError, errorMessage } from '../../core/errors.js';
import type { VoicemailInfo } from '../../sdk/index.js';
import { CallSession, type BotEventKind } from '../../sdk/session.js';
import { textOnlyTts } from '../../voice/tts.js';
import { botFrame, type LoadedBot } from './bot-loader.js';
import { step, type CallResult } from './call-ending.js';
import { infoOf, type CallRun } from './call-state.js';
import { startGreeting } from './greeting.js';
import { startStt, sttChoiceOf, type SttSink } from './call-stt.js';
import { timedLlm, timedTts, turnClock } from './turn-clock.js';
import { botTts } from './call-tts.js';
import type { TurnTimer } from '../../core/turn-timing.js';
import { runRealtimeBot } from './call-realtime.js';

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

/** A final transcript of the caller for the bot (Daily's or its STT provider's): `listen()`, then `onTranscript`. */
export function giveTranscript(run: CallRun, session: CallSession, text: string): void {
  session.pushTranscript(text);
  void runHook(run, 'onTranscript', (b) => b.onTranscript?.(session, text));
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
  const loaded = run.loaded;
  if (loaded) deps.send({ type: 'bot-version', patchbayId: deps.call.id, bot: deps.call.bot, version: loaded.version, hash: loaded.hash });
  return loaded !== undefined && !ending.result;
}

/** The call ends at the bot's (or the service's) longest call; returns the timer. */
export function startMaxDuration(run: CallRun, bot: Bot): NodeJS.Timeout {
  const maxCallMs = Math.min(run.deps.init.maxCallMs, bot.maxCallMs ?? Infinity);
  return setTimeout(() => run.ending.end({ kind: 'max-duration', maxCallMs }), maxCallMs);
}

/** The call client as the bot sees it: the first `sendAudio` reports the `first_audio` stage; each marks a turn's first frame. */
function botClient(run: CallRun, timer: TurnTimer): CallClient {
  const { client } = run.deps;
  let firstAudio = false;
  const sendAudio: CallClient['sendAudio'] = (audio, signal) => {
    timer.mark('firstFrameSent');
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

/** The call's turn timer (src/core/turn-timing.ts): finished turns go to the parent; an unfinished one is dropped at the end. */
function callTurnTimer(run: CallRun): TurnTimer {
  const timer = turnClock(run.deps.call.id, run.deps.send);
  run.turnTimer = timer;
  run.ending.signal.addEventListener('abort', () => timer.reset(), { once: true });
  return timer;
}

function openSession(run: CallRun, bot: Bot, client: CallClient, timer: TurnTimer): CallSession {
  const { deps, ending } = run;
  const { call, send } = deps;
  const transcriptionLanguage = typeof bot.transcription === 'object' ? bot.transcription.language : undefined;
  const stt = sttChoiceOf(deps.init, bot);
  const mark = timer.mark.bind(timer);
  const session = new CallSession({
    info: infoOf(call),
    client,
    logger: run.logger,
    // The bot's own TTS (`tts: cartesia({...})`), else the service's.
    tts: timedTts(botTts(deps.init, bot.tts, run.logger) ?? deps.tts ?? textOnlyTts, mark),
    ...(deps.ttsFallback ? { ttsFallback: timedTts(deps.ttsFallback, mark) } : {}),
    mark,
    signal: ending.signal,
    end: (outcome, detail) => ending.end({ kind: 'bot-ended', outcome, detail }),
    report: (kind: BotEventKind, value: string) => send({ type: 'bot', patchbayId: call.id, kind, value, atMs: Date.now() }),
    callerSessionId: () => run.callerSessionId,
    ...(bot.idleTimeoutMs ? { idleTimeoutMs: bot.idleTimeoutMs } : {}),
    ...(deps.llm ? { llm: timedLlm(deps.llm, mark) } : {}),
    ...(transcriptionLanguage ? { transcriptionLanguage } : {}),
    ...(stt ? { startStt: () => startStt(run, sink(), stt) } : {}),
    ...(bot.interruptions ? { interruptions: bot.interruptions } : {}),
    ...(bot.endOfTurn ? { endOfTurn: bot.endOfTurn } : {}),
    ...(bot.maxTurnPauseMs ? { maxTurnPauseMs: bot.maxTurnPauseMs } : {}),
    ...(bot.noiseSuppression ? { noiseSuppression: true } : {}),
    // Late-bound: a recording that waits for consent starts after the session opens.
    recording: {
      pause: async () => run.recordingControl?.pause(),
      resume: async () => run.recordingControl?.resume(),
    },
  });
  function sink(): SttSink {
    return {
      transcript: (text) => giveTranscript(run, session, text),
      // Interim words may interrupt a prompt sooner; the vendor's end of turn ends listen() (src/sdk/turns.ts).
      event: (ev) => {
        if (ev.type === 'interim' && ev.text.trim()) session.pushInterim(ev.text);
        else if (ev.type === 'end-of-turn') session.pushEndOfTurn(ev.text);
      },
      // The caller's frames as the session hears them (RNNoise first with `noiseSuppression`).
      audio: session.callerAudio,
      error: (err) => runHook(run, 'onError', (b) => b.onError?.(session, err)),
    };
  }
  return session;
}

/** Transcription and voice activity, as the bot asked; a failure to start only logs. */
async function startListening(run: CallRun, session: CallSession, bot: Bot): Promise<void> {
  const { logger } = run;
  if (bot.onTranscript || bot.transcription || bot.stt)
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
export async function runBot(run: CallRun, loaded: LoadedBot, voicemail?: VoicemailInfo): Promise<CallResult> {
  const { bot } = loaded;
  const timer = callTurnTimer(run);
  const client = botClient(run, timer);
  const session = openSession(run, bot, client, timer);
  run.session = session;
  if (voicemail) return runVoicemail(run, session, bot, voicemail);
  if (run.askConsent) await run.askConsent(session);
  const greeting = startGreeting(session, loaded);
  greeting?.catch(() => undefined);
  await startListening(run, session, bot);
  session.touch();
  for (const tone of run.earlyDigits.splice(0)) giveDigit(run, session, tone);
  if (greeting && !(await awaitGreeting(run, greeting))) return run.ending.done;
  run.stage('bot_started');
  const handler = bot.realtime ? runRealtimeBot(run, session, bot, client, timer) : (async () => bot.onCall?.(session))();
  handler.then(
    () => run.ending.end({ kind: 'bot-finished' }),
    (err: unknown) => botFailed(run, err, bot.realtime ? 'realtime' : 'onCall'),
  );
  const outcome = await run.ending.done;
  // Give the handler a moment to unwind (its primitives reject with CallEndedError now).
  await Promise.race([handler.catch(() => undefined), new Promise((r) => setTimeout(r, 500).unref())]);
  return outcome;
}

/** An outbound call answered by a machine: the bot's `onVoicemail` leaves its message, then the call ends. */
async function runVoicemail(run: CallRun, session: CallSession, bot: Bot, info: VoicemailInfo): Promise<CallResult> {
  if (!bot.onVoicemail) {
    run.ending.end({ kind: 'bot-ended', outcome: 'completed', detail: 'voicemail: the bot has no onVoicemail; hung up' });
    return run.ending.done;
  }
  run.stage('bot_started', { voicemail: true });
  const handler = (async () => bot.onVoicemail?.(session, info))();
  handler.then(
    () => run.ending.end({ kind: 'bot-ended', outcome: 'completed', detail: `voicemail (${info.reason}): message left` }),
    (err: unknown) => botFailed(run, err, 'onVoicemail'),
  );
  const outcome = await run.ending.done;
  await Promise.race([handler.catch(() => undefined), new Promise((r) => setTimeout(r, 500).unref())]);
  return outcome;
}
