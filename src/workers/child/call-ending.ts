/**
 * How a worker's call ends: every reason the call runner can stop for, as a typed value
 * (`CallEnd`), and the one place that turns it into an outcome and its detail (`outcomeOf`).
 * `Ending` keeps the first of them; later ones are ignored.
 */
import { DailyApiError, PatchbayError, errorMessage } from '../../core/errors.js';
import { isOutcome, type Outcome } from '../../core/outcome.js';

export interface CallResult {
  outcome: Outcome;
  detail?: string;
}

/** Why a call ended, as the runner saw it (before it is an outcome). */
export type CallEnd =
  // Before the caller is connected.
  | { kind: 'join-failed'; message: string }
  | { kind: 'join-timeout'; timeoutMs: number }
  | { kind: 'dialin-ready-timeout'; timeoutMs: number }
  | { kind: 'dialin-error'; errorMsg: string }
  | { kind: 'bot-load-failed'; message: string }
  | { kind: 'bot-load-timeout' }
  /** pinlessCallUpdate failed for good (its last error, after `attempts` attempts). */
  | { kind: 'forward-rejected'; err: unknown; attempts: number }
  | { kind: 'caller-not-connected'; timeoutMs: number }
  // Any time.
  | { kind: 'caller-left'; why: string; connected: boolean; transferTarget: string | undefined }
  /** A fatal error of the call client. */
  | { kind: 'client-error'; code: string | undefined; message: string }
  | { kind: 'left-meeting'; reason: string }
  /** The parent's `hangup` (the signal's reason is the outcome it asks for). */
  | { kind: 'hangup'; reason: unknown; detail: string | undefined }
  | { kind: 'bot-error'; where: string; message: string; frame: string | undefined }
  /** A bug of the runner itself. */
  | { kind: 'internal'; message: string }
  | { kind: 'max-duration'; maxCallMs: number }
  /** The bot's onCall returned. */
  | { kind: 'bot-finished' }
  /** The bot (or its session: idle timeout, hang-up) ended the call with this outcome. */
  | { kind: 'bot-ended'; outcome: Outcome; detail: string | undefined };

/** The one mapping from why a call ended to its outcome and detail. */
export function outcomeOf(end: CallEnd): CallResult {
  switch (end.kind) {
    case 'join-failed':
      return { outcome: 'join_failed', detail: end.message };
    case 'join-timeout':
      return { outcome: 'join_failed', detail: `join timed out after ${end.timeoutMs} ms` };
    case 'dialin-ready-timeout':
      return { outcome: 'dialin_timeout', detail: `no dialin-ready within ${end.timeoutMs} ms` };
    case 'dialin-error':
      return { outcome: 'dialin_error', detail: end.errorMsg };
    case 'bot-load-failed':
      return { outcome: 'bot_load_failed', detail: end.message };
    case 'bot-load-timeout':
      return { outcome: 'bot_load_failed', detail: 'bot did not load in time' };
    case 'forward-rejected':
      return forwardOutcome(end.err, end.attempts);
    case 'caller-not-connected':
      return { outcome: 'forward_failed', detail: `caller not connected within ${end.timeoutMs} ms of pinlessCallUpdate` };
    case 'caller-left':
      // A transferred caller leaves the room: that is the bot's doing, not a hang-up.
      if (end.transferTarget) return { outcome: 'completed', detail: `transferred to ${end.transferTarget}` };
      return { outcome: end.connected ? 'caller_hangup' : 'caller_hangup_on_hold', detail: end.why };
    case 'client-error':
      return { outcome: end.code === 'browser_lost' ? 'browser_lost' : 'bot_removed', detail: end.message };
    case 'left-meeting':
      return { outcome: 'bot_removed', detail: `left meeting: ${end.reason}` };
    case 'hangup':
      // main.ts aborts with an outcome; anything else is the service ending the call.
      return { outcome: isOutcome(end.reason) ? end.reason : 'shutdown', detail: end.detail ?? 'ended by the service' };
    case 'bot-error':
      return { outcome: 'bot_error', detail: `${end.where}: ${end.message}${end.frame ? ` (${end.frame})` : ''}` };
    case 'internal':
      return { outcome: 'bot_error', detail: `internal: ${end.message}` };
    case 'max-duration':
      return { outcome: 'max_duration', detail: `call reached ${end.maxCallMs} ms` };
    case 'bot-finished':
      return { outcome: 'completed', detail: 'bot finished' };
    case 'bot-ended':
      return end.detail === undefined ? { outcome: end.outcome } : { outcome: end.outcome, detail: end.detail };
  }
}

/** Daily's 404: the held call is gone (the caller hung up on hold); anything else: forward_failed. */
function forwardOutcome(err: unknown, attempts: number): CallResult {
  if (err instanceof DailyApiError && err.status === 404)
    return { outcome: 'caller_hangup_on_hold', detail: `pinlessCallUpdate: call not found (${err.message})` };
  return { outcome: 'forward_failed', detail: `pinlessCallUpdate after ${attempts} attempt(s): ${errorMessage(err)}` };
}

/** Settles once with the first outcome; exposes an AbortSignal that fires at the same moment. */
export class Ending {
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

  end(why: CallEnd): void {
    if (this.result) return;
    this.result = outcomeOf(why);
    this.ctl.abort(this.result.outcome);
    this.resolve(this.result);
  }
}

/** Waits for `p`, or ends the call with `onTimeout` after `ms`; returns undefined if the call ended meanwhile. */
export async function step<T>(ending: Ending, p: Promise<T>, ms: number, onTimeout: CallEnd): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => {
      ending.end(onTimeout);
      resolve(undefined);
    }, ms);
  });
  try {
    return await Promise.race([p, timeout, ending.done.then(() => undefined)]);
  } finally {
    clearTimeout(timer);
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new PatchbayError('timeout', `timed out after ${ms} ms`, { retryable: true })), ms);
    }),
  ]).finally(() => clearTimeout(t));
}
