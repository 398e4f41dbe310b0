/**
 * What the call runner's handlers share for one call: the dependencies, the ending, and what the
 * call client told us so far (caller's session, connected, the bot's session).
 */
import type { Logger } from 'pino';
import type { CallClient } from '../../daily/call-client.js';
import type { CallInfo } from '../../sdk/index.js';
import type { CallSession } from '../../sdk/session.js';
import type { LlmProvider } from '../../voice/llm.js';
import type { TtsProvider } from '../../voice/tts.js';
import type { CallAssignment, ChildMessage, ForwardResult, Stage, WorkerInit } from '../protocol.js';
import type { LoadedBot } from './bot-loader.js';
import type { TurnTimer } from '../../core/turn-timing.js';
import { Ending } from './call-ending.js';

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
  /** What a streamed say() falls back to when the vendor fails (espeak-ng or text). */
  ttsFallback?: TtsProvider;
  /** Offered to the bot as `call.llm`. */
  llm?: LlmProvider;
  /** Why `hangupSignal` fired, when the worker knows better than "ended by the service". */
  hangupDetail?: () => string | undefined;
  /** A warm call whose update the parent sends: its `forward-result` (undefined if the parent is gone). */
  parentForward?: Promise<ForwardResult | undefined>;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

export interface CallRun {
  readonly deps: RunCallDeps;
  readonly logger: Logger;
  readonly ending: Ending;
  /** Reports a stage to the parent. */
  stage(s: Stage, detail?: Record<string, unknown>): void;
  /** Listens to the call client until the call is over (`unsubs`). */
  on: CallClient['on'];
  readonly unsubs: Array<() => void>;
  /** The first `dialin-ready`'s SIP endpoint. */
  readonly ready: Deferred<string>;
  readyCount: number;
  /** The caller's first `dialin-connected`. */
  readonly arrived: Deferred<void>;
  connected: boolean;
  callerSessionId: string | undefined;
  /** Keys pressed between the caller's arrival and the bot's start (same network read), kept for the bot. */
  readonly earlyDigits: string[];
  loaded: LoadedBot | undefined;
  session: CallSession | undefined;
  /** A local recording running (call-recording.ts): the bot's audio goes to it too; returns its cut for an interrupted utterance. */
  botAudioTap?: (pcm: Int16Array, sampleRate: number) => () => void;
  /** The call's recording, for the bot's `pauseRecording()` / `resumeRecording()` and sensitive input. */
  recordingControl?: { pause(): Promise<void>; resume(): Promise<void> };
  /**
   * The call's turn timer (src/core/turn-timing.ts; set with the session): a speech-to-speech runner
   * marks `speechEnd` (the model's VAD) and `modelFirstAudio`; `firstFrameSent` is marked by the call
   * client the bot sees.
   */
  turnTimer?: TurnTimer;
  /** Asks the caller's consent to be recorded (a `consent` prompt), before the greeting; set by call-recording.ts. */
  askConsent?: (session: CallSession) => Promise<void>;
  /** The update's rate grant, asked for once the bot has joined (forward-grant.ts). */
  forwardGrant?: { grant: Promise<() => void>; used: boolean };
}

export function newCallRun(deps: RunCallDeps): CallRun {
  const { call, client, send } = deps;
  const unsubs: Array<() => void> = [];
  return {
    deps,
    logger: deps.logger,
    ending: new Ending(),
    stage: (s, detail) => send({ type: 'stage', patchbayId: call.id, stage: s, atMs: Date.now(), ...(detail ? { detail } : {}) }),
    on: (e, l) => {
      const u = client.on(e, l);
      unsubs.push(u);
      return u;
    },
    unsubs,
    ready: deferred<string>(),
    readyCount: 0,
    arrived: deferred<void>(),
    connected: false,
    callerSessionId: undefined,
    earlyDigits: [],
    loaded: undefined,
    session: undefined,
  };
}

export function infoOf(call: CallAssignment): CallInfo {
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
    direction: call.outbound ? 'outbound' : 'inbound',
    metadata: Object.freeze({ ...(call.outbound?.metadata ?? {}) }),
    callback: call.outbound?.callback ? Object.freeze({ ...call.outbound.callback }) : undefined,
  };
}
