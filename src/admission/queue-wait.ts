/**
 * A task on the replica's p-queue whose *wait* for a slot is bounded (and cut short when the
 * service stops or the call ends), while the task itself, once started, runs to its end.
 *
 * p-queue also races a running task against the signal given to `add` (and frees the slot), so that
 * signal must never fire once the task has started: a call lasting longer than QUEUE_TIMEOUT_MS would
 * otherwise end as `queue_timeout`, lose its room, and exceed the cap. Hence a signal of our own,
 * disarmed at start.
 */
import type PQueue from 'p-queue';

export interface BoundedWait {
  /** Give up waiting after this long. */
  waitMs: number;
  /** The service is stopping: stop waiting. */
  stop: AbortSignal;
  /** Called once with a function that stops the wait (e.g. when the caller is gone). */
  cancelWith?: (cancel: () => void) => void;
}

/** Resolves when `task` has run; rejects when it never started (the wait ended first). */
export function addWithBoundedWait(queue: PQueue, task: () => Promise<void>, o: BoundedWait): Promise<void> {
  const wait = new AbortController();
  const waitTimer = setTimeout(() => wait.abort(), o.waitMs);
  waitTimer.unref();
  const onStop = () => wait.abort(o.stop.reason);
  if (o.stop.aborted) onStop();
  else o.stop.addEventListener('abort', onStop, { once: true });
  const started = () => {
    clearTimeout(waitTimer);
    o.stop.removeEventListener('abort', onStop);
  };
  o.cancelWith?.(() => wait.abort());
  return queue
    .add(
      () => {
        started();
        return task();
      },
      { signal: wait.signal },
    )
    .finally(started);
}

/** Waiters for "nothing in flight" (`isIdle`), released by `check()` when it becomes true. */
export class IdleWaiters {
  private readonly waiters = new Set<() => void>();
  constructor(private readonly isIdle: () => boolean) {}

  check(): void {
    if (this.isIdle()) for (const f of [...this.waiters]) f();
  }

  /** Resolves when idle (or immediately). */
  wait(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => {
      const f = () => {
        this.waiters.delete(f);
        resolve();
      };
      this.waiters.add(f);
    });
  }
}
