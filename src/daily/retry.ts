/** Retry with exponential backoff and full jitter, bounded by a deadline; honours Retry-After. */
import { PatchbayError, TimeoutError } from '../errors.js';
import { setTimeout as sleep } from 'node:timers/promises';

export interface RetryOptions {
  /** Give up when the next attempt could not start before this many ms from the first. */
  deadlineMs: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  signal?: AbortSignal;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

function retryAfterOf(err: unknown): number | undefined {
  const v = (err as { retryAfterMs?: unknown }).retryAfterMs;
  return typeof v === 'number' && v >= 0 ? v : undefined;
}

export async function withRetry<T>(fn: (attempt: number, remainingMs: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const start = Date.now();
  const base = opts.baseDelayMs ?? 100;
  const max = opts.maxDelayMs ?? 2_000;
  for (let attempt = 1; ; attempt++) {
    opts.signal?.throwIfAborted();
    const remaining = opts.deadlineMs - (Date.now() - start);
    if (remaining <= 0) throw new TimeoutError('retries', opts.deadlineMs, false);
    try {
      return await fn(attempt, remaining);
    } catch (err) {
      const retryable = err instanceof PatchbayError ? err.retryable : false;
      if (!retryable || opts.signal?.aborted) throw err;
      const backoff = Math.random() * Math.min(max, base * 2 ** (attempt - 1));
      const delay = Math.max(retryAfterOf(err) ?? 0, backoff);
      const left = opts.deadlineMs - (Date.now() - start);
      if (delay >= left) throw err;
      opts.onRetry?.(err, attempt, delay);
      await sleep(delay, undefined, opts.signal ? { signal: opts.signal } : undefined);
    }
  }
}
