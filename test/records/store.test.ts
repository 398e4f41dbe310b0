/**
 * The records store against both of its databases: a real PostgreSQL server started here (as a
 * non-root user, on a free port) and a SQLite file. Records across a restart, two replicas writing
 * to one database, a replica SIGKILLed mid-call (closed once), retention, query filters and paging,
 * PII masking; PostgreSQL stopped mid-traffic and restarted (nothing lost within the bound, drops
 * counted and logged beyond it).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/core/logger.js';
import { openRecordStore } from '../../src/records/open.js';
import type { RecordStore } from '../../src/records/store.js';
import type { RecordInput } from '../../src/records/types.js';
import { startPostgres, type PgServer } from '../helpers/postgres.js';

const silent = createLogger({ level: 'silent' });
const dir = mkdtempSync(path.join(tmpdir(), 'patchbay-records-store-'));
let pgServer: PgServer;
let dbCounter = 0;

beforeAll(async () => {
  pgServer = await startPostgres();
}, 60_000);
afterAll(async () => {
  await pgServer?.remove();
  rmSync(dir, { recursive: true, force: true });
});

type Kind = 'sqlite' | 'postgres';
/** A fresh database of that kind: a new SQLite file, or a new database on the test server. */
async function freshDb(kind: Kind): Promise<{ path?: string; databaseUrl?: string }> {
  const n = ++dbCounter;
  if (kind === 'sqlite') return { path: path.join(dir, `db-${n}.sqlite`) };
  return { databaseUrl: await pgServer.createDatabase(`records_${n}`) };
}

function call(id: string, over: Partial<RecordInput> = {}): RecordInput {
  return {
    id,
    callId: `daily-${id}`,
    callDomain: 'dom',
    from: '+15557654321',
    to: '+15550001000',
    bot: 'default',
    roomName: `room-${id}`,
    state: 'queued',
    timeline: { received: Date.now() },
    ...over,
  };
}

const ended = (id: string, over: Partial<RecordInput> = {}) =>
  call(id, {
    state: 'ended',
    outcome: 'completed',
    ...over,
    timeline: { ...(over.timeline ?? { received: Date.now() - 1000 }), ended: over.timeline?.ended ?? Date.now() },
  });

describe.each<Kind>(['sqlite', 'postgres'])('records store on %s', (kind) => {
  const open = (
    db: { path?: string; databaseUrl?: string },
    replicaId = 'replica-a',
    extra: Partial<Parameters<typeof openRecordStore>[0]> = {},
  ) => openRecordStore({ ...db, storePii: false, logger: silent, replicaId, ...extra });

  it('writes a call as it happens (open, stages, events, end) and reads it back after a restart', async () => {
    const db = await freshDb(kind);
    const a = await open(db);
    const t0 = Date.now();
    a.open(call('c1', { timeline: { received: t0 } }));
    a.update('c1', { state: 'active', warmStart: true, workerPid: 4242, timeline: { worker_assigned: t0 + 10 } });
    a.appendEvents('c1', [
      { kind: 'say', value: 'Welcome. Please enter your account number.', atMs: t0 + 20 },
      { kind: 'digits', value: '41111', atMs: t0 + 30 },
      { kind: 'say', value: 'You pressed 4 1 1 1, 1-2-3 and 4,5', atMs: t0 + 40 },
      { kind: 'transcript', value: 'my number is 555 1234', atMs: t0 + 50 },
      { kind: 'transfer', value: '+15551112222', atMs: t0 + 60 },
      { kind: 'dialin_warning', value: 'SIP leg to +15559998888 degraded', atMs: t0 + 70 },
    ]);
    await a.flush();
    // Live: already in the database, not yet ended.
    const live = await a.backend.get('c1');
    expect(live).toMatchObject({
      id: 'c1',
      state: 'active',
      endedAtMs: null,
      outcome: null,
      warmStart: true,
      workerPid: 4242,
      replicaId: 'replica-a',
    });
    expect(live!.events).toHaveLength(6);
    a.close(
      call('c1', {
        state: 'ended',
        outcome: 'caller_hangup',
        detail: 'caller +15557654321 hung up',
        timeline: { received: t0, ended: t0 + 100 },
      }),
    );
    await a.shutdown();

    const b = await open(db);
    try {
      const c = (await b.get('c1'))!;
      expect(c).toMatchObject({
        state: 'ended',
        outcome: 'caller_hangup',
        receivedAtMs: t0,
        endedAtMs: t0 + 100,
        durationMs: 100,
        from: '********4321',
      });
      expect(c.timeline).toEqual({ received: t0, worker_assigned: t0 + 10, ended: t0 + 100 });
      expect(c.detail).toBe('caller ********4321 hung up');
      expect(c.events.map((e) => [e.kind, e.value])).toEqual([
        ['say', 'Welcome. Please enter your account number.'],
        ['digits', '[not stored]'],
        ['say', 'You pressed • • • •, •-•-• and •,•'],
        ['transcript', '[not stored]'],
        ['transfer', '********2222'],
        ['dialin_warning', 'SIP leg to ********8888 degraded'],
      ]);
      expect(await b.markInterrupted()).toBe(0);
    } finally {
      await b.shutdown();
    }
    if (db.path) {
      const raw = readFileSync(db.path).toString('latin1') + readFileSync(`${db.path}-wal`, { flag: 'a+' }).toString('latin1');
      for (const secret of ['7654321', '41111', '4 1 1 1', '555 1234', '1112222']) expect(raw).not.toContain(secret);
    }
  });

  it('two replicas write to one database; each reads the whole history', async () => {
    const db = await freshDb(kind);
    const a = await open(db, 'replica-a');
    const b = await open(db, 'replica-b');
    try {
      for (let i = 0; i < 20; i++) {
        const s = i % 2 ? b : a;
        s.open(call(`r${i}`));
        s.close(ended(`r${i}`));
      }
      await Promise.all([a.flush(), b.flush()]);
      for (const s of [a, b]) {
        const all = await s.query({}, { limit: 100 });
        expect(all.map((c) => c.id).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `r${i}`).sort());
        expect(new Set(all.map((c) => c.replicaId))).toEqual(new Set(['replica-a', 'replica-b']));
      }
    } finally {
      await Promise.all([a.shutdown(), b.shutdown()]);
    }
  });

  it('a replica SIGKILLed mid-call: its record is closed once, as interrupted at its next start-up (or replica_lost by another)', async () => {
    for (const how of ['interrupted', 'replica_lost'] as const) {
      const db = await freshDb(kind);
      const env: NodeJS.ProcessEnv = { ...process.env, REPLICA_ID: 'replica-k' };
      delete env.CALL_RECORDS_PATH;
      delete env.DATABASE_URL;
      if (db.path) env.CALL_RECORDS_PATH = db.path;
      else env.DATABASE_URL = db.databaseUrl;
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/records/replica.ts'], {
        env,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const id = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d) => {
          out += d;
          const m = /open (\S+)\n/.exec(out);
          if (m) resolve(m[1]!);
        });
        child.once('exit', (code) => reject(new Error(`replica exited (${code}) before opening its call`)));
      });
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));

      // Another replica (fleet) or the same one restarting (alone).
      const s = await open(db, how === 'interrupted' ? 'replica-k' : 'replica-z');
      try {
        if (how === 'replica_lost') {
          expect((await s.get(id))!.endedAtMs).toBeNull();
          expect(await s.markInterrupted('replica-k')).toBe(1);
        }
        const c = (await s.get(id))!;
        expect(c).toMatchObject({ state: 'ended', outcome: how, replicaId: 'replica-k' });
        expect(c.endedAtMs).toBeGreaterThanOrEqual(c.receivedAtMs);
        expect(c.timeline.ended).toBe(c.endedAtMs);
        expect(c.events.map((e) => e.value)).toEqual(['Hello']);
        // Once: a second reconciliation finds nothing, and a late write of the old call changes nothing.
        expect(await s.markInterrupted('replica-k')).toBe(0);
        expect(await s.markInterrupted()).toBe(0);
        s.close(call(id, { state: 'ended', outcome: 'completed', replicaId: 'replica-k' }));
        await s.flush();
        expect((await s.query({}, { limit: 10 })).find((x) => x.id === id)).toMatchObject({ outcome: how });
      } finally {
        await s.shutdown();
      }
    }
  }, 60_000);

  it('retention prunes old records in small batches while writes go on', async () => {
    const db = await freshDb(kind);
    const s = await open(db);
    try {
      const old = Date.now() - 40 * 86_400_000;
      for (let i = 0; i < 1_200; i++) s.close(ended(`old-${i}`, { timeline: { received: old, ended: old + 1000 } }));
      for (let i = 0; i < 5; i++) s.close(ended(`new-${i}`));
      await s.flush();
      expect(await s.count()).toBe(1_205);
      const pruning = s.prune(Date.now() - 30 * 86_400_000);
      // Writers are not blocked meanwhile.
      s.open(call('during'));
      await s.flush();
      expect(await pruning).toBe(1_200);
      expect(await s.count()).toBe(6);
      expect((await s.query({}, { limit: 10 })).map((c) => c.id).sort()).toEqual(['during', 'new-0', 'new-1', 'new-2', 'new-3', 'new-4']);
      expect(s.stats().pruned).toBe(1_200);
    } finally {
      await s.shutdown();
    }
  }, 60_000);

  it('CALL_RECORDS_RETENTION_DAYS: the store prunes by itself shortly after start-up', async () => {
    const db = await freshDb(kind);
    const seed = await open(db);
    const old = Date.now() - 10 * 86_400_000;
    for (let i = 0; i < 30; i++) seed.close(ended(`aged-${i}`, { timeline: { received: old, ended: old + 1 } }));
    seed.close(ended('fresh'));
    await seed.shutdown();
    const s = await open(db, 'replica-a', { retentionDays: 7 });
    try {
      await expect.poll(() => s.stats().pruned, { timeout: 15_000, interval: 100 }).toBe(30);
      expect((await s.query({}, { limit: 50 })).map((c) => c.id)).toEqual(['fresh']);
    } finally {
      await s.shutdown();
    }
  });

  it('filters by last digits, bot, outcome and time range, and pages with a cursor', async () => {
    const db = await freshDb(kind);
    const s = await open(db);
    try {
      const t0 = Date.parse('2026-11-01T10:00:00Z');
      for (let i = 0; i < 12; i++) {
        s.close(
          ended(`q${i}`, {
            from: `+1555123${String(4000 + i)}`,
            bot: i % 3 === 0 ? 'menu' : 'default',
            outcome: i % 4 === 0 ? 'caller_hangup' : 'completed',
            timeline: { received: t0 + i * 60_000, ended: t0 + i * 60_000 + 5_000 },
          }),
        );
      }
      await s.flush();
      const ids = async (f: Parameters<RecordStore['query']>[0], limit = 100, cursor?: number) =>
        (await s.query(f, { limit, ...(cursor ? { cursor } : {}) })).map((c) => c.id);
      expect(await ids({ number: '4005' })).toEqual(['q5']);
      expect(await ids({ number: '05' })).toEqual(['q5']);
      expect(await ids({ number: '11' })).toEqual(['q11']);
      // The callee's number counts too (every call here went to the same one).
      expect(await ids({ number: '1000' })).toHaveLength(12);
      // Masked numbers keep their last 4 digits only: a longer search finds nothing (the route trims it to 4).
      expect(await ids({ number: '1234005' })).toEqual([]);
      expect(await ids({ bot: 'menu' })).toEqual(['q9', 'q6', 'q3', 'q0']);
      expect(await ids({ outcome: 'caller_hangup' })).toEqual(['q8', 'q4', 'q0']);
      expect(await ids({ bot: 'menu', outcome: 'completed' })).toEqual(['q9', 'q6', 'q3']);
      expect(await ids({ fromMs: t0 + 3 * 60_000, toMs: t0 + 6 * 60_000 })).toEqual(['q5', 'q4', 'q3']);
      const p1 = await s.query({ bot: 'default' }, { limit: 3 });
      expect(p1.map((c) => c.id)).toEqual(['q11', 'q10', 'q8']);
      const p2 = await ids({ bot: 'default' }, 3, p1.at(-1)!.seq);
      expect(p2).toEqual(['q7', 'q5', 'q4']);
      const seen = new Set<string>();
      let cursor: number | undefined;
      for (;;) {
        const page = await s.query({}, { limit: 5, ...(cursor ? { cursor } : {}) });
        page.forEach((c) => seen.add(c.id));
        if (page.length < 5) break;
        cursor = page.at(-1)!.seq;
      }
      expect(seen.size).toBe(12);
    } finally {
      await s.shutdown();
    }
  });
});

describe('PostgreSQL stopped mid-traffic, then restarted', () => {
  function capture() {
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger({
      level: 'info',
      destination: new Writable({
        write(chunk, _enc, cb) {
          for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
          cb();
        },
      }),
    });
    return { lines, logger };
  }

  it('keeps every record in memory (gauge) while the server is down and writes them when it returns', async () => {
    const databaseUrl = await pgServer.createDatabase('records_restart');
    const { logger } = capture();
    const s = await openRecordStore({ databaseUrl, storePii: false, logger, replicaId: 'r', queueMax: 1_000 });
    try {
      let n = 0;
      const traffic = async (count: number) => {
        for (let i = 0; i < count; i++, n++) {
          s.open(call(`t${n}`));
          s.update(`t${n}`, { state: 'active', timeline: { connected: Date.now() } });
          s.appendEvents(`t${n}`, [{ kind: 'say', value: 'Hello', atMs: Date.now() }]);
          if (n % 2 === 0) s.close(ended(`t${n}`));
          if (i % 10 === 0) await new Promise((r) => setTimeout(r, 5));
        }
      };
      await traffic(100);
      await s.flush();
      await pgServer.stop();
      const t = Date.now();
      await traffic(300);
      // Calls made while it is down never waited for it.
      expect(Date.now() - t).toBeLessThan(10_000);
      await s.flush(); // one attempt fails: still queued
      expect(s.stats().healthy).toBe(false);
      expect(s.stats().queueDepth).toBeGreaterThanOrEqual(300);
      await pgServer.start();
      await expect.poll(() => s.stats().queueDepth, { timeout: 20_000, interval: 100 }).toBe(0);
      expect(s.stats().dropped).toBe(0);
      expect(await s.count()).toBe(400);
      expect(await s.count({ outcome: 'completed' })).toBe(200);
      const one = (await s.get('t250'))!;
      expect(one.events.map((e) => e.value)).toEqual(['Hello']);
    } finally {
      await s.shutdown();
    }
  }, 90_000);

  it('beyond the bound: the oldest are dropped, counted, and a log line says how many', async () => {
    const databaseUrl = await pgServer.createDatabase('records_bound');
    const { logger, lines } = capture();
    const s = await openRecordStore({ databaseUrl, storePii: false, logger, replicaId: 'r', queueMax: 50 });
    try {
      await pgServer.stop();
      for (let i = 0; i < 80; i++) s.close(ended(`b${i}`));
      expect(s.stats().queueDepth).toBe(50);
      expect(s.stats().dropped).toBe(30);
      await s.flush();
      await pgServer.start();
      await expect.poll(() => s.stats().queueDepth, { timeout: 20_000, interval: 100 }).toBe(0);
      const kept = (await s.query({}, { limit: 100 })).map((c) => c.id);
      expect(kept.sort()).toEqual(Array.from({ length: 50 }, (_, i) => `b${i + 30}`).sort());
      const dropLines = () => lines.filter((l) => /dropped \d+ record/.test(String(l.msg)));
      await expect.poll(() => dropLines().reduce((sum, l) => sum + Number(l.dropped), 0), { timeout: 5_000 }).toBe(30);
      expect(dropLines()[0]).toMatchObject({ droppedTotal: 30, queueMax: 50, backend: 'postgres' });
    } finally {
      await s.shutdown();
    }
  }, 90_000);
});
