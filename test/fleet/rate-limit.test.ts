/**
 * Daily's per-class limits shared by the fleet: several replicas' limiters together never grant
 * more than `limit` in any window; background work stops at the reserve and waits instead of
 * failing; the call path may use the whole window.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DAILY_RATE_LIMITS,
  LocalRateLimiter,
  RedisRateLimiter,
  parseRateLimits,
  rateClassOf,
  type Fleet,
  type RateLimits,
} from '../../src/fleet/index.js';
import { namespace, startFleet } from '../helpers/fleet.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

const SMALL: RateLimits = {
  default: { limit: 10, windowMs: 1_000, reserve: 4 },
  delete: { limit: 3, windowMs: 1_000, reserve: 0 },
  start: { limit: 1, windowMs: 1_000, reserve: 0 },
};

/** Most grants seen in any `windowMs` span (`slackMs` narrower, for timer jitter between processes' clocks). */
function maxInWindow(times: number[], windowMs: number, slackMs = 30): number {
  const t = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; i < t.length; i++) {
    while (t[i]! - t[j]! >= windowMs - slackMs) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

describe('rate limits', () => {
  it('classes and configuration', () => {
    expect(rateClassOf('POST', '/rooms')).toBe('default');
    expect(rateClassOf('POST', '/meeting-tokens')).toBe('default');
    expect(rateClassOf('POST', '/dialin/pinlessCallUpdate')).toBe('default');
    expect(rateClassOf('DELETE', '/rooms/pb-1')).toBe('delete');
    expect(rateClassOf('GET', '/rooms')).toBe('delete');
    expect(rateClassOf('GET', '/rooms/pb-1')).toBe('default');
    expect(rateClassOf('POST', '/rooms/pb-1/dialOut/start')).toBe('start');
    expect(parseRateLimits('delete=40/30000')).toEqual({ ...DAILY_RATE_LIMITS, delete: { limit: 40, windowMs: 30_000, reserve: 0 } });
    expect(parseRateLimits('default=50/5000/10,start=2/5000').default).toEqual({ limit: 50, windowMs: 5_000, reserve: 10 });
    expect(() => parseRateLimits('rooms=1/1')).toThrow(/DAILY_RATE_LIMITS/);
    expect(() => parseRateLimits('default=5/1000/5')).toThrow(/reserve < limit/);
  });

  it('local: the call path gets the whole window, background only above the reserve, and waits', async () => {
    const l = new LocalRateLimiter(SMALL);
    const t0 = 1_000_000;
    for (let i = 0; i < 6; i++) expect(l.tryTake('default', 'background', t0)).toBe(0);
    expect(l.tryTake('default', 'background', t0)).toBeGreaterThan(0);
    for (let i = 0; i < 4; i++) expect(l.tryTake('default', 'call', t0)).toBe(0);
    const wait = l.tryTake('default', 'call', t0 + 10);
    expect(wait).toBe(990);
    expect(l.tryTake('default', 'call', t0 + 1_000)).toBe(0);
    const ac = new AbortController();
    const p = l.acquire('start', 'call', ac.signal).then(() => l.acquire('start', 'call', ac.signal));
    setTimeout(() => ac.abort(new Error('caller gone')), 50);
    await expect(p).rejects.toThrow('caller gone');
  });

  it('three replicas share one window in Redis: never more than the limit in any window', async () => {
    const ns = namespace();
    const fleets: Fleet[] = await Promise.all([0, 1, 2].map(() => startFleet(redis.url, ns)));
    try {
      const limiters = fleets.map((f) => new RedisRateLimiter(f, SMALL, () => 3));
      const grants: number[] = [];
      const t0 = Date.now();
      // 3 × 8 call-path requests at once: 10 per second fleet-wide → the last granted after ~2 s.
      await Promise.all(
        limiters.flatMap((l) => Array.from({ length: 8 }, () => l.acquire('default', 'call').then(() => grants.push(Date.now())))),
      );
      expect(grants).toHaveLength(24);
      expect(maxInWindow(grants, 1_000)).toBeLessThanOrEqual(10);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1_900);
      expect(Date.now() - t0).toBeLessThan(6_000);
    } finally {
      await Promise.all(fleets.map((f) => f.close()));
    }
  }, 30_000);

  it('background work defers to the reserve fleet-wide; the call path is served at once', async () => {
    const ns = namespace();
    const [a, b] = await Promise.all([startFleet(redis.url, ns), startFleet(redis.url, ns)]);
    try {
      const la = new RedisRateLimiter(a, SMALL);
      const lb = new RedisRateLimiter(b, SMALL);
      // Background floods from a: 6 (limit 10 − reserve 4) granted now, the rest deferred.
      const bg: number[] = [];
      const t0 = Date.now();
      const flood = Promise.all(Array.from({ length: 9 }, () => la.acquire('default', 'background').then(() => bg.push(Date.now() - t0))));
      await new Promise((r) => setTimeout(r, 200));
      expect(bg).toHaveLength(6);
      // A call at b is not stuck behind them: the reserve is its.
      const c0 = Date.now();
      await Promise.all(Array.from({ length: 4 }, () => lb.acquire('default', 'call')));
      expect(Date.now() - c0).toBeLessThan(500);
      await flood;
      expect(bg.slice(6).every((ms) => ms >= 900)).toBe(true);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  }, 30_000);
});
