/**
 * Retry policies for Daily REST calls, defined once. Every method of `DailyRestClient` names the
 * policy it runs under; changing how patchbay retries a class of request is one edit here.
 *
 * Backoff is "full jitter" (a random delay in [0, min(maxDelayMs, baseDelayMs · 2^(n-1))]), never
 * shorter than a `Retry-After` the server sent; an attempt that could not start before the overall
 * deadline is not made (the last error is thrown instead).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { PatchbayError, TimeoutError } from '../core/errors.js';

export type PolicyName = 'create' | 'forward' | 'query' | 'cleanup' | 'admin';

export interface RetryPolicy {
  readonly name: PolicyName;
  /** HTTP statuses worth another attempt. Network errors and per-attempt timeouts always are. */
  readonly retryOn: readonly number[];
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** Each attempt's own timeout (capped by what is left of the deadline). */
  readonly attemptTimeoutMs: number;
  /** No attempt starts later than this after the first. */
  readonly deadlineMs: number;
  readonly maxAttempts: number;
}

/** What the policies take from configuration (`DAILY_API_TIMEOUT_MS`, `PINLESS_UPDATE_*`). */
export interface PolicyKnobs {
  apiTimeoutMs: number;
  pinlessUpdateTimeoutMs?: number;
  pinlessUpdateDeadlineMs?: number;
}

const TRANSIENT = [408, 425, 429, 500, 502, 503, 504] as const;

export type Policies = Readonly<Record<PolicyName, RetryPolicy>>;

/** The table. */
export function retryPolicies(k: PolicyKnobs): Policies {
  return {
    /** Call path, before the webhook is answered: room + token. Short: the caller is on hold. */
    create: {
      name: 'create',
      retryOn: TRANSIENT,
      baseDelayMs: 100,
      maxDelayMs: 1_000,
      attemptTimeoutMs: k.apiTimeoutMs,
      deadlineMs: 4_000,
      maxAttempts: 8,
    },
    /** pinlessCallUpdate (worker): the held caller waits for this one. 404 = the caller is gone. */
    forward: {
      name: 'forward',
      retryOn: TRANSIENT,
      baseDelayMs: 100,
      maxDelayMs: 2_000,
      attemptTimeoutMs: k.pinlessUpdateTimeoutMs ?? k.apiTimeoutMs,
      deadlineMs: k.pinlessUpdateDeadlineMs ?? 8_000,
      maxAttempts: 10,
    },
    /** Reads (room info, token validation, domain config, room lists). */
    query: {
      name: 'query',
      retryOn: TRANSIENT,
      baseDelayMs: 200,
      maxDelayMs: 2_000,
      attemptTimeoutMs: k.apiTimeoutMs,
      deadlineMs: 5_000,
      maxAttempts: 4,
    },
    /**
     * Room deletion, off the call path (the room-service queue paces it): patient, because a room
     * that is not deleted only costs until its `exp`.
     */
    cleanup: {
      name: 'cleanup',
      retryOn: TRANSIENT,
      baseDelayMs: 500,
      maxDelayMs: 5_000,
      attemptTimeoutMs: k.apiTimeoutMs,
      deadlineMs: 20_000,
      maxAttempts: 8,
    },
    /** Operator commands (CLI, start-up webhook registration): a few quick tries, then tell the human. */
    admin: {
      name: 'admin',
      retryOn: TRANSIENT,
      baseDelayMs: 250,
      maxDelayMs: 2_000,
      attemptTimeoutMs: k.apiTimeoutMs,
      deadlineMs: 10_000,
      maxAttempts: 3,
    },
  };
}

function statusOf(err: unknown): number | undefined {
  const s = (err as { status?: unknown }).status;
  return typeof s === 'number' ? s : undefined;
}

function retryAfterOf(err: unknown): number | undefined {
  const v = (err as { retryAfterMs?: unknown }).retryAfterMs;
  return typeof v === 'number' && v >= 0 ? v : undefined;
}

/** Whether `policy` retries `err`: transient statuses of its list, network errors and timeouts (not aborts). */
export function isRetryableUnder(policy: RetryPolicy, err: unknown): boolean {
  if (!(err instanceof PatchbayError) || !err.retryable) return false;
  const status = statusOf(err);
  return status === undefined || policy.retryOn.includes(status);
}

/** Full-jitter backoff before attempt `attempt + 1`, at least the server's Retry-After. */
export function backoffMs(policy: RetryPolicy, attempt: number, err?: unknown, random = Math.random): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.max(retryAfterOf(err) ?? 0, random() * cap);
}

export interface RunOptions {
  signal?: AbortSignal;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

/** Runs `attempt(n, timeoutMs)` under `policy`. */
export async function runWithPolicy<T>(
  policy: RetryPolicy,
  attempt: (n: number, timeoutMs: number) => Promise<T>,
  o: RunOptions = {},
): Promise<T> {
  const start = Date.now();
  for (let n = 1; ; n++) {
    o.signal?.throwIfAborted();
    const remaining = policy.deadlineMs - (Date.now() - start);
    if (remaining <= 0) throw new TimeoutError(`${policy.name} retries`, policy.deadlineMs, false);
    try {
      return await attempt(n, Math.max(1, Math.min(policy.attemptTimeoutMs, remaining)));
    } catch (err) {
      if (o.signal?.aborted || n >= policy.maxAttempts || !isRetryableUnder(policy, err)) throw err;
      const delay = backoffMs(policy, n, err);
      if (delay >= policy.deadlineMs - (Date.now() - start)) throw err;
      o.onRetry?.(err, n, delay);
      await sleep(delay, undefined, o.signal ? { signal: o.signal } : undefined);
    }
  }
}
