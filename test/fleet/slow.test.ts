/**
 * A slow Redis is not a down one, and exactly-once has a last resort that does not depend on Redis
 * (issue 21, item 3). Two real replica processes reach a real redis-server through a proxy that can
 * delay Redis's answers (test/helpers/fleet-proxy.ts); each webhook goes to both at the same instant.
 *
 *  - Answers at 600 ms, beyond FLEET_OP_TIMEOUT_MS (500): no replica degrades; each call gets one
 *    room, one bot, one record.
 *  - Redis down (every replica degraded, deduping on its own): the room named from the callId can be
 *    created once in Daily's namespace, so each call still gets one room, one bot, one record.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { CallerStep } from '../../src/emulator/types.js';
import { waitUntil } from '../cluster/procs.js';
import { endedLines, placeCall, startFleetOfReplicas, type FleetOfReplicas } from '../helpers/fleet-replicas.js';

let f: FleetOfReplicas;
let failed = false;

beforeAll(async () => {
  f = await startFleetOfReplicas(
    2,
    {
      MAX_CONCURRENT_BOTS: '3',
      MAX_QUEUED_CALLS: '3',
      IDLE_WORKERS: '3',
      QUEUE_TIMEOUT_MS: '15000',
      FLEET_HEARTBEAT_MS: '500',
      FLEET_REPLICA_LOST_MS: '5000',
      FLEET_OP_TIMEOUT_MS: '500',
      FLEET_ADMIT_TIMEOUT_MS: '2000',
      FLEET_DEGRADE_AFTER_MS: '3000',
      DAILY_ROOM_DELETE_INTERVAL_MS: '100',
      DAILY_RATE_LIMITS: 'delete=300/30000',
    },
    { slowRedis: true },
  );
}, 120_000);

afterAll(async () => {
  await f?.stop(failed);
}, 60_000);

function track<T>(p: Promise<T>): Promise<T> {
  return p.catch((err: unknown) => {
    failed = true;
    throw err;
  });
}

const hold = (ms: number): CallerStep[] => [{ waitFor: 'connected', timeoutMs: 20_000 }, { wait: ms }, { hangup: true }];
const bots = (callId: string) => f.emulator.requestLog.filter((r) => r.path === '/dialin/pinlessCallUpdate' && r.callId === callId);

async function ready(degraded: boolean): Promise<void> {
  await waitUntil(
    async () =>
      (await Promise.all(f.replicas.map((_, i) => f.status(i)))).every((s) => s.workers.idle >= 3 && s.fleet?.degraded === degraded),
    `idle workers, fleet degraded=${degraded}`,
    60_000,
    200,
  );
}

async function storm(n: number): Promise<Array<ReturnType<typeof placeCall>>> {
  f.mode = { kind: 'fanout' };
  const calls = Array.from({ length: n }, () => placeCall(f, hold(1_000)));
  expect(await Promise.all(calls.map((c) => c.connected))).toEqual(calls.map(() => true));
  await Promise.all(calls.map((c) => c.call.ended));
  for (const c of calls) await waitUntil(() => endedLines(f, c.call.callId).length > 0, 'recorded', 15_000);
  await new Promise((r) => setTimeout(r, 1_000));
  for (const c of calls) {
    expect(endedLines(f, c.call.callId).map((l) => l.outcome)).toEqual(['caller_hangup']);
    expect(bots(c.call.callId)).toHaveLength(1);
  }
  await f.expectNoLeaks(calls.map((c) => c.call));
  return calls;
}

describe('slow Redis, down Redis', () => {
  test(
    'answers at 600 ms (op timeout 500 ms): nobody degrades, each call admitted once',
    () =>
      track(
        (async () => {
          await ready(false);
          const degradedBefore = f.lines().filter((l) => String(l.msg).includes('FLEET DEGRADED')).length;
          f.proxy!.delayMs = 600;
          try {
            await new Promise((r) => setTimeout(r, 1_500));
            await storm(4);
            expect((await Promise.all(f.replicas.map((_, i) => f.status(i)))).map((s) => s.fleet?.degraded)).toEqual([false, false]);
            expect(f.lines().filter((l) => String(l.msg).includes('FLEET DEGRADED')).length).toBe(degradedBefore);
          } finally {
            f.proxy!.delayMs = 0;
          }
        })(),
      ),
    120_000,
  );

  test(
    'Redis down: every replica degraded, the room named from the callId still admits each call once',
    () =>
      track(
        (async () => {
          await ready(false);
          await f.redis.kill();
          try {
            await ready(true);
            await storm(4);
          } finally {
            await f.redis.restart();
          }
          await ready(false);
        })(),
      ),
    120_000,
  );
});
