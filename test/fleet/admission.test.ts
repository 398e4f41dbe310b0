/**
 * Exactly-once admission across replicas: the same callId claimed at the same instant by three
 * Fleets — in one process and in three separate processes — has exactly one winner.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Fleet } from '../../src/fleet/index.js';
import { ROOT } from '../helpers/ops.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { namespace, startFleet } from '../helpers/fleet.js';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

describe('claim', () => {
  it('three fleets claiming 100 callIds at the same instant: exactly 100 winners, duplicates see the owner and its answer', async () => {
    const ns = namespace();
    const fleets = await Promise.all([0, 1, 2].map(() => startFleet(redis.url, ns)));
    try {
      const ids = Array.from({ length: 100 }, (_, i) => `call-${i}`);
      const results = await Promise.all(ids.map((id) => Promise.all(fleets.map((f) => f.claim(id)))));
      const winners = results.map((rs) => rs.filter((r) => r.kind === 'won').length);
      expect(winners.every((n) => n === 1)).toBe(true);
      expect(winners.reduce((a, b) => a + b, 0)).toBe(100);

      // The owner stores its answer; a duplicate elsewhere answers like the first.
      const i0 = results[0]!.findIndex((r) => r.kind === 'won');
      const owner = fleets[i0]!;
      const other = fleets[(i0 + 1) % 3]!;
      const pending = other.waitAnswer('call-0', 5_000);
      await new Promise((r) => setTimeout(r, 50));
      expect(await owner.setAnswer('call-0', { status: 'accepted', id: 'abc' })).toBe(true);
      const dup = await pending;
      expect(dup).toMatchObject({ kind: 'duplicate', owner: owner.replicaId, answer: { status: 'accepted', id: 'abc' } });
      // Only the owner may store the answer or release the claim.
      expect(await other.setAnswer('call-0', { status: 'forged' })).toBe(false);
      expect(await other.release('call-0')).toBe(false);
      expect(await owner.release('call-0')).toBe(true);
      // Released (the owner refused the call): a retry can be admitted again, once.
      const again = await Promise.all(fleets.map((f) => f.claim('call-0')));
      expect(again.filter((r) => r.kind === 'won')).toHaveLength(1);
    } finally {
      await Promise.all(fleets.map((f) => f.close()));
    }
  });

  it('a claim expires after its TTL', async () => {
    const ns = namespace();
    const a = await startFleet(redis.url, ns, { claimTtlMs: 150 });
    try {
      expect((await a.claim('x')).kind).toBe('won');
      expect((await a.claim('x')).kind).toBe('duplicate');
      await new Promise((r) => setTimeout(r, 300));
      expect((await a.claim('x')).kind).toBe('won');
    } finally {
      await a.close();
    }
  });
});

describe('claim from three processes', () => {
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  });

  it('the same 100 callIds claimed by three replica processes at the same instant: each won exactly once', async () => {
    const ns = namespace();
    const lines: Array<AsyncIterator<string>> = [];
    for (let i = 0; i < 3; i++) {
      const c = spawn(process.execPath, ['--import', 'tsx', 'test/fleet/children/claim-child.ts'], {
        cwd: ROOT,
        env: { ...process.env, REDIS_URL: redis.url, FLEET_NS: ns },
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      children.push(c);
      lines.push(createInterface({ input: c.stdout })[Symbol.asyncIterator]());
    }
    for (const it of lines) expect((await it.next()).value).toBe('ready');
    let total = 0;
    for (let round = 0; round < 5; round++) {
      const ids = Array.from({ length: 100 }, (_, i) => `r${round}-c${i}`);
      const at = Date.now() + 300;
      for (const c of children) c.stdin!.write(`go ${at} ${ids.join(' ')}\n`);
      const replies = await Promise.all(
        lines.map(async (it) => JSON.parse((await it.next()).value as string) as { replica: string; won: number[] }),
      );
      expect(new Set(replies.map((r) => r.replica)).size).toBe(3);
      for (let i = 0; i < ids.length; i++) expect(replies.reduce((n, r) => n + r.won[i]!, 0)).toBe(1);
      total += replies.reduce((n, r) => n + r.won.reduce((a, b) => a + b, 0), 0);
    }
    expect(total).toBe(500);
    for (const c of children) c.stdin!.write('quit\n');
    await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r)))));
    expect(children.map((c) => c.exitCode)).toEqual([0, 0, 0]);
  }, 60_000);
});

// Type-only use keeps the import honest for readers.
export type { Fleet };

describe('claim takeover and the fleet-wide bound', () => {
  it('a duplicate takes over a call whose first replica vanished before answering, not one it already queued', async () => {
    const ns = namespace();
    // a's own heartbeat is slow: its key is removed below as if it had expired.
    const a = await startFleet(redis.url, ns, { heartbeatMs: 20_000, replicaLostMs: 30_000 });
    const b = await startFleet(redis.url, ns);
    try {
      expect((await a.claim('t1')).kind).toBe('won');
      expect((await a.claim('t2')).kind).toBe('won');
      await a.enqueue({ callId: 't2', room: 'room-t2', payload: {} }, 10_000);
      // a is alive: b's duplicate waits for a's answer.
      expect((await b.claim('t1')).kind).toBe('duplicate');
      // a vanishes (its heartbeat key expires) without answering either call.
      await b.redis.del(`${b.prefix}hb:${a.replicaId}`);
      expect(await b.claim('t1')).toEqual({ kind: 'won', tookOverFrom: a.replicaId });
      // t2 is in the queue: it will be served, so it is not admitted a second time.
      expect((await b.claim('t2')).kind).toBe('duplicate');
      // And only once: a third replica sees b as the owner.
      const c = await startFleet(redis.url, ns);
      expect(await c.claim('t1')).toMatchObject({ kind: 'duplicate', owner: b.replicaId });
      await c.close();
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('reserve holds a place in the fleet-wide bound before the room is made; enqueue fills it', async () => {
    const ns = namespace();
    const a = await startFleet(redis.url, ns, { capacity: 1, maxQueued: 1 });
    try {
      // 1 free slot + 1 queued: two reservations, the third call is refused before any room is made.
      const r = await Promise.all(['v1', 'v2', 'v3'].map((id) => a.reserve(id, 5_000)));
      expect(r.map((x) => x.kind).sort()).toEqual(['fleet_full', 'reserved', 'reserved']);
      const held = ['v1', 'v2', 'v3'].filter((_, i) => r[i]!.kind === 'reserved');
      // A reservation is filled without a second check (the bound already counts it)…
      expect((await a.enqueue({ callId: held[0]!, room: 'room-a', payload: {} }, 5_000)).kind).toBe('queued');
      // …and given up by cancel (the room could not be made): its place is free again.
      expect(await a.cancel(held[1]!)).toBe(true);
      expect((await a.reserve('v4', 5_000)).kind).toBe('reserved');
      expect(await a.queuedCount()).toBe(2);
      expect((await a.take())?.callId).toBe(held[0]);
    } finally {
      await a.close();
    }
  });
});
