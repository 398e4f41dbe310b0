/**
 * The worker's Daily requests wait for the parent's rate limiter (src/daily/rate-limit.ts: Daily's
 * per-domain windows, shared by the fleet through Redis): `rate` → the parent's `rate-grant` →
 * send → `rate-release` once the answer is in. Without a parent (a test harness) or when the
 * channel is gone, the request is sent at once: a held caller is never kept waiting on IPC.
 */
import type { ChildMessage, ParentMessage } from '../protocol.js';

/** A grant that does not come within this is not waited for (the parent is stuck or gone). */
const GRANT_WAIT_MAX_MS = 10_000;

const waiting = new Map<number, () => void>();
let seq = 0;

function post(m: ChildMessage): boolean {
  if (!process.send || !process.connected) return false;
  try {
    process.send(m);
    return true;
  } catch {
    return false;
  }
}

/** Routes the parent's `rate-grant` (call from the worker's message handler). */
export function onRateGrant(m: Extract<ParentMessage, { type: 'rate-grant' }>): void {
  const go = waiting.get(m.seq);
  waiting.delete(m.seq);
  go?.();
}

/** The REST client's `rateLimit` hook (DailyRestOptions.rateLimit) for the worker process. */
export function parentRateLimit(method: string, path: string, _priority: unknown, signal: AbortSignal | undefined, leaseMs: number) {
  const id = ++seq;
  const release = () => void post({ type: 'rate-release', seq: id });
  return new Promise<() => void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    const done = (f: () => void) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      waiting.delete(id);
      f();
    };
    const onAbort = () => done(() => reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted')));
    const timer = setTimeout(() => done(() => resolve(release)), GRANT_WAIT_MAX_MS);
    timer.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
    waiting.set(id, () => done(() => resolve(release)));
    if (!post({ type: 'rate', seq: id, method, path, leaseMs })) done(() => resolve(() => undefined));
  });
}

/** The parent is gone: every request waiting for a grant goes now (nobody will answer). */
export function releaseGrants(): void {
  for (const [id, go] of [...waiting]) {
    waiting.delete(id);
    go();
  }
}
