/**
 * No leak above Daily's room-deletion class (issue 27, item 3). Two real replica processes on one
 * redis-server share one emulated domain whose `DELETE /rooms` class is scaled down to 1 per 2 s
 * (Daily: 50 per 30 s; DAILY_RATE_LIMITS set to match, shared through Redis) and each replica may
 * queue at most 1 room for deletion (DAILY_ROOM_DELETE_BACKLOG_MAX). 8 callers connect, then
 * hang up 4 per second — eight times the class. What must hold:
 *  - 0 × 429 from the emulator, the delete class included: deletions wait for their grant;
 *  - every call connected and ended, its slot freed (deletion never holds a call);
 *  - no replica ever queued more than its bound; past it the oldest room was left to its `exp`
 *    and counted (`/status` roomDeletions.leftToExpire, `patchbay_rooms_left_to_expire_total`);
 *  - afterwards: the deletion backlog, the fleet queue and every replica back to idle; the rooms
 *    still at the emulator are exactly the ones counted as left to expire, each with an `exp`.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { waitUntil } from '../cluster/procs.js';
import { placeCall, startFleetOfReplicas, type FleetOfReplicas } from '../helpers/fleet-replicas.js';

type Status = Awaited<ReturnType<FleetOfReplicas['status']>> & {
  roomDeletions: { backlog: number; backlogPeak: number; deleted: number; leftToExpire: number; rateLimited: number };
};

const BOUND = 1;
const CALLS = 8;
let f: FleetOfReplicas;
let failed = false;

beforeAll(async () => {
  f = await startFleetOfReplicas(
    2,
    {
      MAX_CONCURRENT_BOTS: '4',
      MAX_QUEUED_CALLS: '4',
      IDLE_WORKERS: '4',
      DAILY_ROOM_DELETE_INTERVAL_MS: '100',
      DAILY_ROOM_DELETE_BACKLOG_MAX: String(BOUND),
      DAILY_RATE_LIMITS: 'delete=1/2000',
    },
    { rateLimits: { classes: { 'room-delete': [{ requests: 1, windowMs: 2_000 }] } } },
  );
  f.mode = { kind: 'roundRobin' };
}, 120_000);

afterAll(async () => {
  await f?.stop(failed);
}, 60_000);

const statuses = async () => (await Promise.all(f.replicas.map((_, i) => f.status(i)))) as Status[];

test('a sustained run above the deletion class keeps the deletion backlog within its bound and leaves rooms, queues and slots back to baseline', async () => {
  try {
    await waitUntil(async () => (await statuses()).every((s) => s.workers.idle >= 4), 'idle workers', 60_000, 200);
    const t0 = Date.now();
    // Callers arrive, then hang up 4 per second: their rooms are released 8× faster than the class deletes.
    const calls = Array.from({ length: CALLS }, () => placeCall(f, [{ waitFor: 'connected', timeoutMs: 30_000 }, { wait: 60_000 }]));
    expect(await Promise.all(calls.map((c) => c.connected))).toEqual(calls.map(() => true));
    for (const c of calls) {
      c.call.hangup();
      await new Promise((r) => setTimeout(r, 250));
    }
    await Promise.all(calls.map((c) => c.call.ended));

    // Back to baseline: no call, no queue, no deletion waiting (the backlog drains at the class's pace).
    await waitUntil(
      async () => (await statuses()).every((s) => s.roomDeletions.backlog === 0 && s.activeCalls + s.queuedCalls === 0),
      'deletion backlog drained, replicas idle',
      30_000,
      200,
    );
    const st = await statuses();
    for (const s of st) expect(s.roomDeletions.backlogPeak).toBeLessThanOrEqual(BOUND);
    const left = st.reduce((a, s) => a + s.roomDeletions.leftToExpire, 0);
    const deleted = st.reduce((a, s) => a + s.roomDeletions.deleted, 0);
    expect(left).toBeGreaterThan(0); // the run was above the class: some rooms were left to their exp
    expect(deleted + left).toBe(CALLS);
    expect(st.every((s) => (s.fleet as { queued?: number } | undefined)?.queued === 0)).toBe(true);

    const deletes = f.emulator.requestLog.filter((r) => r.atMs >= t0 && r.method === 'DELETE');
    expect(deletes.length).toBe(deleted);
    expect(f.emulator.requestLog.filter((r) => r.atMs >= t0 && r.status === 429)).toEqual([]);

    // The rooms still at the emulator are exactly those left to expire, each with its exp.
    const rooms = f.emulator.snapshot().rooms;
    expect(rooms.length).toBe(left);
    const nowSec = Date.now() / 1000;
    for (const r of rooms) {
      const exp = (await (
        await fetch(`${f.emulator.apiUrl}/rooms/${r.name}`, { headers: { authorization: `Bearer ${f.env.DAILY_API_KEY}` } })
      ).json()) as {
        config: { exp?: number };
      };
      expect(exp.config.exp).toBeGreaterThan(nowSec);
    }

    // Counted for operators too.
    const metrics = await (await fetch(`${f.replicas[0]!.url}/metrics`)).text();
    expect(metrics).toMatch(/^patchbay_rooms_left_to_expire_total \d+/m);
    expect(metrics).toMatch(/^patchbay_room_deletions_pending 0$/m);

    // Exactly one outcome per call fleet-wide, no worker busy (rooms aside: checked above).
    const ended = f.lines().filter((l) => l.msg === 'call ended');
    for (const c of calls) expect(ended.filter((l) => l.callId === c.call.callId)).toHaveLength(1);
    for (const s of st) expect(s.workers.busy).toBe(0);
  } catch (err) {
    failed = true;
    throw err;
  }
}, 90_000);
