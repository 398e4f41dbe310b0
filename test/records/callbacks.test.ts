/**
 * The callback store in the records database (src/records/callbacks.ts) on a real SQLite file and a
 * real PostgreSQL: claims are exclusive (two replicas claiming at once never take the same row;
 * PostgreSQL: two stores on one database), oldest first, and the transitions are guarded.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/core/logger.js';
import { openRecordStore } from '../../src/records/open.js';
import type { RecordStore } from '../../src/records/store.js';
import type { CallbackStore } from '../../src/admission/callback-types.js';
import { startPostgres, type PgServer } from '../helpers/postgres.js';

const silent = createLogger({ level: 'silent' });
const dir = mkdtempSync(path.join(tmpdir(), 'patchbay-callbacks-'));
let server: PgServer;
const stores: RecordStore[] = [];
beforeAll(async () => {
  server = await startPostgres();
}, 60_000);
afterAll(async () => {
  for (const s of stores) await s.shutdown(0);
  await server?.remove();
  rmSync(dir, { recursive: true, force: true });
});

const open = async (o: { path?: string; databaseUrl?: string }, replicaId: string) => {
  const s = await openRecordStore({ ...o, storePii: false, logger: silent, replicaId });
  stores.push(s);
  return s.backend.callbacks;
};

async function exercise(a: CallbackStore, b: CallbackStore): Promise<void> {
  const t0 = 1_000_000;
  for (let i = 0; i < 12; i++)
    await a.add({ id: `c${i}`, number: `+1555000${1000 + i}`, to: '+15550001000', bot: 'x', reason: 'queue_full', requestedAtMs: t0 + i });
  await a.add({ id: 'c0', number: '+19999999999', to: '', bot: 'y', reason: 'again', requestedAtMs: 1 }); // the same id: unchanged
  // Two replicas claim at once, until nothing is pending: each row exactly once, oldest first per replica.
  const claimed: Record<string, string[]> = { a: [], b: [] };
  const drain = async (s: CallbackStore, who: 'a' | 'b') => {
    for (let r = await s.claim(who, t0); r; r = await s.claim(who, t0)) claimed[who]!.push(r.id);
  };
  await Promise.all([drain(a, 'a'), drain(b, 'b')]);
  const all = [...claimed.a!, ...claimed.b!].sort((x, y) => Number(x.slice(1)) - Number(y.slice(1)));
  expect(all).toEqual(Array.from({ length: 12 }, (_, i) => `c${i}`));
  for (const ids of Object.values(claimed)) expect(ids).toEqual([...ids].sort((x, y) => Number(x.slice(1)) - Number(y.slice(1))));
  const [mine, theirs] = [claimed.a![0]!, claimed.b![0] ?? claimed.a![1]!];
  const ownerOf = (id: string) => (claimed.a!.includes(id) ? 'a' : 'b');
  // Only the owner marks its claim dialling; then `a` is lost: its claims go back, its dialling ones end.
  expect(await a.dialing(mine, 'b', 'o1', t0)).toBe(false);
  expect(await a.dialing(mine, 'a', 'o1', t0)).toBe(true);
  const rec = await b.recover('a', t0);
  expect(rec.interrupted).toBe(1);
  expect(rec.requeued).toBe(claimed.a!.length - 1);
  const rows = new Map((await b.list()).map((r) => [r.id, r]));
  expect(rows.get('c0')).toMatchObject({ number: '+15550001000', bot: 'x', reason: 'queue_full', requestedAtMs: t0 });
  expect(rows.get(mine)).toMatchObject({ state: 'done', result: 'interrupted', outboundId: 'o1' });
  expect(rows.get(theirs)?.state).toBe(ownerOf(theirs) === 'a' ? 'pending' : 'claimed');
  // The oldest pending comes back first; done is final.
  const next = await b.claim('b', t0 + 1);
  expect(next?.id).toBe(claimed.a!.find((id) => id !== mine));
  await b.done(next!.id, 'answered', t0 + 2);
  await b.done(next!.id, 'failed', t0 + 3);
  expect((await b.list()).find((r) => r.id === next!.id)).toMatchObject({ state: 'done', result: 'answered' });
}

describe('callback store (records database)', () => {
  it('SQLite: exclusive claims, oldest first, guarded transitions, a lost owner recovered', async () => {
    const file = path.join(dir, 'calls.db');
    await exercise(await open({ path: file }, 'a'), await open({ path: file }, 'b'));
  });

  it('PostgreSQL: two stores on one database claim at once, each row once', async () => {
    await exercise(await open({ databaseUrl: server.url }, 'a'), await open({ databaseUrl: server.url }, 'b'));
  });
});
