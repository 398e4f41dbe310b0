/** Daily's rate limits shared by the fleet: the windows of rate-limit.ts, held in Redis. */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { scriptCaller, type ScriptCaller } from './connection.js';
import {
  abortable,
  acquireOptions,
  DAILY_RATE_LIMITS,
  IN_FLIGHT_POLL_MS,
  LocalRateLimiter,
  type AcquireOptions,
  type RateClass,
  type RateLimiter,
  type RateLimits,
  type RatePriority,
  type RateRelease,
} from '../daily/rate-limit.js';
import { FleetUnavailableError } from './types.js';

/**
 * Fleet mode: one window per class in Redis (`pb:{ns}:rl:<class>`), shared by every replica.
 * While Redis is unreachable, falls back to a local limiter holding this replica's share
 * (1 / live replicas last seen) of each limit.
 */
export class RedisRateLimiter implements RateLimiter {
  private readonly script: ScriptCaller;
  private readonly fallback: LocalRateLimiter;
  private seq = 0;
  private readonly tag = randomBytes(4).toString('hex');

  constructor(
    private readonly fleet: { redis: Redis; prefix: string; op<T>(what: string, f: () => Promise<T>): Promise<T> },
    readonly limits: RateLimits = DAILY_RATE_LIMITS,
    /** Live replicas last seen (for the degraded share). */
    replicas: () => number = () => 1,
  ) {
    this.script = scriptCaller(fleet.redis);
    this.fallback = new LocalRateLimiter(limits, () => 1 / Math.max(1, replicas()));
  }

  /** 0 = granted (as `member`), else ms to wait. Throws FleetUnavailableError when Redis does not answer. */
  async tryTake(cls: RateClass, priority: RatePriority, leaseMs = 0, member = this.member()): Promise<number> {
    const l = this.limits[cls];
    const reserve = priority === 'call' ? 0 : l.reserve;
    return Number(
      await this.fleet.op('rate', () =>
        this.script('fleetTake', this.key(cls), l.limit, l.windowMs, reserve, member, Math.max(0, Math.ceil(leaseMs)), IN_FLIGHT_POLL_MS),
      ),
    );
  }

  async acquire(cls: RateClass, priority: RatePriority, o?: AcquireOptions | AbortSignal): Promise<RateRelease> {
    const { signal, leaseMs = 0 } = acquireOptions(o);
    for (;;) {
      if (signal?.aborted) throw signal.reason ?? new Error('aborted');
      const member = this.member();
      let wait: number;
      try {
        wait = await this.tryTake(cls, priority, leaseMs, member);
        if (wait === 0) return this.releaser(cls, member);
      } catch (err) {
        if (!(err instanceof FleetUnavailableError)) throw err;
        const r = this.fallback.grant(cls, priority, leaseMs);
        if (typeof r === 'function') return r;
        wait = r;
      }
      await abortable(wait, signal);
    }
  }

  private member(): string {
    return `${this.tag}:${++this.seq}`;
  }

  private key(cls: RateClass): string {
    return `${this.fleet.prefix}rl:${cls}`;
  }

  /** Re-stamps the grant at the answer (Redis time); a lost Redis leaves it counting until its lease ends. */
  private releaser(cls: RateClass, member: string): RateRelease {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const l = this.limits[cls];
      this.fleet.op('rate', () => this.script('fleetRateRelease', this.key(cls), member, l.windowMs)).catch(() => undefined);
    };
  }
}
