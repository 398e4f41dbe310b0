/**
 * Domain webhooks reach the owner: an event received at any replica is deduplicated fleet-wide
 * and delivered to the replica running the call's bot (its inbox stream); when that replica is
 * gone the receiver is told to handle it itself.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Fleet } from '../../src/fleet/index.js';
import { waitFor } from '../helpers/ops.js';
import { namespace, startFleet } from '../helpers/fleet.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

describe('domain events', () => {
  it('the same event at three replicas: handled once, at the replica running the call', async () => {
    const ns = namespace();
    const fleets: Fleet[] = await Promise.all([0, 1, 2].map(() => startFleet(redis.url, ns, { capacity: 1 })));
    const [a, b, c] = fleets as [Fleet, Fleet, Fleet];
    const got: Array<[string, unknown]> = [];
    for (const f of fleets) f.on('domain-event', (e) => got.push([f.replicaId, e]));
    try {
      // Queued at a: events for its room go to a (it can cancel the wait); once b takes it, to b.
      await a.enqueue({ callId: 'c1', room: 'room-c1', payload: {} }, 10_000);
      expect((await c.ownerOfRoom('room-c1'))?.replicaId).toBe(a.replicaId);
      expect((await b.take())?.callId).toBe('c1');
      expect((await c.ownerOfRoom('room-c1'))?.replicaId).toBe(b.replicaId);

      // Daily delivers the event (and its retries) to every replica at once.
      const ev = { id: 'evt-1', type: 'meeting.ended', room: 'room-c1' };
      const handled = await Promise.all(
        fleets.map(async (f) => {
          if (!(await f.firstSeen(ev.id, 60_000))) return 'duplicate';
          const owner = await f.ownerOfRoom(ev.room);
          if (owner === undefined) return 'unknown_room';
          expect(owner.callId).toBe('c1');
          return owner.replicaId === f.replicaId ? 'local' : f.routeEvent(owner.replicaId, ev);
        }),
      );
      expect(handled.filter((h) => h === 'duplicate')).toHaveLength(2);
      expect(handled.filter((h) => h !== 'duplicate')).toHaveLength(1);
      const first = fleets[handled.findIndex((h) => h !== 'duplicate')]!;
      if (first !== b) {
        expect(handled.find((h) => h !== 'duplicate')).toBe('routed');
        await waitFor('delivered to the runner', () => got.length === 1, 5_000);
        expect(got[0]).toEqual([b.replicaId, ev]);
      } else {
        expect(handled.find((h) => h !== 'duplicate')).toBe('local');
      }
      // A retry an hour later is still a duplicate within the TTL.
      for (const f of fleets) expect(await f.firstSeen(ev.id, 60_000)).toBe(false);

      // Routed to a live replica from each of the others: delivered in order, once each.
      await a.routeEvent(b.replicaId, { id: 'e2' });
      await c.routeEvent(b.replicaId, { id: 'e3' });
      await waitFor('both delivered', () => got.filter(([r]) => r === b.replicaId).length >= 3 - (first === b ? 1 : 0), 5_000);
      expect(
        got
          .filter(([r]) => r === b.replicaId)
          .map(([, e]) => (e as { id: string }).id)
          .slice(-2),
      ).toEqual(['e2', 'e3']);
      expect(got.filter(([r]) => r !== b.replicaId)).toEqual([]);
    } finally {
      await Promise.all(fleets.map((f) => f.close()));
    }
  });

  it('owner gone: the receiving replica is told to handle the event itself', async () => {
    const ns = namespace();
    const a = await startFleet(redis.url, ns);
    const b = await startFleet(redis.url, ns);
    try {
      expect(await a.routeEvent(b.replicaId, { id: 'x' })).toBe('routed');
      await b.close();
      expect(await a.routeEvent(b.replicaId, { id: 'y' })).toBe('owner_gone');
      expect(await a.routeEvent('never-existed', { id: 'z' })).toBe('owner_gone');
    } finally {
      await a.close();
    }
  });

  it("events sent while the owner's inbox reader was cut off are delivered when it reconnects (a stream, not pub/sub)", async () => {
    const ns = namespace();
    const a = await startFleet(redis.url, ns);
    const b = await startFleet(redis.url, ns);
    const got: unknown[] = [];
    b.on('domain-event', (e) => got.push(e));
    try {
      // Drop b's connections from the server side (CLIENT KILL of the blocking inbox reader).
      await a.redis.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
      await a.routeEvent(b.replicaId, { id: 'while-cut-off' }).catch(async () => a.routeEvent(b.replicaId, { id: 'while-cut-off' }));
      await waitFor('delivered after reconnecting', () => got.length === 1, 10_000);
      expect(got).toEqual([{ id: 'while-cut-off' }]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
