/** Fleet mode's environment: off without REDIS_URL, validated with messages naming the variable. */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config.js';
import { parseRateLimits } from '../../src/daily/rate-limit.js';

describe('fleet configuration', () => {
  it('REDIS_URL unset: no fleet', () => {
    expect(loadConfig({}).fleet).toBeUndefined();
  });

  it('REDIS_URL set: defaults detect a lost replica within 15 s', () => {
    const f = loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379/0' }).fleet!;
    expect(f).toEqual({
      redisUrl: 'redis://127.0.0.1:6379/0',
      namespace: 'default',
      heartbeatMs: 2_000,
      replicaLostMs: 10_000,
      opTimeoutMs: 500,
      admitTimeoutMs: 2_000,
      degradeAfterMs: 3_000,
      readyWaitMs: 10_000,
      presenceLagMs: 15_000,
      presenceRecheckMs: 15_000,
      rateLimits: undefined,
    });
    expect(f.replicaLostMs + f.heartbeatMs).toBeLessThanOrEqual(15_000);
  });

  it('bad values stop start-up naming the variable', () => {
    expect(() => loadConfig({ REDIS_URL: 'http://x' })).toThrow(/REDIS_URL/);
    expect(() => loadConfig({ REDIS_URL: 'redis://x', FLEET_HEARTBEAT_MS: '5000', FLEET_REPLICA_LOST_MS: '4000' })).toThrow(
      /FLEET_REPLICA_LOST_MS/,
    );
    expect(() => loadConfig({ FLEET_NAMESPACE: 'a b' })).toThrow(/FLEET_NAMESPACE/);
    expect(() => loadConfig({ DAILY_RATE_LIMITS: 'rooms=1' })).toThrow(/DAILY_RATE_LIMITS/);
    const ok = loadConfig({ REDIS_URL: 'redis://x', DAILY_RATE_LIMITS: 'delete=40/30000, start=4/5000' }).daily;
    expect(parseRateLimits(ok.rateLimits).delete.limit).toBe(40);
    // Also for a replica alone (its in-process limiter).
    // A limit without its reserve keeps Daily's share (30 of 100) for the call path.
    expect(parseRateLimits(loadConfig({ DAILY_RATE_LIMITS: 'default=7/1000' }).daily.rateLimits).default).toEqual({
      limit: 7,
      windowMs: 1000,
      reserve: 2,
    });
  });
});
