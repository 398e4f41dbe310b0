/**
 * One call, inside a worker: join → wait for `dialin-ready` → pinlessCallUpdate (exactly once) →
 * wait for `dialin-connected` → run the bot → leave. Whatever happens, it resolves with exactly
 * one outcome; it never throws.
 */
import type { Logger } from 'pino';
import type { CallClient } from '../../daily/call-client.js';
import { DailyRestClient } from '../../daily/rest.js';
import { callerDisplayName } from '../../daily/sip.js';
import { CallEndedError, DailyApiError, PatchbayError, errorMessage } from '../../core/errors.js';
import type { Outcome } from '../../core/outcome.js';
import type { CallAssignment, ChildMessage, Stage, WorkerInit } from '../protocol.js';
import type { CallInfo } from '../../sdk/index.js';
import { CallSession, type BotEventKind } from '../../sdk/session.js';
import type { LlmProvider } from '../../voice/llm.js';
import { textOnlyTts, type TtsProvider } from '../../voice/tts.js';
import { botFrame, type LoadedBot } from './bot-loader.js';
import { startGreeting } from './greeting.js';
import { parentRateLimit } from './rate-grant.js';

export interface CallResult {
  outcome: Outcome;
  detail?: string;
}

export interface RunCallDeps {
  init: WorkerInit;
  call: CallAssignment;
  client: CallClient;
  logger: Logger;
  /** Resolves with the bot, or rejects with a BotLoadError. Started before join, awaited before forwarding. */
  bot: Promise<LoadedBot>;
  send(msg: ChildMessage): void;
  /** Aborted by the parent (`hangup` message); its reason is the outcome to record. */
  hangupSignal: AbortSignal;
  tts?: TtsProvider;
  /** Offered to the bot as `call.llm`. */
  llm?: LlmProvider;
  /** Why `hangupSignal` fired, when the worker knows better than "ended by the service". */
  hangupDetail?: () => string | undefined;
}

/** Settles once with the first outcome; exposes an AbortSignal that fires at the same moment. */
class Ending {
  private readonly ctl = new AbortController();
  result: CallResult | undefined;
  readonly done: Promise<CallResult>;
  private resolve!: (r: CallResult) => void;

  constructor() {
    this.done = new Promise((r) => (this.resolve = r));
  }

  get signal(): AbortSignal {
    return this.ctl.signal;
  }

  end(outcome: Outcome, detail?: string): void {
    if (this.result) return;
    this.result = detail === undefined ? { outcome } : { outcome, detail };
    this.ctl.abort(outcome);
    this.resolve(this.result);
  }
}

/** Waits for `p`, or ends the call with `onTimeout` after `ms`; returns undefined if the call ended meanwhile. */
async function step<T>(ending: Ending, p: Promise<T>, ms: number, onTimeout: () => void): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => {
      onTimeout();
      resolve(undefined);
    }, ms);
  });
  try {
    return await Promise.race([p, timeout, ending.done.then(() => undefined)]);
  } finally {
    clearTimeout(timer);
  }
}

export async function runCall(deps: RunCallDeps): Promise<CallResult> {
  const { init, call, client, logger, send } = deps;
  const ending = new Ending();
  const stage = (s: Stage, detail?: Record<string, unknown>) =>
    send({ type: 'stage', patchbayId: call.id, stage: s, atMs: Date.now(), ...(detail ? { detail } : {}) });
  const unsubs: Array<() => void> = [];
  const on: CallClient['on'] = (e, l) => {
    const u = client.on(e, l);
    unsubs.push(u);
    return u;
  };

  let connected = false;
  let callerSessionId: string | undefined;
  let session: CallSession | undefined;
  let loaded: LoadedBot | undefined;

  // Listeners first: dialin-ready may fire the moment join resolves.
  let onReady!: (endpoint: string) => void;
  const ready = new Promise<string>((r) => (onReady = r));
  let readyCount = 0;
  on('dialin-ready', ({ sipEndpoint }) => {
    readyCount++;
    if (readyCount === 1) onReady(sipEndpoint);
    else logger.debug({ sipEndpoint, readyCount }, 'dialin-ready again (another SIP endpoint); already forwarding once');
  });
  let onConnected!: () => void;
  const connectedP = new Promise<void>((r) => (onConnected = r));
  on('dialin-connected', (e) => {
    callerSessionId ??= e.sessionId;
    if (!connected) {
      connected = true;
      onConnected();
    }
  });
  const callerLeft = (why: string) => {
    stage('caller_left', { why });
    // A transferred caller leaves the room: that is the bot's doing, not a hang-up.
    if (session?.transferTarget) ending.end('completed', `transferred to ${session.transferTarget}`);
    else ending.end(connected ? 'caller_hangup' : 'caller_hangup_on_hold', why);
  };
  on('dialin-stopped', () => callerLeft('dialin-stopped'));
  on('participant-left', ({ participant }) => {
    if (participant.local) return;
    if (participant.sessionId === callerSessionId) callerLeft('participant-left');
  });
  // Daily's errors and warnings also go to the call's record (its event log).
  const report = (kind: 'dialin_error' | 'dialin_warning', value: string) =>
    send({ type: 'bot', patchbayId: call.id, kind, value, atMs: Date.now() });
  on('dialin-error', ({ errorMsg }) => {
    logger.warn({ errorMsg }, 'dialin-error');
    report('dialin_error', errorMsg);
    if (!connected) ending.end('dialin_error', errorMsg);
  });
  on('dialin-warning', ({ errorMsg }) => {
    logger.warn({ errorMsg }, 'dialin-warning');
    report('dialin_warning', errorMsg);
  });
  on('error', ({ message, fatal, code }) => {
    logger.warn({ err: message, fatal }, 'call client error');
    if (fatal) ending.end(code === 'browser_lost' ? 'browser_lost' : 'bot_removed', message);
  });
  on('left-meeting', ({ reason }) => ending.end('bot_removed', `left meeting: ${reason}`));
  // Keys pressed between the caller's arrival and the bot's start (same network read) are kept.
  const earlyDigits: string[] = [];
  on('dtmf-event', ({ tone, sessionId }) => {
    // Keys from another phone participant (a dialled-out agent) are not the caller's.
    if (sessionId !== undefined && callerSessionId !== undefined && sessionId !== callerSessionId) return;
    if (!session) {
      if (connected && earlyDigits.length < 64) earlyDigits.push(tone);
      return;
    }
    session.pushDigit(tone);
    void runHook('onDtmf', (b) => b.onDtmf?.(session!, tone));
  });
  on('transcription-message', ({ text, isFinal, participantId }) => {
    if (!session || !isFinal || participantId === undefined) return;
    if (callerSessionId && participantId !== callerSessionId) return;
    session.pushTranscript(text);
    void runHook('onTranscript', (b) => b.onTranscript?.(session!, text));
  });

  const onHangup = () => ending.end(deps.hangupSignal.reason as Outcome, deps.hangupDetail?.() ?? 'ended by the service');
  if (deps.hangupSignal.aborted) onHangup();
  else deps.hangupSignal.addEventListener('abort', onHangup, { once: true });

  const botFailed = (err: unknown, where: string) => {
    if (err instanceof CallEndedError || ending.signal.aborted) return;
    const frame = loaded ? botFrame(err, loaded.file) : undefined;
    const message = errorMessage(err);
    logger.error({ err, botFile: loaded?.file, at: frame, hook: where }, 'bot error');
    ending.end('bot_error', `${where}: ${message}${frame ? ` (${frame})` : ''}`);
  };
  async function runHook(where: string, fn: (b: LoadedBot['bot']) => unknown): Promise<void> {
    if (!loaded) return;
    try {
      await fn(loaded.bot);
    } catch (err) {
      botFailed(err, where);
    }
  }

  let maxTimer: NodeJS.Timeout | undefined;
  let outcome: CallResult;
  try {
    // 1–2. Join the room and wait for dialin-ready — done before the call on a warm slot.
    let sipUri: string | undefined;
    if (call.warm) {
      sipUri = call.warm.sipEndpoint;
      stage('joined', { warm: true });
      stage('dialin_ready', { sipEndpoint: sipUri, warm: true });
    } else {
      sipUri = await joinAndWaitReady();
      if (sipUri === undefined || ending.result) return (outcome = await ending.done);
    }

    // The bot must be loaded before we connect anyone to it.
    loaded = await step(
      ending,
      deps.bot.catch((err: unknown) => {
        ending.end('bot_load_failed', errorMessage(err));
        return undefined;
      }),
      init.joinTimeoutMs,
      () => ending.end('bot_load_failed', 'bot did not load in time'),
    );
    if (!loaded || ending.result) return (outcome = await ending.done);

    // 3. Forward the held call: exactly once, retried on retryable failures until the deadline.
    // The URI is built before `forward_sent`: a failure here is a failure before forwarding (retry/apology).
    const updateUri = call.warm ? withDisplayName(sipUri, call.from) : sipUri;
    stage('forward_sent', { sipUri });
    const rest = new DailyRestClient({
      apiUrl: init.dailyApiUrl,
      apiKey: init.dailyApiKey,
      timeoutMs: init.pinlessUpdateTimeoutMs,
      pinlessUpdateTimeoutMs: init.pinlessUpdateTimeoutMs,
      pinlessUpdateDeadlineMs: init.pinlessUpdateDeadlineMs,
      // Daily's per-domain windows, through the parent's (the fleet's) limiter.
      rateLimit: parentRateLimit,
    });
    let attempts = 0;
    // An attempt that got no answer (timeout, connection lost) may have been carried out by Daily.
    let unanswered = false;
    // Retried under the `forward` policy (src/daily/policies.ts).
    const forwarded = await rest
      .pinlessCallUpdate(
        { callId: call.callId, callDomain: call.callDomain, sipUri: updateUri },
        {
          signal: ending.signal,
          onAttempt: (n) => (attempts = n),
          onRetry: (err, attempt, delayMs) => {
            if (err instanceof DailyApiError && err.status === undefined) unanswered = true;
            logger.warn({ err: errorMessage(err), attempt, delayMs }, 'pinlessCallUpdate failed; retrying');
          },
        },
      )
      .then(() => true)
      .catch((err: unknown) => {
        if (ending.result) return false;
        if (unanswered && err instanceof DailyApiError && err.status === 409) {
          // The call is no longer on hold after an attempt whose answer never came: that attempt was most
          // likely carried out. Wait for the caller as after a success; if they never come, forward_failed.
          logger.warn({ attempts }, 'pinlessCallUpdate: the call left hold after an unanswered attempt; taking it as forwarded');
          return true;
        }
        if (err instanceof DailyApiError && err.status === 404) {
          ending.end('caller_hangup_on_hold', `pinlessCallUpdate: call not found (${err.message})`);
        } else {
          ending.end('forward_failed', `pinlessCallUpdate after ${attempts} attempt(s): ${errorMessage(err)}`);
        }
        return false;
      });
    if (!forwarded || ending.result) return (outcome = await ending.done);
    stage('forwarded', { attempts });

    // 4. The caller must actually arrive.
    await step(ending, connectedP, init.dialinReadyTimeoutMs, () =>
      ending.end('forward_failed', `caller not connected within ${init.dialinReadyTimeoutMs} ms of pinlessCallUpdate`),
    );
    if (ending.result) return (outcome = await ending.done);
    stage('connected', { callerSessionId });

    // 5. Run the bot.
    const bot = loaded.bot;
    const maxCallMs = Math.min(init.maxCallMs, bot.maxCallMs ?? Infinity);
    maxTimer = setTimeout(() => ending.end('max_duration', `call reached ${maxCallMs} ms`), maxCallMs);
    const info = infoOf(call);
    const transcriptionLanguage = typeof bot.transcription === 'object' ? bot.transcription.language : undefined;
    let firstAudio = false;
    const sendAudio: CallClient['sendAudio'] = (audio, signal) => {
      if (!firstAudio) {
        firstAudio = true;
        stage('first_audio');
      }
      return client.sendAudio(audio, signal);
    };
    const botClient = new Proxy(client, {
      get: (target, prop) => {
        if (prop === 'sendAudio') return sendAudio;
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    session = new CallSession({
      info,
      client: botClient,
      logger,
      tts: deps.tts ?? textOnlyTts,
      signal: ending.signal,
      end: (o, d) => ending.end(o, d),
      report: (kind: BotEventKind, value: string) => send({ type: 'bot', patchbayId: call.id, kind, value, atMs: Date.now() }),
      callerSessionId: () => callerSessionId,
      ...(bot.idleTimeoutMs ? { idleTimeoutMs: bot.idleTimeoutMs } : {}),
      ...(deps.llm ? { llm: deps.llm } : {}),
      ...(transcriptionLanguage ? { transcriptionLanguage } : {}),
    });
    // The greeting starts at once (cached speech on a warm slot); transcription starts meanwhile.
    const greeting = startGreeting(session, loaded);
    greeting?.catch(() => undefined);
    if (bot.onTranscript || bot.transcription)
      await session.startTranscription().catch((err: unknown) => logger.warn({ err }, 'startTranscription failed'));
    if (bot.turnDetection) {
      await session
        .startVoiceActivity(bot.turnDetection === true ? {} : bot.turnDetection)
        .catch((err: unknown) => logger.warn({ err }, 'voice activity detection could not start; turns end on transcripts'));
    }
    session.touch();
    for (const tone of earlyDigits.splice(0)) {
      session.pushDigit(tone);
      void runHook('onDtmf', (b) => b.onDtmf?.(session!, tone));
    }
    if (greeting) {
      await greeting.catch((err: unknown) => {
        if (!(err instanceof CallEndedError) && !ending.signal.aborted)
          logger.warn({ err: errorMessage(err) }, 'greeting could not be said');
      });
      if (ending.result) return (outcome = await ending.done);
    }
    stage('bot_started');
    const handler = (async () => bot.onCall(session))();
    handler.then(
      () => ending.end('completed', 'bot finished'),
      (err: unknown) => botFailed(err, 'onCall'),
    );
    outcome = await ending.done;
    // Give the handler a moment to unwind (its primitives reject with CallEndedError now).
    await Promise.race([handler.catch(() => undefined), new Promise((r) => setTimeout(r, 500).unref())]);
    return outcome;
  } catch (err) {
    // Our own bug; still exactly one outcome.
    logger.error({ err }, 'call runner failed');
    ending.end('bot_error', `internal: ${errorMessage(err)}`);
    return await ending.done;
  } finally {
    clearTimeout(maxTimer);
    deps.hangupSignal.removeEventListener('abort', onHangup);
    await finish();
  }

  async function joinAndWaitReady(): Promise<string | undefined> {
    const joinStarted = Date.now();
    const joined = await step(
      ending,
      client
        .join({ roomUrl: call.roomUrl, token: call.token, userName: 'patchbay-bot', timeoutMs: init.joinTimeoutMs })
        .catch((err: unknown) => {
          ending.end('join_failed', errorMessage(err));
          return undefined;
        }),
      init.joinTimeoutMs + 1_000,
      () => ending.end('join_failed', `join timed out after ${init.joinTimeoutMs} ms`),
    );
    if (!joined || ending.result) return undefined;
    stage('joined', { joinMs: Date.now() - joinStarted });
    const uri = await step(ending, ready, init.dialinReadyTimeoutMs, () =>
      ending.end('dialin_timeout', `no dialin-ready within ${init.dialinReadyTimeoutMs} ms`),
    );
    if (uri === undefined || ending.result) return undefined;
    stage('dialin_ready', { sipEndpoint: uri });
    return uri;
  }

  async function finish(): Promise<void> {
    const result = ending.result!;
    const callerStillHere = connected && callerSessionId && !session?.transferTarget && result.outcome !== 'caller_hangup';
    if (callerStillHere) {
      await withTimeout(client.ejectParticipant(callerSessionId!), 2_000).catch((err: unknown) =>
        logger.warn({ err: errorMessage(err) }, 'could not hang up on the caller'),
      );
    }
    if (loaded?.bot.onEnd) {
      try {
        await withTimeout(Promise.resolve(loaded.bot.onEnd(session ?? infoOf(call), result.outcome)), 5_000);
      } catch (err) {
        logger.warn({ err, botFile: loaded.file }, 'onEnd failed');
      }
    }
    for (const u of unsubs) u();
    await withTimeout(client.leave(), 3_000).catch(() => undefined);
  }
}

function infoOf(call: CallAssignment): CallInfo {
  const { id, callId, callDomain, from, to, sipHeaders, bot, roomName, roomUrl } = call;
  return {
    id,
    callId,
    callDomain,
    from,
    to,
    sipHeaders,
    bot,
    roomName,
    roomUrl,
    config: Object.freeze({ ...(call.botConfig ?? {}) }),
  };
}

/** The SIP URI with the caller's display name as Daily reads it (`?x-daily_display_name=`, URL-encoded). */
export function withDisplayName(sipUri: string, from: string): string {
  return `${sipUri}${sipUri.includes('?') ? '&' : '?'}x-daily_display_name=${encodeURIComponent(callerDisplayName(from))}`;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new PatchbayError('timeout', `timed out after ${ms} ms`, { retryable: true })), ms);
    }),
  ]).finally(() => clearTimeout(t));
}
