/**
 * Issue 13.5: a burst of 50 calls over three replica processes in fleet mode, against an emulator
 * that enforces Daily's documented per-domain REST limits (every class at Daily's figures: 100 per
 * 5 s for most endpoints, 50 per 30 s for DELETE /rooms). The replicas share the windows through
 * Redis; the worker's own pinlessCallUpdate waits in the same window. No 429 may reach a request
 * on a caller's path, every call connects, and the fleet ends with nothing left behind.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { EmulatedCall } from '../../src/emulator/types.js';
import { FLEET_NUMBER, startFleetOfReplicas, type FleetOfReplicas } from '../helpers/fleet-replicas.js';

const BURST = 50;
let f: FleetOfReplicas;
let failed = false;

beforeAll(async () => {
  f = await startFleetOfReplicas(
    3,
    {
      MAX_CONCURRENT_BOTS: '6',
      IDLE_WORKERS: '6',
      WARM_ROOMS: '0',
      MAX_QUEUED_CALLS: String(BURST),
      // The burst is about rate limits, not speed: on 2 shared cores, with other test files running,
      // 50 one-shot workers forked by three replicas can take longer than Daily's usual 30 s of hold.
      QUEUE_TIMEOUT_MS: '80000',
      HOLD_BUDGET_MS: '80000',
      DAILY_ROOM_DELETE_INTERVAL_MS: '100',
      DRAIN_TIMEOUT_MS: '5000',
      WORKER_CLOSE_TIMEOUT_MS: '2000',
    },
    // Daily's figures for every class (the helper's default raises the DELETE window).
    { rateLimits: {}, holdTimeoutMs: 90_000 },
  );
  expect(f.emulator.rateLimits.enabled).toBe(true);
}, 120_000);

afterAll(async () => {
  await f?.stop(failed);
}, 60_000);

describe('fleet mode under Daily’s rate limits', () => {
  test(`a burst of ${BURST} calls over three replicas: all connected, no 429 on a caller’s path, nothing left`, async () => {
    try {
      const t0 = Date.now();
      f.mode = { kind: 'roundRobin' };
      const calls: EmulatedCall[] = Array.from({ length: BURST }, () =>
        f.emulator.placeCall({ to: FLEET_NUMBER, script: [{ waitFor: 'connected', timeoutMs: 85_000 }, { wait: 500 }, { hangup: true }] }),
      );
      const ends = await Promise.all(calls.map((c) => c.ended));
      expect(ends.map((e) => e.reason)).toEqual(calls.map(() => 'caller_hangup'));
      const log = f.emulator.requestLog.filter((r) => r.atMs >= t0);
      const limited = log.filter((r) => r.status === 429);
      const onCallPath = limited.filter((r) => !(r.method === 'DELETE' && r.path.startsWith('/rooms/')));
      expect(onCallPath).toEqual([]);
      expect(log.filter((r) => r.path === '/dialin/pinlessCallUpdate' && r.status === 200)).toHaveLength(BURST);
      // Every replica took a share (round robin, one fleet-wide queue).
      const runners = new Set(
        f
          .lines()
          .filter((l) => l.msg === 'call ended')
          .map((l) => l.replicaIndex),
      );
      expect(runners.size).toBe(3);
      // Rooms are deleted at DELETE's pace (50 per 30 s, background priority).
      await f.expectNoLeaks(calls, 75_000);
      console.log(
        `fleet burst ${BURST}: ${log.filter((r) => r.method === 'POST' && r.path === '/rooms').length} POST /rooms, ` +
          `${log.length} requests, ${limited.length} × 429 (${limited.length - onCallPath.length} on DELETE), ` +
          `all connected and cleaned up in ${Date.now() - t0} ms`,
      );
    } catch (err) {
      failed = true;
      throw err;
    }
  }, 240_000);
});
