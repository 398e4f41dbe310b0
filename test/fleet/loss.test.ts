/**
 * Replica loss on a real Redis with a real replica process killed by SIGKILL: one survivor (once)
 * gets the calls it was running (forwarded) to record as replica_lost; the calls it had taken but
 * not forwarded, and the calls it had queued, are served by survivors while the caller is held.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Fleet, ReplicaLost, TakenCall } from '../../src/fleet/index.js';
import { ROOT, waitFor } from '../helpers/ops.js';
import { namespace, startFleet } from '../helpers/fleet.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';

let redis: RedisServer;
const children: ChildProcess[] = [];
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await redis?.stop();
});

function replica(ns: string, env: Record<string, string>) {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'test/fleet/children/replica-child.ts'], {
    cwd: ROOT,
    env: { ...process.env, REDIS_URL: redis.url, FLEET_NS: ns, ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.push(proc);
  const lines: Array<Record<string, string>> = [];
  createInterface({ input: proc.stdout }).on('line', (l) => lines.push(JSON.parse(l) as Record<string, string>));
  return { proc, lines, send: (s: string) => proc.stdin.write(s + '\n') };
}

describe('replica loss', () => {
  it('SIGKILL of a replica with forwarded, held and queued calls: cleaned up once, held and queued callers served by survivors', async () => {
    const ns = namespace();
    const x = replica(ns, { CAPACITY: '3', ACK_PREFIX: 'fwd' });
    const xId = (await waitFor('child ready', () => x.lines.find((l) => l.ready))).ready!;
    const survivors: Fleet[] = [];
    const lost: ReplicaLost[] = [];
    const served: Array<{ by: string; t: TakenCall }> = [];
    let slots = 0;
    for (let i = 0; i < 2; i++) {
      const s = await startFleet(redis.url, ns, { capacity: 5, maxQueued: 8 });
      survivors.push(s);
      s.on('replica-lost', (l) => lost.push(l));
      s.startConsumer(
        () => slots > 0,
        (t) => {
          slots--;
          served.push({ by: s.replicaId, t });
        },
      );
    }
    try {
      // The child takes three calls (survivors have no slot yet): two forwarded (acked), one held.
      for (const id of ['fwd-1', 'fwd-2', 'held-1'])
        expect((await survivors[0]!.enqueue({ callId: id, room: `room-${id}`, payload: {} }, 10_000)).kind).toBe('queued');
      await waitFor('child took three', () => x.lines.filter((l) => l.taken).length === 3);
      await waitFor('child acked two', () => x.lines.filter((l) => l.acked).length === 2);
      // And queues one of its own that nobody has a slot for.
      x.send('enqueue queued-1 room-queued-1 10000');
      await waitFor('child queued', () => x.lines.find((l) => l.enqueued === 'queued-1'));
      const before = await survivors[1]!.fleetStatus();
      expect(
        before.replicas
          .find((r) => r.id === xId)
          ?.calls.map((c) => c.callId)
          .sort(),
      ).toEqual(['fwd-1', 'fwd-2', 'held-1']);
      expect(before.queued).toBe(1);

      const killedAt = Date.now();
      x.proc.kill('SIGKILL');
      slots = 10;
      await waitFor('a survivor reaped it', () => lost.length > 0, 15_000);
      const detectedMs = Date.now() - killedAt;
      // Loss detection is bounded by replicaLostMs + heartbeatMs (1000 + 200 here), with slack for a noisy machine.
      expect(detectedMs).toBeLessThan(6_000);
      await waitFor('held and queued callers served', () => served.length === 2, 10_000);
      // Give the other survivor time to (not) reap it too.
      await new Promise((r) => setTimeout(r, 1_000));
      expect(lost).toHaveLength(1);
      expect(lost[0]!.replicaId).toBe(xId);
      expect(lost[0]!.calls.sort((a, b) => a.callId.localeCompare(b.callId))).toEqual([
        { callId: 'fwd-1', room: 'room-fwd-1' },
        { callId: 'fwd-2', room: 'room-fwd-2' },
      ]);
      expect(lost[0]!.requeued).toEqual(['held-1']);
      expect(served.map((s) => s.t.callId).sort()).toEqual(['held-1', 'queued-1']);
      expect(served.find((s) => s.t.callId === 'held-1')?.t).toMatchObject({ room: 'room-held-1', attempt: 1 });
      expect(served.find((s) => s.t.callId === 'queued-1')?.t).toMatchObject({ owner: xId, attempt: 0 });
      // Nobody reaps it again; it is out of the fleet view; its capacity is gone.
      for (const s of survivors) expect(await s.reap(xId)).toBeUndefined();
      const after = await survivors[0]!.fleetStatus();
      expect(after.replicas.map((r) => r.id)).not.toContain(xId);
      expect(after.queued).toBe(0);
      console.log(`replica loss detected ${detectedMs} ms after SIGKILL (replicaLostMs 1000, heartbeatMs 200)`);
    } finally {
      await Promise.all(survivors.map((s) => s.close()));
    }
  }, 60_000);

  it('a replica cut off longer than replicaLostMs is reaped, and learns it when it gets back', async () => {
    const ns = namespace();
    const a = await startFleet(redis.url, ns);
    // b's own heartbeat is slow: its key is removed below as if it had expired while b was cut off.
    const b = await startFleet(redis.url, ns, { heartbeatMs: 20_000, replicaLostMs: 30_000 });
    try {
      await a.enqueue({ callId: 'p1', room: 'room-p1', payload: {} }, 10_000);
      expect((await b.take())?.callId).toBe('p1');
      await b.ack('p1');
      await a.redis.del(`${a.prefix}hb:${b.replicaId}`);
      const lost = await a.heartbeat();
      expect(lost).toEqual([{ replicaId: b.replicaId, calls: [{ callId: 'p1', room: 'room-p1' }], requeued: [] }]);
      let presumed = 0;
      b.on('presumed-lost', () => presumed++);
      await b.heartbeat();
      expect(presumed).toBe(1);
      await b.heartbeat();
      expect(presumed).toBe(1);
      // b is back in the fleet view with the call it still runs.
      const st = await a.fleetStatus();
      expect(st.replicas.find((r) => r.id === b.replicaId)).toMatchObject({ alive: true, calls: [{ callId: 'p1', room: 'room-p1' }] });
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('a clean exit is not a loss; a live replica is never reaped', async () => {
    const ns = namespace();
    const a = await startFleet(redis.url, ns);
    const b = await startFleet(redis.url, ns);
    const lost: ReplicaLost[] = [];
    a.on('replica-lost', (l) => lost.push(l));
    expect(await a.reap(b.replicaId)).toBeUndefined();
    await b.close();
    await new Promise((r) => setTimeout(r, 1_600));
    expect(lost).toEqual([]);
    expect((await a.fleetStatus()).replicas.map((r) => r.id)).toEqual([a.replicaId]);
    await a.close();
  });

  it('a call whose owner is gone expires unserved: the replica that finds it is told to record it (the owner would have been)', async () => {
    const ns = namespace();
    const owner = await startFleet(redis.url, ns);
    const b = await startFleet(redis.url, ns);
    try {
      await owner.enqueue({ callId: 'alive-1', room: 'room-alive-1', payload: {} }, 150);
      await new Promise((r) => setTimeout(r, 250));
      const orphaned: unknown[] = [];
      b.on('call-orphaned', (o) => orphaned.push(o));
      // The owner is alive: it hears of the expiry itself; nothing for b to record.
      const expired = new Promise<{ callId: string }>((r) => owner.once('call-expired', r));
      expect(await b.take()).toBeUndefined();
      expect(await expired).toEqual({ callId: 'alive-1' });
      expect(orphaned).toEqual([]);

      await owner.enqueue({ callId: 'gone-1', room: 'room-gone-1', payload: {} }, 150);
      await owner.close();
      await new Promise((r) => setTimeout(r, 250));
      expect(await b.take()).toBeUndefined();
      expect(orphaned).toEqual([{ callId: 'gone-1', room: 'room-gone-1', owner: owner.replicaId }]);
    } finally {
      await Promise.all([owner.close(), b.close()]);
    }
  });
});
