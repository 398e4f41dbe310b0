/**
 * The cold path's pinlessCallUpdate without an IPC round trip after `dialin-ready` (issue 27
 * item 2). The worker's Daily requests wait for the parent's rate grant (rate-grant.ts); for the
 * update that is a wake-up of the parent and another of the worker between Daily's `dialin-ready`
 * and the request leaving, which a burst of calls turns into tens to hundreds of milliseconds on
 * the caller's hold. The grant is therefore asked for as soon as the bot has joined, while Daily
 * readies the SIP endpoint (≈ 1.5 s), and used by the update's first attempt.
 *
 * Daily's windows are kept: the parent's limiter counts a grant from the moment it is given until
 * its release (the answer) and one window after, so a grant held early only counts longer, never
 * less. A call that ends before forwarding releases it unused.
 */
import type { RestRateLimit } from '../../daily/rest.js';
import type { CallRun } from './call-state.js';
import { parentRateLimit } from './rate-grant.js';

const UPDATE_PATH = '/dialin/pinlessCallUpdate';

/** Asks for the update's grant now (after join); released when the call ends if never used. */
export function preGrantForward(run: CallRun): void {
  const { init } = run.deps;
  const leaseMs = init.dialinReadyTimeoutMs + init.pinlessUpdateTimeoutMs;
  const grant = parentRateLimit('POST', UPDATE_PATH, 'call', run.ending.signal, leaseMs);
  const held = { grant, used: false };
  run.forwardGrant = held;
  void run.ending.done.then(async () => {
    if (held.used) return;
    held.used = true;
    const release = await grant.catch(() => undefined);
    release?.();
  });
}

/** The REST client's rate limit for the update: the held grant for its first attempt, the parent's after. */
export function forwardRateLimit(run: CallRun): RestRateLimit {
  return (method, path, priority, signal, leaseMs) => {
    const held = run.forwardGrant;
    if (held && !held.used && method === 'POST' && path === UPDATE_PATH) {
      held.used = true;
      return held.grant;
    }
    return parentRateLimit(method, path, priority, signal, leaseMs);
  };
}
