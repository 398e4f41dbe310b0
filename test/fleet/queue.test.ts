/**
 * The fleet-wide queue on a real Redis: a call queued at a full replica runs on a free one; the
 * fleet refuses only when every slot and the fleet-wide queue are full; cancelled and expired
 * entries are dropped, not served; draining replicas take nothing; an entry given back is served
 * elsewhere.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Fleet, TakenCall } from '../../src/fleet/index.js';
import { waitFor } from '../helpers/ops.js';
import { namespace, startFleet } from '../helpers/fleet.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';

let redis: RedisServer;
const open: Fleet<{ n: number }>[] = [];
beforeAll(async () => {
  redis = await startRedis();
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((f) => f.close()));
});
afterAll(async () => {
  await redis?.stop();
});

async function fleet(ns: string, opts: Parameters<typeof startFleet>[2] = {}): Promise<Fleet<{ n: number }>> {
  const f = await startFleet<{ n: number }>(redis.url, ns, opts);
  open.push(f);
  return f;
}

/** A consumer that runs up to `slots` calls and records what it took. */
function consume(f: Fleet<{ n: number }>, slots: number, accept: (t: TakenCall<{ n: number }>) => boolean = () => true) {
  const running: TakenCall<{ n: number }>[] = [];
  f.startConsumer(
    () => running.length < slots,
    (t) => {
      if (!accept(t)) return false;
      running.push(t);
      return true;
    },
  );
  return running;
}

describe('fleet queue', () => {
  it('a call admitted at a full replica is taken by the replica with a free slot; the owner hears who took it', async () => {
    const ns = namespace();
    const full = await fleet(ns, { capacity: 1 });
    const free = await fleet(ns, { capacity: 1 });
    const fullRuns = consume(full, 0);
    const freeRuns = consume(free, 1);
    const taken: Array<{ callId: string; by: string }> = [];
    full.on('call-taken', (t) => taken.push(t));
    const r = await full.enqueue({ callId: 'c1', room: 'room-1', payload: { n: 1 } }, 5_000);
    expect(r.kind).toBe('queued');
    await waitFor('taken by the free replica', () => freeRuns.length === 1);
    expect(fullRuns).toHaveLength(0);
    expect(freeRuns[0]).toMatchObject({ callId: 'c1', owner: full.replicaId, room: 'room-1', payload: { n: 1 }, attempt: 0 });
    await waitFor('owner told', () => taken.length === 1);
    expect(taken[0]).toEqual({ callId: 'c1', by: free.replicaId });
    // Confirmed taken: nothing for the owner to run itself if Redis went away now.
    expect(full.takeOverUnconfirmed()).toEqual([]);
    expect((await full.ownerOfRoom('room-1'))?.replicaId).toBe(free.replicaId);
    const st = await full.fleetStatus();
    expect(st.queued).toBe(0);
    expect(st.replicas.find((x) => x.id === free.replicaId)).toMatchObject({
      alive: true,
      capacity: 1,
      active: 1,
      calls: [{ callId: 'c1', room: 'room-1' }],
    });
    await free.ack('c1');
    await free.finish('c1');
    const st2 = await full.fleetStatus();
    expect(st2.replicas.find((x) => x.id === free.replicaId)?.active).toBe(0);
    expect(await full.ownerOfRoom('room-1')).toBeUndefined();
  });

  it('503 only when the whole fleet is full: free slots fleet-wide plus MAX_QUEUED_CALLS', async () => {
    const ns = namespace();
    const a = await fleet(ns, { capacity: 1, maxQueued: 2 });
    const b = await fleet(ns, { capacity: 1, maxQueued: 2 });
    // Nobody consumes yet: 2 free slots + 2 queued = 4 admitted, the 5th refused.
    const results = [];
    for (let i = 0; i < 5; i++) results.push(await a.enqueue({ callId: `q${i}`, room: `r${i}`, payload: { n: i } }, 10_000));
    expect(results.map((r) => r.kind)).toEqual(['queued', 'queued', 'queued', 'queued', 'fleet_full']);
    expect(await b.queuedCount()).toBe(4);
    // Same callId again: not a second entry.
    expect((await b.enqueue({ callId: 'q0', room: 'r0', payload: { n: 0 } }, 10_000)).kind).toBe('already_queued');
    // b takes one (its slot is now busy): 3 waiting, 1 free slot + 2 → still full.
    const t = await b.take();
    expect(t?.callId).toBe('q0');
    expect((await a.enqueue({ callId: 'q9', room: 'r9', payload: { n: 9 } }, 10_000)).kind).toBe('fleet_full');
    // a draining: its free slot no longer counts.
    await a.setDraining(true);
    expect(await a.take()).toBeUndefined();
    await b.finish('q0');
    // b's slot is free again, a's does not count: 3 waiting vs 1 + 2.
    expect((await b.enqueue({ callId: 'q9', room: 'r9', payload: { n: 9 } }, 10_000)).kind).toBe('fleet_full');
    // FIFO: the next one b takes is the oldest.
    expect((await b.take())?.callId).toBe('q1');
  });

  it('cancelled and expired entries are dropped, not served; the owner hears of an expiry', async () => {
    const ns = namespace();
    const owner = await fleet(ns, { capacity: 0 });
    const runner = await fleet(ns, { capacity: 1 });
    const expired: string[] = [];
    owner.on('call-expired', (e) => expired.push(e.callId));
    await owner.enqueue({ callId: 'gone', room: 'r-gone', payload: { n: 1 } }, 10_000);
    await owner.enqueue({ callId: 'late', room: 'r-late', payload: { n: 2 } }, 100);
    await owner.enqueue({ callId: 'ok', room: 'r-ok', payload: { n: 3 } }, 10_000);
    expect(await owner.cancel('gone')).toBe(true);
    expect(await owner.cancel('gone')).toBe(false);
    await new Promise((r) => setTimeout(r, 250));
    expect(await runner.queuedCount()).toBe(1);
    const t = await runner.take();
    expect(t?.callId).toBe('ok');
    expect(await runner.take()).toBeUndefined();
    await waitFor('expiry reported to the owner', () => expired.includes('late'));
    expect(expired).toEqual(['late']);
    // A taken call cannot be cancelled (the caller's hang-up goes to the runner instead).
    expect(await owner.cancel('ok')).toBe(false);
  });

  it('a draining replica takes nothing; a replica without capacity waits until woken', async () => {
    const ns = namespace();
    const drainer = await fleet(ns, { capacity: 4 });
    const busy = await fleet(ns, { capacity: 1 });
    const drainerRuns = consume(drainer, 4);
    await drainer.setDraining(true);
    let slots = 0;
    const busyRuns: string[] = [];
    busy.startConsumer(
      () => busyRuns.length < slots,
      (t) => {
        busyRuns.push(t.callId);
      },
    );
    await busy.enqueue({ callId: 'd1', room: 'rd1', payload: { n: 1 } }, 10_000);
    await new Promise((r) => setTimeout(r, 600));
    expect(drainerRuns).toHaveLength(0);
    expect(busyRuns).toHaveLength(0);
    slots = 1;
    busy.wake();
    await waitFor('taken once a slot freed', () => busyRuns.length === 1, 5_000);
    expect(drainerRuns).toHaveLength(0);
  });

  it('an entry given back (the replica will not run it) is served by another replica', async () => {
    const ns = namespace();
    const refuser = await fleet(ns, { capacity: 1 });
    const refused: string[] = [];
    consume(refuser, 1, (t) => {
      refused.push(t.callId);
      return false;
    });
    await refuser.enqueue({ callId: 'g1', room: 'rg1', payload: { n: 1 } }, 10_000);
    await waitFor('refused once', () => refused.length >= 1);
    await refuser.setDraining(true);
    const other = await fleet(ns, { capacity: 1 });
    const runs = consume(other, 1);
    await waitFor('served elsewhere', () => runs.length === 1, 5_000);
    expect(runs[0]?.callId).toBe('g1');
    // Each give-back is a new attempt (the refuser may have refused it more than once before draining).
    expect(runs[0]?.attempt).toBeGreaterThanOrEqual(refused.length);
    expect(refused.length).toBeLessThan(10);
    const st = await other.fleetStatus();
    expect(st.replicas.find((r) => r.id === refuser.replicaId)?.calls).toEqual([]);
  });

  it('an entry that arrives after the last slot went is put back unread: its owner is not told, another replica takes it', async () => {
    const ns = namespace();
    const owner = await fleet(ns);
    const full = await fleet(ns);
    const free = await fleet(ns);
    const taken: Array<{ callId: string; by: string }> = [];
    owner.on('call-taken', (t) => taken.push(t));
    await owner.enqueue({ callId: 'u1', room: 'room-u1', payload: { n: 1 } }, 10_000);
    // Read with no slot left: put back as if never read.
    expect(await full.take(() => false)).toBeUndefined();
    expect((await owner.ownerOfRoom('room-u1'))?.replicaId).toBe(owner.replicaId);
    const t = await free.take(() => true);
    expect(t).toMatchObject({ callId: 'u1', owner: owner.replicaId, attempt: 0, payload: { n: 1 } });
    await waitFor('the taken notice', () => taken.length === 1, 5_000);
    expect(taken).toEqual([{ callId: 'u1', by: free.replicaId }]);
    expect((await owner.ownerOfRoom('room-u1'))?.replicaId).toBe(free.replicaId);
  });
});
