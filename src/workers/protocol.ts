/**
 * The one IPC protocol between the dispatcher (parent) and a worker (child process).
 *
 * Life of a worker (one-shot: one call, then exit):
 *   parent → init       child → ready        (bot code loaded, client prepared: the worker is warm)
 *   parent → ping       child → pong         (supervision, any time)
 *   parent → start      child → stage*       (joined, dialin_ready, forwarded, connected …)
 *   parent → hangup?                         (shutdown, drain timeout, max duration from outside)
 *                       child → done         (exactly one outcome), then the child exits
 *   parent → shutdown                        (idle worker no longer needed: exit now)
 *
 * A warm slot (src/workers/parent/warm-slots.ts) prepares the worker further before any call:
 *   parent → warm        child → warm-ready   (joined the slot's room as the bot, dialin-ready seen,
 *                                              preloaded bots' greetings synthesized)
 *                        child → warm-lost    (left/ejected/failed before a call; then it exits)
 *   parent → start       (the call carries `warm`: no join, no dialin-ready wait; update at once)
 */
import type { CallIdentity } from '../core/call-identity.js';
import type { Config } from '../core/config.js';
import type { Outcome } from '../core/outcome.js';
import type { BotEventKind, WorkerStage } from '../core/timeline.js';
import type { TurnTiming } from '../core/turn-timing.js';
import type { LlmInit } from '../voice/llm.js';
import type { TtsInit } from '../voice/tts.js';
import type { SttInit } from '../voice/stt.js';
import type { S2sInit } from '../voice/s2s.js';
import type { CallbackInfo } from '../core/callback.js';

/** What a worker needs to know to run; sent in `init`, never read from the environment. */
/** The call limits a worker enforces itself, as the config has them. */
type WorkerCallLimits = Pick<
  Config['call'],
  'dialinReadyTimeoutMs' | 'joinTimeoutMs' | 'maxCallMs' | 'pinlessUpdateTimeoutMs' | 'pinlessUpdateDeadlineMs'
>;

/** What a worker needs of the service's configuration: its fields are typed by `Config` (one definition). */
export interface WorkerInit extends WorkerCallLimits {
  logLevel: Config['logLevel'];
  /** LOG_MASK_NUMBERS (absent → masked). */
  maskNumbers?: Config['logMaskNumbers'];
  callClient: Config['daily']['callClient'];
  /** For the daily client: Chromium's path and an optional call-machine bundle override. */
  chromiumPath: Config['daily']['chromiumPath'];
  dailyBundleUrl: Config['daily']['bundleUrl'];
  /** BROWSER_LAYOUT=shared: the browser this worker was leased by the parent's browser host. Absent → own browser. */
  browser?: { wsEndpoint: string; pid: number };
  dailyApiUrl: string;
  /** Bearer key for Daily's REST API (for pinlessCallUpdate). Never logged. */
  dailyApiKey: string;
  apiTimeoutMs: Config['daily']['apiTimeoutMs'];
  botsDir: Config['bots']['dir'];
  /** Bots to load before a call arrives (prewarm). */
  preloadBots: string[];
  pingTimeoutMs: Config['workers']['pingTimeoutMs'];
  /** Speech for `call.say()` (see src/voice/tts.ts). Absent → text-only. */
  tts?: TtsInit;
  /** OpenAI-compatible chat endpoint offered to bots as `call.llm`. Absent → `call.llm` is undefined. */
  llm?: LlmInit;
  /**
   * Where a worker whose service died leaves its call's outcome (src/workers/orphans.ts): the data
   * directory's `orphans/`. Absent (no data directory): the call is still finished, unrecorded.
   */
  orphanDir?: string;
  /** Speech-to-text: the service's default provider and the vendors' keys (never logged). Absent → Daily's transcription. */
  stt?: SttInit;
  /** Speech-to-speech bots: the vendors' keys (never logged) and bases. Absent → none configured. */
  realtime?: S2sInit;
  /** RECORDING / RECORDINGS_DIR: the service's default for bots and routes that do not say. Absent → off. */
  recording?: { mode: 'off' | 'daily' | 'local'; dir: string };
}

/** One call, as handed to a worker: its identity plus what only the worker needs. */
export interface CallAssignment extends CallIdentity {
  /** Bot meeting token. Never logged. */
  token: string;
  /** Date.now() when the webhook arrived, for the timeline. */
  receivedAtMs: number;
  /** Bot settings from the routing file (`call.config` in the bot). */
  botConfig?: Record<string, unknown>;
  /** The call's trace id (OpenTelemetry, 32 hex), for the worker's log lines; absent when tracing is off. */
  traceId?: string;
  /** Set when the call takes a warm slot: the worker is already in the room and has this endpoint. */
  warm?: {
    sipEndpoint: string;
    /**
     * The parent sends this call's pinlessCallUpdate itself, at the moment it hands the call over
     * (issue 27): the worker waits for its `forward-result` instead of sending one (retries are the
     * parent's). Absent: the worker forwards, as on the cold path.
     */
    parentForwards?: boolean;
  };
  /** An outbound call (POST /calls): the worker joins, then dials `to` instead of forwarding a held caller. */
  outbound?: OutboundDial;
}

/** What the worker dials for an outbound call, and how it listens to the answer. */
export interface OutboundDial {
  to: { phoneNumber: string } | { sipUri: string };
  /** Caller id (Daily's `callerId`), when given. */
  callerId?: string;
  metadata: Record<string, unknown>;
  /** 1 for the first attempt. */
  attempt: number;
  /** The far end may ring this long (then: no-answer). */
  ringTimeoutMs: number;
  /** Classify the answer as person or machine (src/voice/voicemail.ts) before the bot runs. */
  detectVoicemail: boolean;
  /** A callback instead of hold (src/admission/callbacks.ts): the bot sees it as `call.callback`. */
  callback?: CallbackInfo;
}

/** The room a warm slot's worker joins as the bot before any call. */
export interface WarmRoom {
  roomName: string;
  roomUrl: string;
  /** Bot meeting token. Never logged. */
  token: string;
}

export type Stage = WorkerStage;

/** How the parent's pinlessCallUpdate went (its retries done): forwarded, or failed for good. */
export type ForwardResult =
  | { ok: true; attempts: number }
  | {
      ok: false;
      attempts: number;
      /** An attempt got no answer (timeout, connection lost): Daily may have carried it out. */
      unanswered: boolean;
      message: string;
      status?: number;
      info?: string;
      retryable: boolean;
    };

/** A bot as a worker loaded it: its version (declared, else `hash`) and the hash of its files (src/core/bot-files.ts). */
export interface BotVersionInfo {
  version: string;
  hash: string;
}

export type ParentMessage =
  | { type: 'init'; init: WorkerInit }
  | { type: 'ping'; seq: number }
  | { type: 'warm'; room: WarmRoom }
  | { type: 'start'; call: CallAssignment }
  | { type: 'hangup'; reason: Outcome }
  | { type: 'shutdown' }
  /** A warm call's pinlessCallUpdate, sent by the parent (`CallAssignment.warm.parentForwards`): how it went. */
  | { type: 'forward-result'; patchbayId: string; result: ForwardResult }
  /** The answer to the worker's `rate`: it may send now (`error`: the parent could not grant; send anyway). */
  | { type: 'rate-grant'; seq: number; error?: string };

export type ChildMessage =
  /** `bots`: the versions of the bots it preloaded and can run (loaded, `prewarm` passed); `failed`: why the others cannot. */
  | { type: 'ready'; pid: number; prepareMs: number; bots?: Record<string, BotVersionInfo>; failed?: Record<string, string> }
  /** `pssBytes`: the worker's own PSS; `pageBytes`: PSS of its page's browser processes (daily client). */
  | { type: 'pong'; seq: number; rssBytes: number; heapUsedBytes: number; pssBytes?: number; pageBytes?: number }
  // `patchbayId` is patchbay's id for the call (CallAssignment.id); `callId` would be Daily's. (Not `sessionId`: that is a Daily participant's.)
  | { type: 'stage'; patchbayId: string; stage: Stage; atMs: number; detail?: Record<string, unknown> }
  /** What the bot did, for the test harness, the dashboard and call records. */
  | { type: 'bot'; patchbayId: string; kind: BotEventKind; value: string; atMs: number }
  /** A turn of the conversation finished (its first frame was sent): its stages' times (src/core/turn-timing.ts). */
  | { type: 'turn'; patchbayId: string; turn: TurnTiming }
  /** The bot the call runs, as loaded: sent once it is loaded, before it runs. */
  | ({ type: 'bot-version'; patchbayId: string; bot: string } & BotVersionInfo)
  | { type: 'done'; patchbayId: string; outcome: Outcome; detail?: string; atMs: number }
  | { type: 'warm-ready'; sipEndpoint: string; atMs: number }
  | { type: 'warm-lost'; reason: string; atMs: number }
  | { type: 'fatal'; error: string }
  /**
   * The worker's own Daily request (pinlessCallUpdate) asks the parent's rate limiter — shared by the
   * fleet through Redis — for a grant; `rate-release` once its answer is in.
   */
  | { type: 'rate'; seq: number; method: string; path: string; leaseMs: number }
  | { type: 'rate-release'; seq: number };

export function isChildMessage(m: unknown): m is ChildMessage {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string';
}

export function isParentMessage(m: unknown): m is ParentMessage {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string';
}
