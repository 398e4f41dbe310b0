/**
 * Redis loses the fleet's state while the replicas stay connected, or the fleet comes apart and
 * re-forms (issue 21, items 1 and 2). Two real replica processes, one real redis-server, the emulator.
 *
 *  - FLUSHALL over the same connections (as eviction or a fail-over to an empty primary would):
 *    every replica notices at its next heartbeat (the fleet's epoch key), publishes again its live
 *    calls, its claims with their first answers and the calls it queued; callers waiting in the fleet
 *    queue are served once a bot frees, and a late duplicate of a live call is answered as one.
 *  - Redis killed and restarted: the calls one replica admitted on its own while apart, and which have
 *    ended since, are deduped when their webhooks are delivered again to the other replica.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { CallerStep } from '../../src/emulator/types.js';
import { waitUntil } from '../cluster/procs.js';
import { endedLines, FLEET_NUMBER, placeCall, startFleetOfReplicas, type FleetOfReplicas } from '../helpers/fleet-replicas.js';

let f: FleetOfReplicas;
let failed = false;

beforeAll(async () => {
  f = await startFleetOfReplicas(
    2,
    {
      MAX_CONCURRENT_BOTS: '1',
      MAX_QUEUED_CALLS: '2',
      IDLE_WORKERS: '1',
      QUEUE_TIMEOUT_MS: '25000',
      FLEET_HEARTBEAT_MS: '300',
      FLEET_REPLICA_LOST_MS: '3000',
      DAILY_ROOM_DELETE_INTERVAL_MS: '100',
      DAILY_RATE_LIMITS: 'delete=300/30000',
      DRAIN_TIMEOUT_MS: '5000',
    },
    { holdTimeoutMs: 25_000 },
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

const hold = (ms: number): CallerStep[] => [{ waitFor: 'connected', timeoutMs: 24_000 }, { wait: ms }, { hangup: true }];
const place = (script: CallerStep[]) => placeCall(f, script);
const ended = (callId: string) => endedLines(f, callId);
const webhook = (callId: string) => ({ callId, callDomain: f.emulator.callDomain, From: '+15550001111', To: FLEET_NUMBER, sipHeaders: {} });

async function workersReady(): Promise<void> {
  await waitUntil(
    async () => (await Promise.all(f.replicas.map((_, i) => f.status(i)))).every((s) => s.workers.idle >= 1 && s.fleet?.degraded === false),
    'idle workers and a formed fleet',
    60_000,
    200,
  );
}

describe('fleet state lost or apart', () => {
  test(
    'FLUSHALL with two callers in the fleet queue: both are served, a late duplicate of a live call is not admitted again',
    () =>
      track(
        (async () => {
          await workersReady();
          f.mode = { kind: 'roundRobin' };
          const holders = [place(hold(60_000)), place(hold(60_000))];
          expect(await Promise.all(holders.map((h) => h.connected))).toEqual([true, true]);
          // Both bots busy: two more callers wait in the fleet queue.
          f.mode = { kind: 'only', index: 0 };
          const waiting = [place(hold(500)), place(hold(500))];
          await waitUntil(
            () => waiting.every((w) => f.answers.some((a) => a.callId === w.call.callId && a.status === 200)),
            'both waiting calls admitted',
            10_000,
          );
          const roomsBefore = f.emulator.snapshot().rooms.length;

          const admin = new Redis(f.redis.url);
          await admin.flushall();
          await admin.quit();
          // Every replica notices at its next heartbeat (300 ms) and publishes its state again.
          await new Promise((r) => setTimeout(r, 1_500));

          // A late duplicate of a live call, at the replica that did not admit it: answered as one.
          for (const h of holders) {
            const first = f.answers.find((a) => a.callId === h.call.callId && a.status === 200)!;
            const other = 1 - first.index;
            const res = await f.dialin(other, webhook(h.call.callId));
            expect(res.status).toBe(200);
            const body = (await res.json()) as { duplicate?: boolean; roomUrl?: string };
            expect(body).toMatchObject({ duplicate: true, roomUrl: first.body.roomUrl });
          }
          expect(f.emulator.snapshot().rooms.length).toBe(roomsBefore);

          // Bots free up: the callers who waited through the flush are served.
          for (const h of holders) h.call.hangup();
          expect(await Promise.all(waiting.map((w) => w.connected))).toEqual([true, true]);
          await Promise.all([...holders, ...waiting].map((c) => c.call.ended));
          for (const c of [...holders, ...waiting]) {
            await waitUntil(() => ended(c.call.callId).length > 0, 'recorded', 15_000);
            expect(ended(c.call.callId).map((l) => l.outcome)).toEqual(['caller_hangup']);
          }
          await f.expectNoLeaks([...holders, ...waiting].map((c) => c.call));
          expect(
            f
              .lines()
              .filter((l) => String(l.msg).includes('FLEET STATE LOST'))
              .map((l) => l.replicaIndex)
              .sort(),
          ).toEqual([0, 1]);
        })(),
      ),
    120_000,
  );

  test(
    'Redis restarted: calls one replica admitted alone, ended since, are deduped when delivered again elsewhere',
    () =>
      track(
        (async () => {
          await workersReady();
          f.mode = { kind: 'only', index: 0 };
          await f.redis.kill();
          await waitUntil(async () => (await f.status(0)).fleet?.degraded === true, 'replica 0 degraded', 10_000, 100);
          const calls = [place(hold(300)), place(hold(300)), place(hold(300))];
          expect(await Promise.all(calls.map((c) => c.connected))).toEqual([true, true, true]);
          await Promise.all(calls.map((c) => c.call.ended));
          for (const c of calls) await waitUntil(() => ended(c.call.callId).length > 0, 'recorded', 15_000);
          await f.redis.restart();
          await workersReady();

          const roomsBefore = f.emulator.snapshot().rooms.length;
          for (const c of calls) {
            const first = f.answers.find((a) => a.callId === c.call.callId && a.status === 200)!;
            const res = await f.dialin(1, webhook(c.call.callId));
            expect(res.status).toBe(200);
            expect((await res.json()) as { duplicate?: boolean; roomUrl?: string }).toMatchObject({
              duplicate: true,
              roomUrl: first.body.roomUrl,
            });
          }
          await new Promise((r) => setTimeout(r, 1_000));
          expect(f.emulator.snapshot().rooms.length).toBe(roomsBefore);
          for (const c of calls) expect(ended(c.call.callId).map((l) => l.outcome)).toEqual(['caller_hangup']);
        })(),
      ),
    120_000,
  );
});
