/**
 * Daily's per-domain REST rate limits, shared by the fleet.
 *
 * Daily counts requests per endpoint class in sliding windows (most endpoints ~100 per 5 s;
 * listings and DELETEs ~50 per 30 s; starting PSTN/SIP dial-out, recordings and live streams
 * ~5 per 5 s). A token bucket of "20/s, burst 100" would let 200 through in 5 s, so each class is
 * a sliding-window log instead: a request is granted only if fewer than `limit` were granted in
 * the last `windowMs` — exactly the documented shape, bursts included.
 *
 * A grant is a lease: it counts from the moment it is granted until `leaseMs` later or, once the
 * caller calls the returned `release()` (when Daily's answer is in), until `windowMs` after that.
 * Daily counts a request when it arrives, which is somewhere between our grant and the answer; a
 * window that starts at the grant alone lets a slow request and the next window's fast ones meet
 * in Daily's window (seen as a 429 under load). Counting from grant to answer + window covers
 * every arrival time, so no jitter in the network or the event loop can push a burst over.
 *
 * This module holds the windows and the in-process limiter; the fleet's, in Redis, is in
 * rate-limit-redis.ts (loaded only in fleet mode, with ioredis).
 *
 * Priorities: the call path ('call': room create, token, pinlessCallUpdate) may use the whole
 * window; 'background' work (room deletion, listings) only while `reserve` grants are left, and
 * it waits (is deferred) rather than being sent into a 429.
 */

export type RateClass = 'default' | 'delete' | 'start';
export type RatePriority = 'call' | 'background';

export interface RateLimit {
  /** Grants per window. */
  limit: number;
  windowMs: number;
  /** Grants background work must leave for the call path. */
  reserve: number;
}

export type RateLimits = Record<RateClass, RateLimit>;

/** From Daily's REST API docs (per domain); override with DAILY_RATE_LIMITS. */
export const DAILY_RATE_LIMITS: RateLimits = {
  default: { limit: 100, windowMs: 5_000, reserve: 30 },
  delete: { limit: 50, windowMs: 30_000, reserve: 0 },
  // Recording starts are background work (rate-limit.ts ENDPOINT_RULES): one start a window stays for dial-out.
  start: { limit: 5, windowMs: 5_000, reserve: 1 },
};

/**
 * `default=100/5000/30,delete=50/30000,start=5/5000` (limit/windowMs[/reserve]); classes left out
 * keep Daily's figures, a reserve left out keeps Daily's share of the limit. Throws with a message naming the variable.
 */
export function parseRateLimits(spec: string | undefined, base: RateLimits = DAILY_RATE_LIMITS): RateLimits {
  const out: RateLimits = { default: { ...base.default }, delete: { ...base.delete }, start: { ...base.start } };
  if (spec === undefined || spec.trim() === '') return out;
  for (const part of spec.split(',')) {
    const m = /^\s*(default|delete|start)\s*=\s*(\d+)\/(\d+)(?:\/(\d+))?\s*$/.exec(part);
    if (!m)
      throw new Error(
        `invalid configuration: DAILY_RATE_LIMITS: "${part.trim()}" is not class=limit/windowMs[/reserve] (classes: default, delete, start)`,
      );
    const limit = Number(m[2]);
    const windowMs = Number(m[3]);
    // A limit given without its reserve keeps the same share for the call path (Daily's 30 of 100).
    const was = out[m[1] as RateClass];
    const reserve = m[4] === undefined ? Math.floor((limit * was.reserve) / was.limit) : Number(m[4]);
    if (limit < 1 || windowMs < 1 || reserve >= limit)
      throw new Error(`invalid configuration: DAILY_RATE_LIMITS: ${m[1]} needs limit ≥ 1, windowMs ≥ 1 and reserve < limit`);
    out[m[1] as RateClass] = { limit, windowMs, reserve };
  }
  return out;
}

/** A Daily REST request's rate class, and whose it is: 'call' (a held caller waits for it: rooms, tokens, pinlessCallUpdate, dial-out) or 'background' (deletions, listings). */
export interface RequestRate {
  cls: RateClass;
  priority: RatePriority;
}

/**
 * The one classification of Daily's endpoints (Daily's REST docs, "Rate limits"): starts of
 * dial-out, recording, live streaming and transcription share the `start` class; deletions and the
 * big listings the `delete` class; the rest `default`. The first rule that matches wins.
 */
const ENDPOINT_RULES: ReadonlyArray<{ method?: string; path: RegExp } & RequestRate> = [
  // A recording (re)start waits behind the call path's starts (dial-out): nobody is held for it.
  { path: /\/recordings\/start$/i, cls: 'start', priority: 'background' },
  { path: /\/(dialOut|recordings|live-streaming|transcription)\/start$/i, cls: 'start', priority: 'call' },
  { method: 'DELETE', path: /^/, cls: 'delete', priority: 'background' },
  { method: 'GET', path: /^\/?(rooms|recordings|meetings|logs)\/?$/, cls: 'delete', priority: 'background' },
  { method: 'GET', path: /^\/?(webhooks|domain-dialin-config)\/?$/, cls: 'default', priority: 'background' },
];

export function classifyRequest(method: string, path: string): RequestRate {
  const m = method.toUpperCase();
  const p = (path.split('?')[0] ?? path).replace(/^\/v1(?=\/)/, '');
  const rule = ENDPOINT_RULES.find((r) => (r.method === undefined || r.method === m) && r.path.test(p));
  return rule ? { cls: rule.cls, priority: rule.priority } : { cls: 'default', priority: 'call' };
}

/** The rate class of a Daily REST request (classifyRequest). */
export function rateClassOf(method: string, path: string): RateClass {
  return classifyRequest(method, path).cls;
}

/** Whose a Daily REST request is (classifyRequest). */
export function priorityOf(method: string, path: string): RatePriority {
  return classifyRequest(method, path).priority;
}

/** How soon a request waiting on grants still in flight looks again. */
export const IN_FLIGHT_POLL_MS = 50;

/** Ends a grant's in-flight time: from now on it counts for one more window. Idempotent. */
export type RateRelease = () => void;

export interface AcquireOptions {
  signal?: AbortSignal;
  /**
   * How long the request may be in flight (its attempt timeout): the grant counts at least that
   * long unless released sooner. 0 (default): the grant counts for one window from the grant.
   */
  leaseMs?: number;
}

export interface RateLimiter {
  /**
   * Resolves once a request of class `cls` may be sent, with its `release()` (call it when the
   * answer is in); rejects if the signal aborts first.
   */
  acquire(cls: RateClass, priority: RatePriority, opts?: AcquireOptions | AbortSignal): Promise<RateRelease>;
}

export function acquireOptions(o: AcquireOptions | AbortSignal | undefined): AcquireOptions {
  if (o === undefined) return {};
  return o instanceof AbortSignal ? { signal: o } : o;
}

export function abortable(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const reason = (): Error => (signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
    if (signal?.aborted) return reject(reason());
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(reason());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Single-replica mode: the same windows, in this process. */
export class LocalRateLimiter implements RateLimiter {
  /** Per class, each grant's end of in-flight time (grant + lease, or its release). */
  private readonly log = new Map<RateClass, Array<{ t: number }>>();

  /** `share()`: the fraction of each limit this process may use (1 alone; 1/N as a degraded fleet member). */
  constructor(
    readonly limits: RateLimits = DAILY_RATE_LIMITS,
    private readonly share: () => number = () => 1,
  ) {}

  /** 0 = granted (and recorded; `entry` receives the grant), else ms to wait. */
  tryTake(cls: RateClass, priority: RatePriority, now = performance.now(), leaseMs = 0, entry?: (e: { t: number }) => void): number {
    const l = this.limits[cls];
    const s = Math.min(1, Math.max(0, this.share()));
    const limit = Math.max(1, Math.floor(l.limit * s));
    const reserve = priority === 'call' ? 0 : Math.min(limit - 1, Math.floor(l.reserve * s));
    const live = (this.log.get(cls) ?? []).filter((e) => e.t > now - l.windowMs);
    this.log.set(cls, live);
    const allowed = limit - reserve;
    if (live.length < allowed) {
      const e = { t: now + Math.max(0, leaseMs) };
      live.push(e);
      entry?.(e);
      return 0;
    }
    const ends = live.map((e) => e.t).sort((a, b) => a - b);
    const t = ends[live.length - allowed]!;
    // Still in flight: its answer (and release) may come any moment; look again soon.
    const wait = t > now ? Math.min(t + l.windowMs - now, IN_FLIGHT_POLL_MS) : t + l.windowMs - now;
    return Math.max(1, Math.ceil(wait));
  }

  /** A grant now (its release: the grant counts from then for one window), or the ms to wait. */
  grant(cls: RateClass, priority: RatePriority, leaseMs = 0): RateRelease | number {
    let granted: { t: number } | undefined;
    const wait = this.tryTake(cls, priority, performance.now(), leaseMs, (e) => (granted = e));
    const g = granted;
    if (wait > 0 || !g) return wait;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      g.t = performance.now();
    };
  }

  async acquire(cls: RateClass, priority: RatePriority, o?: AcquireOptions | AbortSignal): Promise<RateRelease> {
    const { signal, leaseMs = 0 } = acquireOptions(o);
    for (;;) {
      if (signal?.aborted) throw signal.reason ?? new Error('aborted');
      const r = this.grant(cls, priority, leaseMs);
      if (typeof r === 'function') return r;
      await abortable(r, signal);
    }
  }
}
