import type { Logger } from 'pino';

/**
 * Slow or down (issue 21): a Redis whose answers take longer than an operation's budget is slow,
 * not down. One late answer fails that operation only (the caller falls back for that call); the
 * replica degrades when the connection is down, or when a connected Redis has answered nothing for
 * `degradeAfterMs`; it re-forms after `STEADY_ANSWERS` answers in a row.
 */

/**
 * Operations that may wait `admitTimeoutMs`: the steps of a webhook's answer, the queue's steps
 * (a caller on hold waits on them), the heartbeat and re-forming. The rest (status, domain-event
 * routing, rate limits) keep `opTimeoutMs` and fall back at once.
 */
export const SLOW_OK: ReadonlySet<string> = new Set([
  'fleetClaim',
  'fleetReserve',
  'fleetRunHere',
  'fleetEnqueue',
  'fleetSetAnswer',
  'fleetRelease',
  'fleetAccept',
  'fleetUnread',
  'fleetGiveBack',
  'fleetCancel',
  'fleetFinish',
  'fleetPublishCalls',
  'fleetRestoreClaims',
  'fleetHeartbeat',
  'ack',
  'pending',
  'group',
  'reform',
]);

const STEADY_ANSWERS = 2;

export class RedisHealth {
  private failingSinceMs: number | undefined;
  private streak = 0;

  constructor(private readonly degradeAfterMs: number) {}

  /** Redis answered (a reply, even an error reply). */
  answered(): void {
    this.failingSinceMs = undefined;
    this.streak++;
  }

  /** An operation got no answer in time. Returns why the replica should degrade now, or undefined (slow, not down). */
  unanswered(connected: boolean, why: string): string | undefined {
    this.streak = 0;
    if (!connected) return why;
    const now = Date.now();
    this.failingSinceMs ??= now;
    const silentMs = now - this.failingSinceMs;
    return silentMs >= this.degradeAfterMs ? `Redis answered nothing for ${silentMs} ms (${why})` : undefined;
  }

  /** Enough answers in a row to re-form after degrading. */
  get steady(): boolean {
    return this.streak >= STEADY_ANSWERS;
  }
}

/** Logs loudly when Redis's maxmemory-policy (new, or changed) may evict fleet keys; returns it. */
export function warnIfEvicting(policy: string | undefined, previous: string | undefined, log: Logger | undefined): string | undefined {
  if (policy !== undefined && policy !== 'noeviction' && policy !== previous)
    log?.error(
      { policy },
      `!!! REDIS maxmemory-policy is ${policy}: Redis may evict fleet keys (claims, queue, registry) under memory pressure, and then admit duplicates or forget callers on hold. Set maxmemory-policy noeviction for the fleet's Redis. !!!`,
    );
  return policy;
}

export function logStateLost(log: Logger | undefined, counts: Record<string, number>): void {
  log?.error(
    counts,
    '!!! FLEET STATE LOST: Redis no longer holds this fleet’s keys (FLUSHALL, eviction, or a fail-over to an empty primary). Publishing again this replica’s live calls, claims and queued calls. !!!',
  );
}

/** `p`, or a rejection after `ms` (the command may still be carried out: its effect is unknown). */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`fleet: ${what} got no answer from Redis in ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
