/**
 * Warm rooms in fleet mode: two real replica processes with WARM_ROOMS=1 and one bot each, one
 * real redis-server, the emulator as their Daily (test/helpers/fleet-replicas.ts).
 *
 *  - a call whose webhook reaches both replicas at once runs in the winner's warm slot, past the
 *    fleet queue, registered fleet-wide (exactly one bot, one pinlessCallUpdate);
 *  - a call its admitting replica cannot serve goes through the fleet queue, and the replica that
 *    takes it runs it in its own warm slot (the room made at admission is deleted unused);
 *  - a call admitted while Redis was away is registered fleet-wide once the fleet re-forms.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { CallerStep } from '../../src/emulator/types.js';
import { waitUntil } from '../cluster/procs.js';
import { endedLines, FLEET_NUMBER, placeCall, roomOf, startFleetOfReplicas, type FleetOfReplicas } from '../helpers/fleet-replicas.js';

let f: FleetOfReplicas;
let failed = false;

beforeAll(async () => {
  f = await startFleetOfReplicas(2, {
    MAX_CONCURRENT_BOTS: '1',
    MAX_QUEUED_CALLS: '2',
    IDLE_WORKERS: '1',
    WARM_ROOMS: '1',
    QUEUE_TIMEOUT_MS: '15000',
    FLEET_HEARTBEAT_MS: '300',
    FLEET_REPLICA_LOST_MS: '3000',
    FLEET_PRESENCE_RECHECK_MS: '1000',
    // The emulator's presence is not behind here (its default).
    FLEET_PRESENCE_LAG_MS: '0',
    DAILY_ROOM_DELETE_INTERVAL_MS: '100',
    DRAIN_TIMEOUT_MS: '5000',
    WORKER_CLOSE_TIMEOUT_MS: '2000',
    DAILY_RATE_LIMITS: 'delete=300/30000',
  });
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

/** Polls `f` until it gives a value. */
async function until<T>(f: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs: number, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

const metrics = (i: number) => fetch(`${f.replicas[i]!.url}/metrics`).then((r) => r.text());

async function warmReady(): Promise<void> {
  await waitUntil(
    async () => (await Promise.all(f.replicas.map((_, i) => metrics(i)))).every((m) => /patchbay_warm_slots\{state="ready"\} 1/.test(m)),
    'a ready warm slot on every replica',
    60_000,
    200,
  );
}

const hold = (ms: number): CallerStep[] => [{ waitFor: 'connected', timeoutMs: 25_000 }, { wait: ms }, { hangup: true }];

const place = (script: CallerStep[]) => placeCall(f, script);

const ended = (callId: string) => endedLines(f, callId);
const updates = (callId: string) => f.emulator.requestLog.filter((r) => r.path === '/dialin/pinlessCallUpdate' && r.callId === callId);

/** Replica index and room of `callId` in the fleet registry (as replica 0 sees it). */
async function registered(callId: string): Promise<{ index: number; room: string } | undefined> {
  const s = await f.status(0);
  for (const r of s.fleet?.replicas ?? []) {
    const c = r.calls.find((x) => x.callId === callId);
    if (!c) continue;
    for (let i = 0; i < f.replicas.length; i++) if ((await f.status(i)).fleet?.replicaId === r.id) return { index: i, room: c.room };
  }
  return undefined;
}

describe.sequential('fleet mode with warm rooms', () => {
  test(
    'a webhook at both replicas at once: one bot, in the winner’s warm slot, registered fleet-wide',
    () =>
      track(
        (async () => {
          await warmReady();
          f.mode = { kind: 'fanout' };
          const a = place(hold(2_500));
          expect(await a.connected).toBe(true);
          const reg = await until(() => registered(a.call.callId), 'the call in the fleet registry', 5_000, 50);
          await a.call.ended;
          const [line, ...more] = await until(
            () => (ended(a.call.callId).length > 0 ? ended(a.call.callId) : undefined),
            'the call recorded',
            15_000,
          );
          expect(more).toEqual([]);
          expect(line!.replicaIndex).toBe(reg.index);
          expect(line!.path).toBe('warm');
          expect(line!.room).toBe(reg.room);
          expect(line!.outcome).toBe('caller_hangup');
          // Both replicas answered the same call: one admitted it, the other answered its duplicate.
          const answers = f.answers.filter((x) => x.callId === a.call.callId);
          expect(answers.map((x) => x.status)).toEqual([200, 200]);
          expect(answers.filter((x) => x.body.duplicate === false)).toHaveLength(1);
          expect(new Set(answers.map((x) => x.body.roomUrl)).size).toBe(1);
          expect(roomOf(answers[0]!.body.roomUrl!)).toBe(reg.room);
          expect(updates(a.call.callId)).toHaveLength(1);
        })(),
      ),
    90_000,
  );

  test(
    'a call its replica cannot serve goes through the fleet queue; the taker runs it in its own warm slot',
    () =>
      track(
        (async () => {
          await warmReady();
          // Replica 0's one bot is busy …
          f.mode = { kind: 'only', index: 0 };
          const busy = place(hold(6_000));
          expect(await busy.connected).toBe(true);
          // … so the next call it admits waits in the fleet queue, and replica 1 takes it.
          const b = place(hold(500));
          expect(await b.connected).toBe(true);
          await b.call.ended;
          const line = await until(() => ended(b.call.callId)[0], 'the call recorded', 15_000);
          expect(line.replicaIndex).toBe(1);
          expect(line.path).toBe('warm');
          expect(line.outcome).toBe('caller_hangup');
          const answer = f.answers.find((x) => x.callId === b.call.callId && x.status === 200)!;
          const admittedRoom = roomOf(answer.body.roomUrl!);
          expect(line.room).not.toBe(admittedRoom);
          expect(updates(b.call.callId)).toHaveLength(1);
          // The room replica 0 made at admission was never used: deleted.
          await waitUntil(() => !f.emulator.snapshot().rooms.some((r) => r.name === admittedRoom), 'the unused room deleted', 10_000);
          await busy.call.ended;
          expect((await until(() => ended(busy.call.callId)[0], 'the first call recorded', 15_000)).path).toBe('warm');
        })(),
      ),
    90_000,
  );

  test(
    'a call admitted while Redis was away is registered fleet-wide once the fleet re-forms',
    () =>
      track(
        (async () => {
          await warmReady();
          f.mode = { kind: 'only', index: 0 };
          await f.redis.kill();
          await waitUntil(async () => /patchbay_fleet_degraded\{[^}]*\} 1/.test(await metrics(0)), 'replica 0 degraded', 10_000, 100);
          const c = place(hold(15_000));
          expect(await c.connected).toBe(true);
          await f.redis.restart();
          await waitUntil(
            async () => (await Promise.all(f.replicas.map((_, i) => f.status(i)))).every((s) => s.fleet?.degraded === false),
            're-formed fleet',
            15_000,
            200,
          );
          const reg = await until(() => registered(c.call.callId), 'the call in the fleet registry', 5_000, 100);
          expect(reg.index).toBe(0);
          // A webhook for it now, at the other replica, is answered as a duplicate (no second bot).
          f.mode = { kind: 'only', index: 1 };
          const answer = f.answers.find((x) => x.callId === c.call.callId && x.status === 200)!;
          const again = await f.dialin(1, {
            callId: c.call.callId,
            callDomain: f.emulator.callDomain,
            From: '+15550001111',
            To: FLEET_NUMBER,
            sipHeaders: {},
          });
          expect(again.status).toBe(200);
          const body = (await again.json()) as { duplicate?: boolean; roomUrl?: string };
          expect(body.duplicate).toBe(true);
          expect(body.roomUrl).toBe(answer.body.roomUrl);
          c.call.hangup();
          await c.call.ended;
          await until(() => ended(c.call.callId)[0], 'the call recorded', 15_000);
          expect(ended(c.call.callId)).toHaveLength(1);
        })(),
      ),
    120_000,
  );

  test(
    'the owner of a waiting call is SIGKILLed; the caller hangs up on hold: a survivor records it once and deletes its room',
    () =>
      track(
        (async () => {
          await warmReady();
          // Both bots busy …
          f.mode = { kind: 'only', index: 0 };
          const busy0 = place(hold(60_000));
          expect(await busy0.connected).toBe(true);
          f.mode = { kind: 'only', index: 1 };
          const busy1 = place(hold(60_000));
          expect(await busy1.connected).toBe(true);
          // … so a call replica 0 admits waits in the fleet queue.
          f.mode = { kind: 'only', index: 0 };
          const waiting = f.emulator.placeCall({ to: FLEET_NUMBER, script: [{ wait: 60_000 }] });
          const answer = await until(() => f.answers.find((x) => x.callId === waiting.callId && x.status === 200), 'the answer', 10_000);
          const room = roomOf(answer.body.roomUrl!);
          f.replicas[0]!.proc.kill('SIGKILL');
          // Its worker would finish busy0's call (issue 21, item 5); its caller hangs up.
          busy0.call.hangup();
          // Replica 1 reaps it: the call replica 0 ran is recorded replica_lost.
          await until(
            () => ended(busy0.call.callId).find((l) => l.replicaIndex === 1 && l.outcome === 'replica_lost'),
            'replica_lost recorded by the survivor',
            15_000,
          );
          // The waiting caller gives up; Daily's dialin.stopped reaches the survivor.
          waiting.hangup();
          const r = await f.domainEvent(1, 'dialin.stopped', { room });
          expect(r).toEqual({ status: 200, body: { status: 'ok', action: 'owner_gone' } });
          const line = await until(() => ended(waiting.callId)[0], 'the waiting call recorded', 10_000);
          expect(line).toMatchObject({ replicaIndex: 1, outcome: 'caller_hangup_on_hold', room });
          await until(() => (f.emulator.snapshot().rooms.some((x) => x.name === room) ? undefined : true), 'its room deleted', 15_000);
          expect(ended(waiting.callId)).toHaveLength(1);
          busy1.call.hangup();
          await busy1.call.ended;
        })(),
      ),
    120_000,
  );
});
