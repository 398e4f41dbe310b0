/**
 * The migrations table (src/records/migrations.ts): a fresh database gets every migration once,
 * a second start applies nothing, a file of the previous release (v1, no migrations table) is
 * migrated keeping its rows, a database ahead of this build is refused untouched, and replicas
 * starting together on one PostgreSQL database apply each migration once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/core/logger.js';
import { POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS, pendingMigrations } from '../../src/records/migrations.js';
import { openRecordStore } from '../../src/records/open.js';
import { RecordsError } from '../../src/records/store.js';
import { startPostgres, type PgServer } from '../helpers/postgres.js';

const silent = createLogger({ level: 'silent' });
const dir = mkdtempSync(path.join(tmpdir(), 'patchbay-records-mig-'));
let server: PgServer;
beforeAll(async () => {
  server = await startPostgres();
}, 60_000);
afterAll(async () => {
  await server?.remove();
  rmSync(dir, { recursive: true, force: true });
});

const open = (o: { path?: string; databaseUrl?: string }) => openRecordStore({ ...o, storePii: false, logger: silent, replicaId: 'm' });

describe('pendingMigrations', () => {
  it('answers what is missing, in order, and refuses a database ahead of the build', () => {
    const known = [
      { version: 2, name: 'b', sql: '' },
      { version: 1, name: 'a', sql: '' },
      { version: 3, name: 'c', sql: '' },
    ];
    expect(pendingMigrations([], known).map((m) => m.version)).toEqual([1, 2, 3]);
    expect(pendingMigrations([1, 3], known).map((m) => m.version)).toEqual([2]);
    expect(pendingMigrations([1, 2, 3], known)).toEqual([]);
    expect(() => pendingMigrations([1, 4], known)).toThrow(/schema version 4 is newer than this build's 3/);
  });
});

describe('SQLite', () => {
  it('a fresh file gets every migration once; a second start applies nothing', async () => {
    const p = path.join(dir, 'fresh.db');
    await (await open({ path: p })).shutdown();
    await (await open({ path: p })).shutdown();
    const db = new Database(p, { readonly: true });
    try {
      const rows = db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as Array<{ version: number }>;
      expect(rows.map((r) => r.version)).toEqual(SQLITE_MIGRATIONS.map((m) => m.version));
      expect(db.pragma('user_version', { simple: true })).toBe(Math.max(...SQLITE_MIGRATIONS.map((m) => m.version)));
    } finally {
      db.close();
    }
  });

  it("a previous release's file (v1: one row per ended call, no migrations table) is migrated, its rows kept", async () => {
    const p = path.join(dir, 'v1.db');
    const v1 = new Database(p);
    v1.exec(SQLITE_MIGRATIONS[0]!.sql);
    v1.pragma('user_version = 1');
    v1.prepare(
      `INSERT INTO calls (id, call_id, call_domain, from_number, to_number, bot, room_name, outcome, detail, received_at_ms, ended_at_ms, warm_start, worker_pid, timeline, bot_events)
       VALUES ('old-1', 'c', 'd', '********4321', '********1000', 'default', 'r', 'completed', NULL, 1000, 3000, 1, 77, '{"received":1000,"ended":3000}', '[{"kind":"say","value":"Hi","atMs":1500}]')`,
    ).run();
    v1.close();
    const s = await open({ path: p });
    try {
      expect(await s.get('old-1')).toMatchObject({
        id: 'old-1',
        state: 'ended',
        outcome: 'completed',
        receivedAtMs: 1000,
        endedAtMs: 3000,
        durationMs: 2000,
        warmStart: true,
        workerPid: 77,
        events: [{ kind: 'say', value: 'Hi', atMs: 1500 }],
      });
      expect((await s.query({ number: '4321' }, { limit: 5 })).map((c) => c.id)).toEqual(['old-1']);
    } finally {
      await s.shutdown();
    }
  });
});

describe('PostgreSQL', () => {
  it('replicas starting together on a fresh database apply each migration once', async () => {
    const databaseUrl = await server.createDatabase('mig_together');
    const stores = await Promise.all([1, 2, 3].map(() => open({ databaseUrl })));
    await Promise.all(stores.map((s) => s.shutdown()));
    await (await open({ databaseUrl })).shutdown();
    const c = new pg.Client({ connectionString: databaseUrl });
    await c.connect();
    try {
      const r = await c.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
      expect(r.rows.map((x) => Number(x.version))).toEqual(POSTGRES_MIGRATIONS.map((m) => m.version));
    } finally {
      await c.end();
    }
  });

  it('a database migrated by a newer patchbay is refused, untouched, with the URL (not its password) in the error', async () => {
    const databaseUrl = await server.createDatabase('mig_newer');
    const c = new pg.Client({ connectionString: databaseUrl });
    await c.connect();
    try {
      await c.query('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_ms BIGINT NOT NULL)');
      await c.query("INSERT INTO schema_migrations VALUES (99, 'future', 0)");
      const withPassword = databaseUrl.replace('postgres@', 'postgres:s3cret-pw@');
      const err = await open({ databaseUrl: withPassword }).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err).toBeInstanceOf(RecordsError);
      expect(err!.message).toMatch(/schema version 99 is newer/);
      expect(err!.message).not.toContain('s3cret-pw');
      const tables = await c.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'");
      expect(tables.rows.map((r) => r.tablename)).toEqual(['schema_migrations']);
    } finally {
      await c.end();
    }
  });

  it('a database that does not exist fails start-up with a clear error', async () => {
    const err = await open({ databaseUrl: server.urlFor('no_such_db') }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(RecordsError);
    expect(err!.message).toMatch(
      /cannot use DATABASE_URL=postgres:\/\/postgres@127\.0\.0\.1:\d+\/no_such_db: database "no_such_db" does not exist/,
    );
  });

  it('a server that is down at start-up does not stop it: records wait, then migrations and writes happen when it answers', async () => {
    const databaseUrl = await server.createDatabase('mig_later');
    await server.stop();
    let s: Awaited<ReturnType<typeof open>> | undefined;
    try {
      s = await open({ databaseUrl });
      for (let i = 0; i < 5; i++) {
        s.open({
          id: `later-${i}`,
          callId: 'c',
          callDomain: 'd',
          from: '+15551230000',
          to: '+15550001000',
          bot: 'default',
          roomName: 'r',
          state: 'queued',
          timeline: { received: Date.now() },
        });
      }
      await s.flush();
      expect(s.stats()).toMatchObject({ queueDepth: 5, healthy: false });
    } finally {
      await server.start();
    }
    try {
      await expect.poll(() => s.stats().queueDepth, { timeout: 20_000, interval: 100 }).toBe(0);
      expect(await s.count()).toBe(5);
    } finally {
      await s.shutdown();
    }
  }, 60_000);
});
