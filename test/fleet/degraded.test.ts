/**
 * Redis trouble is survivable: Redis SIGKILLed mid-operation and restarted (empty) on the same
 * port. Every Fleet call fails fast while it is down, `degraded` flips true then back false, the
 * fleet re-forms (replicas, live calls) and claims work again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { FleetUnavailableError, RedisRateLimiter, registerFleetMetrics, type Fleet } from '../../src/fleet/index.js';
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

async function settleMs(p: Promise<unknown>): Promise<{ ms: number; err: unknown }> {
  const t0 = performance.now();
  try {
    await p;
    return { ms: performance.now() - t0, err: undefined };
  } catch (err) {
    return { ms: performance.now() - t0, err };
  }
}

describe('Redis killed and restarted', () => {
  it('fails fast while down, degrades, re-forms on the same port, claims work again', async () => {
    const ns = namespace();
    const a = await startFleet(redis.url, ns, { capacity: 2, opTimeoutMs: 300 });
    const b = await startFleet(redis.url, ns, { capacity: 2, opTimeoutMs: 300 });
    const registry = new Registry();
    registerFleetMetrics(registry, a);
    const gauge = async () => /patchbay_fleet_degraded\{replica="[^"]+"\} (\d)/.exec(await registry.metrics())?.[1];
    expect(await gauge()).toBe('0');
    const flips: Array<[string, boolean]> = [];
    a.on('degraded', (d) => flips.push(['a', d]));
    b.on('degraded', (d) => flips.push(['b', d]));
    try {
      // A call running on a (taken from the queue), and one b queued that nobody has taken.
      await b.enqueue({ callId: 'live-1', room: 'room-live-1', payload: {} }, 10_000);
      expect((await a.take())?.callId).toBe('live-1');
      await a.ack('live-1');
      await a.setDraining(true); // a takes nothing more: b's next entry stays unconfirmed
      await b.enqueue({ callId: 'waiting-1', room: 'room-waiting-1', payload: {} }, 10_000);
      expect((await a.claim('before')).kind).toBe('won');
      await a.setAnswer('before', { status: 'accepted', id: 'first' });

      // Mid-operation: a stream of claims in flight when Redis dies.
      let stop = false;
      const inFlight: Promise<{ ms: number; err: unknown }>[] = [];
      const storm = (async () => {
        for (let i = 0; !stop; i++) {
          inFlight.push(settleMs(a.claim(`storm-${i}`)));
          await new Promise((r) => setTimeout(r, 2));
        }
      })();
      await new Promise((r) => setTimeout(r, 100));
      await redis.kill();
      await new Promise((r) => setTimeout(r, 100));
      stop = true;
      await storm;
      const settled = await Promise.all(inFlight);
      // Nothing hangs: every claim in flight settled, within the op timeout plus slack.
      expect(Math.max(...settled.map((s) => s.ms))).toBeLessThan(1_500);
      expect(settled.some((s) => s.err instanceof FleetUnavailableError)).toBe(true);

      await waitFor('both degraded', () => a.degraded && b.degraded, 5_000);
      expect(await gauge()).toBe('1');
      // While down: every call fails fast (refused at once, not queued until Redis returns).
      for (const [what, p] of [
        ['claim', a.claim('during')],
        ['enqueue', a.enqueue({ callId: 'during', room: 'r', payload: {} }, 1_000)],
        ['take', b.take()],
        ['routeEvent', a.routeEvent(b.replicaId, { type: 'meeting.ended' })],
        ['firstSeen', b.firstSeen('evt-1', 60_000)],
        ['fleetStatus', a.fleetStatus()],
      ] as const) {
        const s = await settleMs(p);
        expect(s.err, what).toBeInstanceOf(FleetUnavailableError);
        expect(s.ms, what).toBeLessThan(500);
      }
      // Shared rate limits fall back to this replica's share, locally: still granted, no hang.
      const limiter = new RedisRateLimiter(a, undefined, () => 2);
      expect((await settleMs(limiter.acquire('default', 'call'))).ms).toBeLessThan(500);
      // finish() never throws (retried when Redis returns).
      await a.finish('never-registered');
      // The call b queued and nobody confirmed taking: b's dispatcher runs it locally.
      expect(b.takeOverUnconfirmed().map((c) => c.callId)).toEqual(['waiting-1']);

      await redis.restart();
      await waitFor('both re-formed', () => !a.degraded && !b.degraded, 15_000);
      expect(await gauge()).toBe('0');
      expect(
        flips
          .filter(([, d]) => d)
          .map(([w]) => w)
          .sort(),
      ).toEqual(['a', 'b']);
      expect(
        flips
          .filter(([, d]) => !d)
          .map(([w]) => w)
          .sort(),
      ).toEqual(['a', 'b']);
      // The fleet re-formed on an empty Redis: both replicas, a's live call re-published.
      const st = await waitFor(
        'replicas re-registered',
        async () => {
          const s = await b.fleetStatus();
          return s.replicas.filter((r) => r.alive).length === 2 ? s : undefined;
        },
        5_000,
      );
      expect(st.replicas.find((r) => r.id === a.replicaId)).toMatchObject({
        draining: true,
        calls: [{ callId: 'live-1', room: 'room-live-1' }],
      });
      expect((await b.ownerOfRoom('room-live-1'))?.replicaId).toBe(a.replicaId);
      // Claims won before the restart were put back with their answers: a late duplicate still dedupes.
      expect(await b.claim('before')).toMatchObject({ kind: 'duplicate', owner: a.replicaId, answer: { status: 'accepted', id: 'first' } });
      // Claims work again, exactly once.
      const claims = await Promise.all([a.claim('after'), b.claim('after')]);
      expect(claims.filter((c) => c.kind === 'won')).toHaveLength(1);
      // The queue works again (the consumer group was re-created).
      await a.setDraining(false);
      await b.enqueue({ callId: 'after-1', room: 'room-after-1', payload: {} }, 10_000);
      expect((await a.take())?.callId).toBe('after-1');
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  }, 60_000);

  it('a connection blip (Redis keeps its data): calls taken over locally are withdrawn from the fleet queue', async () => {
    const ns = namespace();
    const a = await startFleet(redis.url, ns, { capacity: 2 });
    const b = await startFleet(redis.url, ns, { capacity: 0 });
    try {
      let local: string[] = [];
      // What the dispatcher does: on degraded, run locally what nobody confirmed taking.
      b.on('degraded', (d) => {
        if (d) local = b.takeOverUnconfirmed().map((c) => c.callId);
      });
      await b.enqueue({ callId: 'blip-1', room: 'room-blip-1', payload: {} }, 10_000);
      const id = await b.redis.client('ID');
      await a.redis.client('KILL', 'ID', String(id));
      await waitFor('b degraded and back', () => local.length > 0 && !b.degraded, 10_000);
      expect(local).toEqual(['blip-1']);
      // b runs it itself; nobody else may: it is no longer waiting in the fleet queue.
      expect(await a.take()).toBeUndefined();
      expect(await a.queuedCount()).toBe(0);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('a Fleet started while Redis is down starts degraded and joins when Redis comes up', async () => {
    const ns = namespace();
    await redis.kill();
    const t0 = performance.now();
    const f = await startFleet(redis.url, ns);
    try {
      expect(performance.now() - t0).toBeLessThan(3_000);
      expect(f.degraded).toBe(true);
      await expect(f.claim('x')).rejects.toBeInstanceOf(FleetUnavailableError);
      await redis.restart();
      await waitFor('joined', () => !f.degraded, 15_000);
      expect((await f.claim('x')).kind).toBe('won');
      expect((await f.fleetStatus()).replicas.map((r) => r.id)).toEqual([f.replicaId]);
    } finally {
      await f.close();
    }
  }, 30_000);
});

export type { Fleet };
