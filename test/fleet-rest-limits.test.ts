/**
 * Daily's rate limits shared by the fleet, on the REST client's send path (src/daily/rest.ts
 * `rateLimit`): two "replicas" (two REST clients, each with its own Fleet and RedisRateLimiter on
 * one real redis-server) deleting rooms in a burst against an emulator that refuses like Daily
 * (its DELETE window, domain-wide) — no 429 reaches them; without the limiter the same burst gets 429s.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DailyRestClient, priorityOf } from '../src/daily/rest.js';
import { createEmulator } from '../src/emulator/server.js';
import type { Emulator } from '../src/emulator/types.js';
import { DailyApiError } from '../src/errors.js';
import { parseRateLimits, rateClassOf, RedisRateLimiter, type Fleet } from '../src/fleet/index.js';
import { namespace, startFleet } from './helpers/fleet.js';
import { startRedis, type RedisServer } from './helpers/redis.js';

const DELETES_PER_WINDOW = 4;
const WINDOW_MS = 1_000;

let redis: RedisServer;
let emulator: Emulator;
const apiKey = `k_${randomBytes(6).toString('hex')}`;
const fleets: Fleet[] = [];

beforeAll(async () => {
  redis = await startRedis();
  emulator = await createEmulator({
    apiKey,
    rateLimits: { classes: { 'room-delete': [{ requests: DELETES_PER_WINDOW, windowMs: WINDOW_MS }] } },
  });
});

afterAll(async () => {
  for (const f of fleets) await f.close();
  await emulator?.close();
  await redis?.stop();
});

const once = {
  name: 'cleanup' as const,
  retryOn: [],
  baseDelayMs: 1,
  maxDelayMs: 1,
  attemptTimeoutMs: 5_000,
  deadlineMs: 30_000,
  maxAttempts: 1,
};

async function makeRooms(rest: DailyRestClient, n: number): Promise<string[]> {
  const names = Array.from({ length: n }, (_, i) => `rl-${randomBytes(3).toString('hex')}-${i}`);
  for (const name of names) await rest.createDialinRoom({ name, displayName: 'x', expSec: Math.floor(Date.now() / 1000) + 600 });
  return names;
}

/** Deletes every room at once over the clients (round robin); the outcome of each delete. */
async function burst(clients: DailyRestClient[], names: string[]): Promise<Array<number | 'ok'>> {
  return Promise.all(
    names.map((name, i) =>
      clients[i % clients.length]!.deleteRoom(name, { policy: once }).then(
        () => 'ok' as const,
        (err: unknown) => (err instanceof DailyApiError ? (err.status ?? -1) : -2),
      ),
    ),
  );
}

describe('Daily REST through the shared rate limiter', () => {
  test('priorities: the call path vs background work', () => {
    expect(priorityOf('POST', '/rooms')).toBe('call');
    expect(priorityOf('POST', '/meeting-tokens')).toBe('call');
    expect(priorityOf('POST', '/dialin/pinlessCallUpdate')).toBe('call');
    expect(priorityOf('GET', '/rooms/pb-1')).toBe('call');
    expect(priorityOf('DELETE', '/rooms/pb-1')).toBe('background');
    expect(priorityOf('GET', '/rooms?limit=100')).toBe('background');
    expect(rateClassOf('DELETE', '/rooms/pb-1')).toBe('delete');
  });

  test('without the limiter, a burst of deletions draws 429s from the emulator (as from Daily)', async () => {
    const plain = new DailyRestClient({ apiUrl: emulator.apiUrl, apiKey, timeoutMs: 5_000 });
    const names = await makeRooms(plain, 3 * DELETES_PER_WINDOW);
    const results = await burst([plain], names);
    expect(results.filter((r) => r === 429).length).toBeGreaterThan(0);
    // Leave nothing behind for the next test (patiently).
    await new Promise((r) => setTimeout(r, WINDOW_MS));
  });

  test('two replicas sharing the Redis limiter: the same burst, no 429, paced by the window', async () => {
    const ns = namespace();
    const limits = parseRateLimits(`delete=${DELETES_PER_WINDOW}/${WINDOW_MS}`);
    const clients: DailyRestClient[] = [];
    for (let i = 0; i < 2; i++) {
      const fleet = await startFleet(redis.url, ns);
      fleets.push(fleet);
      const limiter = new RedisRateLimiter(fleet, limits);
      clients.push(
        new DailyRestClient({
          apiUrl: emulator.apiUrl,
          apiKey,
          timeoutMs: 5_000,
          rateLimit: (method, path, priority, signal) => limiter.acquire(rateClassOf(method, path), priority, signal),
        }),
      );
    }
    const names = await makeRooms(clients[0]!, 3 * DELETES_PER_WINDOW);
    const t0 = Date.now();
    const results = await burst(clients, names);
    const elapsed = Date.now() - t0;
    expect(results).toEqual(names.map(() => 'ok'));
    // 12 deletions at 4 per second, shared by both: at least two full windows of waiting.
    expect(elapsed).toBeGreaterThanOrEqual(2 * WINDOW_MS - 100);
  });
});
