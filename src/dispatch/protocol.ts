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
 */
import type { Outcome } from './outcome.js';

/** What a worker needs to know to run; sent in `init`, never read from the environment. */
export interface WorkerInit {
  logLevel: string;
  /** LOG_MASK_NUMBERS (absent → masked). */
  maskNumbers?: boolean;
  callClient: 'emulator' | 'daily';
  /** For the daily client: Chromium's path and an optional call-machine bundle override. */
  chromiumPath: string;
  dailyBundleUrl: string | undefined;
  dailyApiUrl: string;
  /** Bearer key for Daily's REST API (for pinlessCallUpdate). Never logged. */
  dailyApiKey: string;
  apiTimeoutMs: number;
  botsDir: string;
  /** Bots to load before a call arrives (prewarm). */
  preloadBots: string[];
  dialinReadyTimeoutMs: number;
  joinTimeoutMs: number;
  maxCallMs: number;
  pinlessUpdateTimeoutMs: number;
  pinlessUpdateDeadlineMs: number;
  pingTimeoutMs: number;
  /** Speech for `call.say()` (see src/sdk/tts.ts). Absent → text-only. */
  tts?: TtsInit;
  /** OpenAI-compatible chat endpoint offered to bots as `call.llm`. Absent → `call.llm` is undefined. */
  llm?: LlmInit;
}

export interface TtsInit {
  provider: 'auto' | 'espeak' | 'text' | 'openai';
  voice?: string;
  sampleRate: number;
  espeakPath: string;
  /** TTS_PROVIDER=openai: endpoint, model and key. The key is never logged. */
  baseUrl?: string;
  model?: string;
  apiKey?: string;
}

export interface LlmInit {
  baseUrl: string;
  model: string;
  /** Never logged. */
  apiKey: string;
  timeoutMs: number;
}

/** One call, as handed to a worker. */
export interface CallAssignment {
  /** Our id for the call (also in logs and the webhook answer). */
  id: string;
  /** Daily's call id (from the webhook). */
  callId: string;
  callDomain: string;
  from: string;
  to: string;
  sipHeaders: Record<string, string>;
  roomName: string;
  roomUrl: string;
  /** Bot meeting token. Never logged. */
  token: string;
  bot: string;
  /** Date.now() when the webhook arrived, for the timeline. */
  receivedAtMs: number;
  /** Bot settings from the routing file (`call.config` in the bot). */
  botConfig?: Record<string, unknown>;
}

export type Stage =
  | 'joined'
  | 'dialin_ready'
  | 'forward_sent'
  | 'forwarded'
  | 'connected'
  | 'bot_started'
  | 'caller_left';

export type ParentMessage =
  | { type: 'init'; init: WorkerInit }
  | { type: 'ping'; seq: number }
  | { type: 'start'; call: CallAssignment }
  | { type: 'hangup'; reason: Outcome }
  | { type: 'shutdown' };

export type ChildMessage =
  | { type: 'ready'; pid: number; prepareMs: number }
  | { type: 'pong'; seq: number; rssBytes: number; heapUsedBytes: number }
  | { type: 'stage'; callId: string; stage: Stage; atMs: number; detail?: Record<string, unknown> }
  /** What the bot did, for the test harness, the dashboard and call records. */
  | { type: 'bot'; callId: string; kind: 'say' | 'play' | 'digits' | 'transcript' | 'transfer' | 'hangup' | 'dialin_error' | 'dialin_warning'; value: string; atMs: number }
  | { type: 'done'; callId: string; outcome: Outcome; detail?: string; atMs: number }
  | { type: 'fatal'; error: string };

export function isChildMessage(m: unknown): m is ChildMessage {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string';
}

export function isParentMessage(m: unknown): m is ParentMessage {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string';
}
