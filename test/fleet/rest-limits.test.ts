/**
 * Daily's rate limits shared by the fleet, on the REST client's send path (src/daily/rest.ts
 * `rateLimit`): two "replicas" (two REST clients, each with its own Fleet and RedisRateLimiter on
 * one real redis-server) deleting rooms in a burst against an emulator that refuses like Daily
 * (its DELETE window, domain-wide) — no 429 reaches them; without the limiter the same burst gets 429s.
 * A proxy in front of the emulator holds one request back, as a slow network or a busy event loop
 * does: Daily counts a request when it arrives, so a grant must count until its answer is in.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { priorityOf } from '../../src/daily/rate-limit.js';
import { DailyRestClient } from '../../src/daily/rest.js';
import { createEmulator } from '../../src/emulator/server.js';
import type { Emulator } from '../../src/emulator/types.js';
import { DailyApiError } from '../../src/core/errors.js';
import { LocalRateLimiter, parseRateLimits, rateClassOf, RedisRateLimiter, type Fleet, type RateLimiter } from '../../src/fleet/index.js';
import { namespace, startFleet } from '../helpers/fleet.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';

const DELETES_PER_WINDOW = 4;
const WINDOW_MS = 1_000;

let redis: RedisServer;
let emulator: Emulator;
let proxy: { url: string; holdNextDelete(ms: number): void; close(): Promise<void> };
const apiKey = `k_${randomBytes(6).toString('hex')}`;
const fleets: Fleet[] = [];

beforeAll(async () => {
  redis = await startRedis();
  emulator = await createEmulator({
    apiKey,
    rateLimits: { classes: { 'room-delete': [{ requests: DELETES_PER_WINDOW, windowMs: WINDOW_MS }] } },
  });
  proxy = await startDelayingProxy(emulator.apiUrl);
});

afterAll(async () => {
  await proxy?.close();
  for (const f of fleets) await f.close();
  await emulator?.close();
  await redis?.stop();
});

/** Forwards to `target`; `holdNextDelete(ms)` delays the next DELETE that much before it is sent on. */
async function startDelayingProxy(target: string): Promise<typeof proxy> {
  const base = new URL(target);
  let hold = 0;
  const server = http.createServer((req, res) => {
    const delay = req.method === 'DELETE' ? hold : 0;
    if (req.method === 'DELETE') hold = 0;
    setTimeout(() => {
      const up = http.request(
        {
          host: base.hostname,
          port: base.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
        },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on('error', () => res.destroy());
      req.pipe(up);
    }, delay);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${base.pathname}`,
    holdNextDelete: (ms) => (hold = ms),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

function limitedClient(apiUrl: string, limiter: RateLimiter): DailyRestClient {
  return new DailyRestClient({
    apiUrl,
    apiKey,
    timeoutMs: 5_000,
    rateLimit: (method, path, priority, signal, leaseMs) =>
      limiter.acquire(rateClassOf(method, path), priority, { ...(signal ? { signal } : {}), leaseMs }),
  });
}

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
      clients.push(limitedClient(emulator.apiUrl, new RedisRateLimiter(fleet, limits)));
    }
    const names = await makeRooms(clients[0]!, 3 * DELETES_PER_WINDOW);
    const t0 = Date.now();
    const results = await burst(clients, names);
    const elapsed = Date.now() - t0;
    expect(results).toEqual(names.map(() => 'ok'));
    // 12 deletions at 4 per second, shared by both: at least two full windows of waiting.
    expect(elapsed).toBeGreaterThanOrEqual(2 * WINDOW_MS - 100);
  });

  // The first deletion is held 700 ms on its way; the next window's grants come at ~1 s and arrive
  // at once. Counting a grant from the grant alone lets five meet in Daily's window → a 429.
  for (const mode of ['shared (Redis)', 'local'] as const) {
    test(`${mode} limiter: a request held on its way still counts in the window it arrives in — no 429`, async () => {
      await new Promise((r) => setTimeout(r, WINDOW_MS)); // a fresh window
      const limits = parseRateLimits(`delete=${DELETES_PER_WINDOW}/${WINDOW_MS}`);
      let limiter: RateLimiter = new LocalRateLimiter(limits);
      if (mode !== 'local') {
        const fleet = await startFleet(redis.url, namespace());
        fleets.push(fleet);
        limiter = new RedisRateLimiter(fleet, limits);
      }
      const rest = limitedClient(proxy.url, limiter);
      const names = await makeRooms(rest, 2 * DELETES_PER_WINDOW);
      proxy.holdNextDelete(700);
      const results = await burst([rest], names);
      expect(results).toEqual(names.map(() => 'ok'));
    });
  }
});
