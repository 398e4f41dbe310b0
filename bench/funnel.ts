/**
 * Funnel queries (GET /analytics/funnel, src/records/funnel.ts) over 10^5 and 10^6 synthetic ended
 * calls, SQLite (a file; the query runs on its writer thread) and PostgreSQL (a throw-away server,
 * test/helpers/postgres.ts), with the funnel's indexes (`call_steps_funnel`, `call_steps_spent`) and
 * without them (the primary key only), side by side.
 *
 *   npx tsx bench/funnel.ts [--sizes 100000,1000000] [--only sqlite|postgres] [--runs 5]
 *
 * Synthetic calls: 5 bots × 3 versions, spread over 30 days; each call reaches `welcome` and
 * `main-menu`, then ends at `main-menu` (hang-up, 20%) or goes on to `transfer-sales` (50%),
 * `transfer-support` (20%) or `goodbye` (10%): ~3.8 step rows per call. The rows are generated in
 * SQL (the write path of a real call is measured by bench/records-write.ts). Queries, each through
 * the records store as the endpoint runs it: one bot over the last 7 days (all versions), one bot and
 * one version over the last 7 days, one bot over all 30 days. Reported: the median of --runs
 * (after one warm-up), ms.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { createLogger } from '../src/core/logger.js';
import { FUNNEL_INDEX, FUNNEL_INDEX_SQL, SPENT_INDEX } from '../src/records/migrations.js';
import { openRecordStore } from '../src/records/open.js';
import type { RecordStore } from '../src/records/store.js';
import { startPostgres, type PgServer } from '../test/helpers/postgres.js';
import { record } from './lib/common.js';

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
};
const SIZES = arg('sizes', '100000,1000000').split(',').map(Number);
const ONLY = arg('only', '');
const RUNS = Number(arg('runs', '5'));
const logger = createLogger({ level: 'warn' });
const DAY = 86_400_000;
const T_END = Date.UTC(2026, 11, 1);
const T0 = T_END - 30 * DAY;

/** The synthetic rows of calls 0..n-1, as one INSERT … SELECT per step (`i` is the call's number; `$N`, `$T0` inlined). */
function generateSql(kind: 'sqlite' | 'postgres', n: number): string[] {
  const series =
    kind === 'sqlite'
      ? `(WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < ${n - 1}) SELECT i FROM c) AS g`
      : `generate_series(0, ${n - 1}) AS g(i)`;
  const div = kind === 'sqlite' ? '/' : 'div';
  const intdiv = (a: string, b: string) => (kind === 'sqlite' ? `(${a}) ${div} (${b})` : `div(${a}, ${b})`);
  const span = 30 * DAY;
  // choice = ((i div 5) * 7) % 10, independent of the bot (i % 5): 0-4 sales, 5-6 support, 7 goodbye, 8-9 hang-up at the menu.
  const choice = `((${intdiv('i', '5')} * 7) % 10)`;
  const common = (step: string, entered: string, spent: string, isLast: string, outcome: string, transfers: string) => `
    INSERT INTO call_steps (call_id, step, bot, bot_version, received_at_ms, entered_ms, spent_ms, visits, is_last, outcome, transfers)
    SELECT 'c' || i, '${step}', 'bot-' || (i % 5), 'v' || (${intdiv('i', '7')} % 3), ${T0} + ${intdiv(`i * ${span}`, String(n))},
      ${entered}, ${spent}, 1, ${isLast}, ${outcome}, ${transfers} FROM ${series}`;
  const hangup = `CASE WHEN ${choice} >= 8 THEN 1 ELSE 0 END`;
  return [
    common('welcome', '900', '(i * 31) % 2000 + 500', '0', "'completed'", '0'),
    common('main-menu', '2500', '(i * 17) % 6000 + 200', hangup, `CASE WHEN ${choice} >= 8 THEN 'caller_hangup' ELSE 'completed' END`, '0'),
    `${common('transfer-sales', '6000', '(i * 13) % 3000 + 900', '1', "'completed'", '1')} WHERE ${choice} < 5`,
    `${common('transfer-support', '6000', '(i * 11) % 3000 + 900', '1', "'completed'", '1')} WHERE ${choice} IN (5, 6)`,
    `${common('goodbye', '14000', '(i * 7) % 800 + 300', '1', "'completed'", '0')} WHERE ${choice} = 7`,
  ];
}

const QUERIES = [
  { name: 'bot, last 7 days', q: { bot: 'bot-2', fromMs: T_END - 7 * DAY, toMs: T_END } },
  { name: 'bot + version, last 7 days', q: { bot: 'bot-2', version: 'v1', fromMs: T_END - 7 * DAY, toMs: T_END } },
  { name: 'bot, all 30 days', q: { bot: 'bot-2' } },
];

async function timeQueries(store: RecordStore): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const { name, q } of QUERIES) {
    await store.funnel(q); // warm-up (and a check that it answers)
    const times: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const t = performance.now();
      const steps = await store.funnel(q);
      times.push(performance.now() - t);
      if (steps.length !== 5) throw new Error(`${name}: ${steps.length} steps, expected 5`);
    }
    times.sort((a, b) => a - b);
    out[name] = Math.round(times[Math.floor(times.length / 2)]! * 10) / 10;
  }
  return out;
}

interface Db {
  /** Runs SQL on the database directly (population, index changes). */
  exec(sql: string): Promise<void>;
  plan(sql: string): Promise<string>;
  open(): Promise<RecordStore>;
  close(): Promise<void>;
}

function sqliteDb(dir: string, n: number): Db {
  const file = path.join(dir, `funnel-${n}.sqlite`);
  let db: Database.Database | undefined;
  const conn = () => (db ??= new Database(file));
  return {
    exec: async (sql) => void conn().exec(sql),
    plan: async (sql) =>
      conn()
        .prepare<[], { detail: string }>(`EXPLAIN QUERY PLAN ${sql}`)
        .all()
        .map((r) => r.detail)
        .join('; '),
    open: () => openRecordStore({ path: file, storePii: false, logger, replicaId: 'bench', reconcile: false }),
    close: async () => {
      db?.close();
    },
  };
}

async function postgresDb(server: PgServer, n: number): Promise<Db> {
  const url = await server.createDatabase(`funnel_${n}`);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return {
    exec: async (sql) => void (await client.query(sql)),
    plan: async (sql) =>
      (await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`)).rows.map((r) => r['QUERY PLAN'].trim()).join('; '),
    open: () => openRecordStore({ databaseUrl: url, storePii: false, logger, replicaId: 'bench', reconcile: false }),
    close: () => client.end(),
  };
}

async function benchOne(kind: 'sqlite' | 'postgres', db: Db, n: number): Promise<void> {
  // Migrate (creates call_steps and its index), then fill without the index and build it once.
  const migrated = await db.open();
  await migrated.shutdown(1_000);
  await db.exec(`DROP INDEX ${FUNNEL_INDEX}; DROP INDEX ${SPENT_INDEX};`);
  let t = performance.now();
  for (const sql of generateSql(kind, n)) await db.exec(sql);
  const fillMs = performance.now() - t;
  await db.exec(kind === 'sqlite' ? 'ANALYZE' : 'VACUUM ANALYZE call_steps');
  const since = `bot = 'bot-2' AND received_at_ms >= ${T_END - 7 * DAY}`;
  const sample = `SELECT step, count(*) FROM call_steps WHERE ${since} GROUP BY step`;
  const median = `SELECT spent_ms FROM call_steps WHERE ${since} AND step = 'main-menu' ORDER BY spent_ms LIMIT 1 OFFSET 1000`;
  const store = await db.open();
  try {
    const without = await timeQueries(store);
    const planWithout = `${await db.plan(sample)} | ${await db.plan(median)}`;
    t = performance.now();
    await db.exec(FUNNEL_INDEX_SQL[kind]);
    await db.exec(kind === 'sqlite' ? 'ANALYZE' : 'VACUUM ANALYZE call_steps');
    const indexMs = performance.now() - t;
    const withIndex = await timeQueries(store);
    const indexed = (sql: string, index: string) =>
      kind === 'sqlite' ? sql.replace('FROM call_steps', `FROM call_steps INDEXED BY ${index}`) : sql;
    const planWith = `${await db.plan(indexed(sample, FUNNEL_INDEX))} | ${await db.plan(indexed(median, SPENT_INDEX))}`;
    const result = {
      kind,
      calls: n,
      stepRows: Math.round(n * 3.8),
      fillMs: Math.round(fillMs),
      indexBuildMs: Math.round(indexMs),
      withoutIndexMs: without,
      withIndexMs: withIndex,
      planWithout,
      planWith,
      loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
    };
    record('funnel', result);
    console.log(JSON.stringify(result, null, 1));
  } finally {
    await store.shutdown(1_000);
    await db.close();
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'patchbay-bench-funnel-'));
  const server = ONLY === 'sqlite' ? undefined : await startPostgres();
  try {
    for (const n of SIZES) {
      if (ONLY !== 'postgres') await benchOne('sqlite', sqliteDb(dir, n), n);
      if (server) await benchOne('postgres', await postgresDb(server, n), n);
    }
  } finally {
    await server?.remove();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
