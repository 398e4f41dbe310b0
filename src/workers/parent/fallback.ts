/**
 * Failures before forwarding (docs/RELIABILITY.md, "Failures before forwarding"): nothing has been
 * forwarded yet, so the held caller can still be served. After a failed attempt on a worker this
 * decides: retry on a fresh worker (while the hold budget allows one more attempt), or give up and
 * send the caller somewhere — FALLBACK_SIP_URI (a Daily room's SIP URI, e.g. a human queue) by
 * pinlessCallUpdate from the parent, or else a fresh worker running the built-in apology bot.
 * Never a caller left on hold with nobody coming.
 */
import type { Config } from '../../core/config.js';
import type { Outcome } from '../../core/outcome.js';
import { DailyApiError, errorMessage } from '../../core/errors.js';
import type { Call } from '../../call/call.js';
import type { WorkerResult } from './handle.js';

/** What the parent needs from Daily to forward a held call itself. */
export interface ForwardFn {
  (
    p: { callId: string; callDomain: string; sipUri: string },
    signal: AbortSignal,
    o?: { onAttempt?: (attempt: number) => void; onRetry?: (err: unknown, attempt: number, delayMs: number) => void },
  ): Promise<unknown>;
}

/** Failures a fresh worker may not repeat. */
const RETRYABLE: readonly Outcome[] = ['worker_crashed', 'worker_memory', 'join_failed', 'dialin_timeout', 'forward_failed'];
/** Failures the caller must still be told about (the bot itself cannot serve the call). */
const UNSERVED: readonly Outcome[] = [...RETRYABLE, 'bot_load_failed', 'bot_error', 'max_duration'];

export const MAX_ATTEMPTS = 3;
/** An attempt is only started with this much of the hold budget left (join + dialin-ready + update). */
export const ATTEMPT_MIN_MS = 4_000;
/** Kept for the fallback: an attempt not forwarded by `budget − reserve` is ended. */
export const FALLBACK_RESERVE_MS = 3_000;

export type Decision = 'claim' | 'retry' | 'fallback';

/**
 * Aborts when `parent` does, after `timeoutMs`, or on `also` (if given); `dispose()` removes the
 * listener from the long-lived `parent` (AbortSignal.any keeps one per call until GC on Node 20).
 */
export function scoped(parent: AbortSignal, timeoutMs?: number, also?: AbortSignal): { signal: AbortSignal; dispose: () => void } {
  const ctl = new AbortController();
  const abort = () => ctl.abort(parent.reason);
  const timer = timeoutMs === undefined ? undefined : setTimeout(() => ctl.abort(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
  timer?.unref();
  const dispose = () => {
    clearTimeout(timer);
    parent.removeEventListener('abort', abort);
    also?.removeEventListener('abort', abort);
  };
  if (parent.aborted || also?.aborted) ctl.abort();
  else {
    parent.addEventListener('abort', abort, { once: true });
    also?.addEventListener('abort', abort, { once: true });
  }
  ctl.signal.addEventListener('abort', dispose, { once: true });
  return { signal: ctl.signal, dispose };
}

/** The hold budget left for this call. */
export function budgetLeftMs(call: Call, config: Config, now = Date.now()): number {
  return (call.record.timeline.received ?? now) + config.resilience.holdBudgetMs - now;
}

export function decide(call: Call, r: WorkerResult, attempt: number, config: Config, stopped: boolean): Decision {
  const t = call.record.timeline;
  // Forwarded (or connected): the caller has left the hold; Daily's side owns them now.
  if (stopped || call.endRequested || t.forwarded !== undefined || t.connected !== undefined || t.caller_left !== undefined) return 'claim';
  // A worker that died after sending the update may have forwarded the caller (its `forwarded` or
  // `connected` stage lost with it): never a second update. An update answered with a failure is retried.
  if (t.forward_sent !== undefined && r.outcome !== 'forward_failed') return 'claim';
  if (!UNSERVED.includes(r.outcome)) return 'claim';
  if (RETRYABLE.includes(r.outcome) && attempt < MAX_ATTEMPTS && budgetLeftMs(call, config) >= ATTEMPT_MIN_MS + FALLBACK_RESERVE_MS)
    return 'retry';
  return 'fallback';
}

/**
 * A 404 from pinlessCallUpdate that says the *call* is gone (unknown or ended `callId`), as opposed to
 * one about the SIP URI (no room has that endpoint: FALLBACK_SIP_URI names a room that does not
 * exist). Daily's `info` tells them apart (the emulator: "call … not found or no longer active" vs.
 * "no room has the SIP endpoint …"); anything not clearly about the call is not taken as the caller
 * gone, so the caller is still told (the apology's own pinlessCallUpdate answers 404 if they left).
 */
export function callerGone(err: unknown): boolean {
  if (!(err instanceof DailyApiError) || err.status !== 404) return false;
  const info = err.info ?? '';
  return /\bcall\b/i.test(info) && !/sip|endpoint|room/i.test(info);
}

/** Forwards the held caller to FALLBACK_SIP_URI. `callerGone`: Daily said the call no longer exists. */
export async function forwardToFallback(
  call: Call,
  sipUri: string,
  forward: ForwardFn,
  signal: AbortSignal,
): Promise<{ ok: boolean; callerGone: boolean; detail: string }> {
  const { callId, callDomain } = call.record;
  try {
    await forward({ callId, callDomain, sipUri }, signal);
    return { ok: true, callerGone: false, detail: `caller forwarded to FALLBACK_SIP_URI ${sipUri}` };
  } catch (err) {
    if (callerGone(err)) return { ok: false, callerGone: true, detail: `fallback: the caller was already gone (${errorMessage(err)})` };
    return { ok: false, callerGone: false, detail: `fallback forward to ${sipUri} failed: ${errorMessage(err)}` };
  }
}

/**
 * A call that waited past QUEUE_TIMEOUT_MS is still on hold: with FALLBACK_SIP_URI, the parent
 * forwards it there (no bot slot needed). Returns the detail to add, or undefined without one.
 */
export async function queueFallback(
  call: Call,
  config: Config,
  forward: ForwardFn | undefined,
  stop: AbortSignal,
): Promise<string | undefined> {
  const sipUri = config.resilience.fallbackSipUri;
  if (!sipUri || !forward || stop.aborted) return undefined;
  const scope = scoped(stop, 5_000);
  const r = await forwardToFallback(call, sipUri, forward, scope.signal).finally(scope.dispose);
  call.noteRecovery({ kind: 'fallback_sip', after: 'queue_timeout', detail: r.detail, atMs: Date.now() });
  return r.detail;
}
