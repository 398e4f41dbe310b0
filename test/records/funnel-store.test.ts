/**
 * The funnel's table (`call_steps`) as the records store keeps it, on SQLite and a real PostgreSQL
 * server: steps are written once, when a call closes (a call closed twice counts once; an open call
 * counts nothing); a call left open by a replica that died gets its steps from its event log when
 * it is closed at start-up (`interrupted`); retention deletes a call's steps with it; step names are
 * kept as they are when records mask caller data; two replicas writing to one PostgreSQL database
 * give one fleet-wide funnel.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/core/logger.js';
import { openRecordStore } from '../../src/records/open.js';
import type { RecordInput } from '../../src/records/types.js';
import { startPostgres, type PgServer } from '../helpers/postgres.js';

const silent = createLogger({ level: 'silent' });
const dir = mkdtempSync(path.join(tmpdir(), 'patchbay-funnel-store-'));
let pg: PgServer;
let n = 0;

beforeAll(async () => {
  pg = await startPostgres();
}, 60_000);
afterAll(async () => {
  await pg?.remove();
  rmSync(dir, { recursive: true, force: true });
});

type Kind = 'sqlite' | 'postgres';
async function freshDb(kind: Kind): Promise<{ path?: string; databaseUrl?: string }> {
  n++;
  return kind === 'sqlite' ? { path: path.join(dir, `db-${n}.sqlite`) } : { databaseUrl: await pg.createDatabase(`funnel_store_${n}`) };
}

const T = 1_790_000_000_000;
/** A call of bot `menu` that went through `steps` (1 s each), received at T + i s. */
function call(id: string, i: number, steps: string[], over: Partial<RecordInput> = {}): RecordInput {
  return {
    id,
    callId: `daily-${id}`,
    callDomain: 'dom',
    from: '+15557654321',
    to: '+15550001000',
    bot: 'menu',
    botVersion: 'v1',
    roomName: `room-${id}`,
    state: 'active',
    timeline: { received: T + i * 1_000 },
    events: steps.map((s, k) => ({ kind: 'step', value: s, atMs: T + i * 1_000 + 100 + k * 1_000 })),
    ...over,
  };
}
const closed = (r: RecordInput, outcome: RecordInput['outcome'] = 'completed', endMs?: number): RecordInput => ({
  ...r,
  state: 'ended',
  outcome,
  timeline: { ...r.timeline, ended: endMs ?? (r.events?.at(-1)?.atMs ?? T) + 500 },
});

describe.each<Kind>(['sqlite', 'postgres'])('call_steps on %s', (kind) => {
  const open = (db: { path?: string; databaseUrl?: string }, replicaId = 'replica-a', storePii = false) =>
    openRecordStore({ ...db, storePii, logger: silent, replicaId });

  it('steps are written once, when the call closes; masking keeps step names', async () => {
    const s = await open(await freshDb(kind));
    try {
      const a = call('a', 0, ['menu-1', 'pin-4321']);
      s.open(a);
      await s.flush();
      expect(await s.funnel({ bot: 'menu' })).toEqual([]); // open: nothing yet
      s.close(closed(a, 'caller_hangup'));
      await s.flush();
      s.close(closed(a, 'completed')); // again (a late snapshot): no second count, the first outcome stays
      await s.flush();
      const f = await s.funnel({ bot: 'menu' });
      expect(f).toEqual([
        { step: 'menu-1', reached: 1, last: {}, medianMs: 1_000, hangups: 0, transfers: 0 },
        { step: 'pin-4321', reached: 1, last: { caller_hangup: 1 }, medianMs: 500, hangups: 1, transfers: 0 },
      ]);
      expect((await s.get('a'))!.events.map((e) => e.value)).toEqual(['menu-1', 'pin-4321']);
    } finally {
      await s.shutdown();
    }
  });

  it('a call left open by a dead replica is closed at start-up with its steps; retention deletes them', async () => {
    const db = await freshDb(kind);
    const first = await open(db);
    first.open(call('x', 0, ['welcome', 'menu']));
    first.close(closed(call('old', 1, ['welcome']), 'completed', T + 2_000));
    await first.flush();
    // No shutdown: the replica "dies"; its next start-up closes what it left open.
    const again = await open(db);
    try {
      const f = await again.funnel({ bot: 'menu' });
      expect(f.map((x) => [x.step, x.reached, x.last])).toEqual([
        ['welcome', 2, { completed: 1 }],
        ['menu', 1, { interrupted: 1 }],
      ]);
      expect(await again.prune(T + 3_000)).toBe(1); // 'old' ended at T + 2 s
      expect((await again.funnel({ bot: 'menu' })).map((x) => [x.step, x.reached])).toEqual([
        ['welcome', 1],
        ['menu', 1],
      ]);
    } finally {
      await again.shutdown();
      await first.shutdown(0).catch(() => undefined);
    }
  });
});

describe('two replicas, one PostgreSQL database', () => {
  it('each replica writes its calls; either one answers the fleet-wide funnel', async () => {
    const db = await freshDb('postgres');
    const a = await openRecordStore({ ...db, storePii: false, logger: silent, replicaId: 'a' });
    const b = await openRecordStore({ ...db, storePii: false, logger: silent, replicaId: 'b' });
    try {
      a.close(closed(call('a1', 0, ['welcome', 'menu'])));
      b.close(closed(call('b1', 1, ['welcome']), 'caller_hangup'));
      b.close(closed(call('b2', 2, ['welcome', 'menu'], { botVersion: 'v2' })));
      await Promise.all([a.flush(), b.flush()]);
      for (const s of [a, b]) {
        expect((await s.funnel({ bot: 'menu' })).map((x) => [x.step, x.reached, x.last])).toEqual([
          ['welcome', 3, { caller_hangup: 1 }],
          ['menu', 2, { completed: 2 }],
        ]);
        expect((await s.funnel({ bot: 'menu', version: 'v2' })).map((x) => [x.step, x.reached])).toEqual([
          ['welcome', 1],
          ['menu', 1],
        ]);
      }
    } finally {
      await Promise.all([a.shutdown(), b.shutdown()]);
    }
  });
});
