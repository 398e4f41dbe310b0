/**
 * SQLite backend (better-sqlite3), the embedded default. Opened and migrated on the main thread
 * at start-up (a corrupt, foreign, newer or unwritable file fails start-up naming the path); reads
 * on the main thread (WAL: they never wait for the writer); writes on a writer thread
 * (sqlite-writer.ts) so commits and checkpoints never stall the event loop. ':memory:' writes
 * in-process (no fsync), as does a store whose writer thread died.
 */
import { mkdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { whereClause, type RecordsBackend } from './backend.js';
import { RecordsError } from './errors.js';
import { MIGRATIONS_TABLE_SQL, SQLITE_MIGRATIONS, SQLITE_V1_COLUMNS, pendingMigrations } from './migrations.js';
import { SELECT_COLUMNS, fromRow, type CallRow, type CallRowOut } from './rows.js';
import { SqliteWriteConnection, type WriteAnswer, type WriteRequest } from './sqlite-conn.js';
import type { FunnelQuery, FunnelStep } from './funnel.js';
import { sqliteCallbacks, type SqlCallbacks } from './callbacks.js';

const changesOf = (a: WriteAnswer): number => (typeof a === 'number' ? a : 0);
import type { FromWriter, ToWriter, WriterData } from './sqlite-writer.js';
import type { CallFilter, Page, StoredCall } from './types.js';
import type { StepRow } from './steps.js';
import { errorMessage, asError, errorCode } from '../core/errors.js';

export const SQLITE_SCHEMA_VERSION = Math.max(...SQLITE_MIGRATIONS.map((m) => m.version));

/** Opens, checks and migrates the file (synchronously: start-up), then starts the writer thread. */
export function openSqlite(opts: { path: string; logger: Logger; writerThread?: boolean }): SqliteBackend {
  const memory = opts.path === ':memory:';
  const where = memory ? ':memory:' : path.resolve(opts.path);
  if (!memory) {
    try {
      const st = statSync(where, { throwIfNoEntry: false });
      if (st && !st.isFile()) throw new Error('it is not a regular file');
      mkdirSync(path.dirname(where), { recursive: true });
    } catch (err) {
      throw new RecordsError(where, `call records: cannot use CALL_RECORDS_PATH=${where}: ${errorMessage(err)}`, { cause: err });
    }
  }
  let db: Database.Database | undefined;
  try {
    db = new Database(where, { fileMustExist: false, timeout: 2_000 });
    // Reads the header: "file is not a database" shows up here.
    const version = db.prepare<[], { user_version: number }>('PRAGMA user_version').get()?.user_version ?? 0;
    if (version > SQLITE_SCHEMA_VERSION)
      throw new Error(`its schema version ${version} is newer than this build's ${SQLITE_SCHEMA_VERSION}`);
    if (!memory) {
      const problems = db
        .prepare<[], { quick_check: string }>('PRAGMA quick_check')
        .all()
        .map((r) => r.quick_check)
        .join('\n')
        .split('\n');
      if (problems[0] !== 'ok') {
        throw new Error(
          `the file is corrupt (integrity check: ${problems
            .filter((l) => !l.startsWith('***'))
            .slice(0, 2)
            .join('; ')}${problems.length > 3 ? '; …' : ''})`,
        );
      }
    }
    db.pragma('synchronous = NORMAL');
    // A write now, so a read-only file, directory or file system fails start-up, not the first call.
    db.exec('BEGIN IMMEDIATE');
    migrate(db);
    db.exec('COMMIT');
    // Only now that the file is known to be ours: WAL changes its header.
    if (!memory) db.pragma('journal_mode = WAL');
  } catch (err) {
    try {
      if (db?.inTransaction) db.exec('ROLLBACK');
      db?.close();
    } catch {
      /* already failing */
    }
    const e = asError(err);
    const errCode = errorCode(err);
    const code = errCode?.startsWith('SQLITE_') ? ` (${errCode})` : '';
    if (errCode === 'SQLITE_CORRUPT' && !/corrupt/.test(e.message)) e.message = `the file is corrupt: ${e.message}`;
    const hint =
      errCode === 'SQLITE_NOTADB' || errCode === 'SQLITE_CORRUPT' || /corrupt|schema version|not patchbay/.test(e.message)
        ? '; move the file away (it is kept as is) or point CALL_RECORDS_PATH elsewhere'
        : '; check that the directory exists and is writable, or point CALL_RECORDS_PATH elsewhere';
    throw new RecordsError(where, `call records: cannot open ${where}: ${e.message}${code}${hint}`, { cause: err });
  }
  return new SqliteBackend(db, where, opts.logger, !memory && opts.writerThread !== false);
}

/** Applies what `schema_migrations` lacks (inside the caller's transaction). Earlier releases' v1 files are adopted. */
function migrate(db: Database.Database): void {
  const tables = new Set(
    db
      .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'")
      .all()
      .map((t) => t.name),
  );
  let applied: number[] = [];
  if (tables.has('schema_migrations')) {
    applied = db
      .prepare<[], { version: number }>('SELECT version FROM schema_migrations')
      .all()
      .map((r) => r.version);
  } else if (tables.has('calls')) {
    // No migrations table: a v1 file of an earlier release, or someone else's table.
    const have = new Set(
      db
        .prepare<[], { name: string }>('PRAGMA table_info(calls)')
        .all()
        .map((c) => c.name),
    );
    const missing = SQLITE_V1_COLUMNS.filter((c) => !have.has(c));
    if (missing.length > 0) throw new Error(`its calls table is not patchbay's (no ${missing.join(', ')}): schema version mismatch`);
    applied = [1];
  }
  const todo = pendingMigrations(applied, SQLITE_MIGRATIONS);
  db.exec(MIGRATIONS_TABLE_SQL);
  const mark = db.prepare('INSERT OR IGNORE INTO schema_migrations (version, name, applied_at_ms) VALUES (?, ?, ?)');
  for (const v of applied) mark.run(v, SQLITE_MIGRATIONS.find((m) => m.version === v)?.name ?? `v${v}`, Date.now());
  for (const m of todo) {
    db.exec(m.sql);
    mark.run(m.version, m.name, Date.now());
  }
  db.pragma(`user_version = ${SQLITE_SCHEMA_VERSION}`);
}

/**
 * The writer module next to this one: the compiled `.js` in dist/; from sources (tsx, vitest) the
 * `.ts` file, loaded through tsx's loader registered inside the thread first (a worker thread
 * does not inherit the parent's loader hooks on Node 20).
 */
function startWriterThread(data: WriterData): Worker {
  const here = import.meta.url;
  const opts = { workerData: data, resourceLimits: { maxOldGenerationSizeMb: 64 } };
  if (!here.endsWith('.ts')) return new Worker(new URL('./sqlite-writer.js', here), opts);
  // tsx's ESM API (its `import` export; require.resolve would pick the CommonJS one).
  const tsxApi = pathToFileURL(path.join(path.dirname(createRequire(here).resolve('tsx/package.json')), 'dist/esm/api/index.mjs')).href;
  const entry = new URL('./sqlite-writer.ts', here).href;
  const boot = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); })
    .catch((err) => require('node:worker_threads').parentPort.postMessage({ type: 'fatal', message: String(err && err.stack || err) }));`;
  return new Worker(boot, { ...opts, eval: true });
}

export class SqliteBackend implements RecordsBackend {
  readonly kind = 'sqlite' as const;
  roundTrips = 0;
  private readonly log: Logger;
  private readonly local: SqliteWriteConnection;
  private readonly selects = new Map<string, Database.Statement<unknown[], CallRowOut>>();
  private readonly counts = new Map<string, Database.Statement<unknown[], { n: number }>>();
  private writer: Worker | undefined;
  private ready: Promise<void> = Promise.resolve();
  private seq = 0;
  private readonly waiting = new Map<number, { resolve: (a: WriteAnswer) => void; reject: (e: Error) => void; req: WriteRequest }>();
  private closing = false;
  readonly callbacks: SqlCallbacks;

  constructor(
    private readonly db: Database.Database,
    readonly where: string,
    logger: Logger,
    thread: boolean,
  ) {
    this.log = logger;
    this.local = new SqliteWriteConnection(db);
    this.callbacks = sqliteCallbacks(db);
    if (thread) this.startWriter();
  }

  /** The thread, for tests that kill it. */
  get writerThread(): Worker | undefined {
    return this.writer;
  }

  private startWriter(): void {
    const w = startWriterThread({ path: this.where });
    w.unref();
    this.writer = w;
    this.ready = new Promise<void>((resolve) => {
      const onReady = (m: FromWriter) => {
        if (m.type === 'ready' || m.type === 'fatal') {
          w.off('message', onReady);
          if (m.type === 'fatal') lost(m.message);
          resolve();
        }
      };
      w.on('message', onReady);
      w.once('exit', () => resolve());
    });
    w.on('message', (m: FromWriter) => {
      if (m.type !== 'done' && m.type !== 'error') return;
      const p = this.waiting.get(m.seq);
      this.waiting.delete(m.seq);
      if (!p) return;
      if (m.type === 'done') {
        if (m.tookMs > 200 && p.req.op !== 'funnel')
          this.log.warn({ tookMs: Math.round(m.tookMs), op: p.req.op }, 'call records: slow write');
        p.resolve(m.result ?? m.changes);
      } else p.reject(Object.assign(new Error(m.message), m.code ? { code: m.code } : {}));
    });
    const lost = (why: string) => {
      if (this.writer !== w) return;
      this.writer = undefined;
      if (!this.closing) this.log.error({ why }, 'call records: writer thread lost; writing from the main thread from now on');
      // What it had not answered is run here (upserts and these updates are idempotent).
      const pending = [...this.waiting.values()];
      this.waiting.clear();
      for (const p of pending) this.runLocal(p.req).then(p.resolve, p.reject);
      void w.terminate();
    };
    w.on('error', (err) => lost(err.message));
    w.on('exit', (code) => lost(`exited with code ${code}`));
  }

  private async runLocal(req: WriteRequest): Promise<WriteAnswer> {
    return this.local.run(req);
  }

  private async run(req: WriteRequest): Promise<WriteAnswer> {
    this.roundTrips++;
    await this.ready;
    const w = this.writer;
    if (!w) return this.runLocal(req);
    const seq = ++this.seq;
    return new Promise<WriteAnswer>((resolve, reject) => {
      this.waiting.set(seq, { resolve, reject, req });
      w.postMessage({ type: 'run', seq, req } satisfies ToWriter);
    });
  }

  async write(rows: CallRow[], steps: StepRow[] = []): Promise<void> {
    if (rows.length > 0) await this.run({ op: 'write', rows, steps });
  }

  async closeOpen(replica: string, outcome: string, detail: string, now: number, before: number, keep: string[] = []): Promise<number> {
    return changesOf(await this.run({ op: 'closeOpen', replica, outcome, detail, now, before, keep }));
  }

  async deleteOpen(id: string): Promise<number> {
    return changesOf(await this.run({ op: 'deleteOpen', id }));
  }

  async pruneBatch(cutoff: number, limit: number): Promise<number> {
    return changesOf(await this.run({ op: 'prune', cutoff, limit }));
  }

  /** On the writer thread (the event loop never waits for the scan; writes queue behind it in memory). */
  async funnel(query: FunnelQuery): Promise<FunnelStep[]> {
    const a = await this.run({ op: 'funnel', query });
    return Array.isArray(a) ? a : [];
  }

  /** A prepared SELECT of rows, kept for the next query alike. */
  private stmt(sql: string): Database.Statement<unknown[], CallRowOut> {
    let s = this.selects.get(sql);
    if (!s) this.selects.set(sql, (s = this.db.prepare<unknown[], CallRowOut>(sql)));
    return s;
  }

  private countStmt(sql: string): Database.Statement<unknown[], { n: number }> {
    let s = this.counts.get(sql);
    if (!s) this.counts.set(sql, (s = this.db.prepare<unknown[], { n: number }>(sql)));
    return s;
  }

  async query(filter: CallFilter, page: Page): Promise<StoredCall[]> {
    const w = whereClause(filter, page, () => '?');
    this.roundTrips++;
    const rows = this.stmt(`SELECT ${SELECT_COLUMNS} FROM calls ${w.sql} ORDER BY seq DESC LIMIT ?`).all(...w.params, page.limit);
    return rows.map(fromRow);
  }

  async get(id: string): Promise<StoredCall | undefined> {
    this.roundTrips++;
    const row = this.stmt(`SELECT ${SELECT_COLUMNS} FROM calls WHERE id = ?`).get(id);
    return row ? fromRow(row) : undefined;
  }

  async count(filter: CallFilter = {}): Promise<number> {
    const w = whereClause(filter, undefined, () => '?');
    return this.countStmt(`SELECT count(*) AS n FROM calls ${w.sql}`).get(...w.params)?.n ?? 0;
  }

  async close(): Promise<void> {
    this.closing = true;
    const w = this.writer;
    if (w) {
      this.writer = undefined;
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => void w.terminate().then(() => resolve()), 2_000);
        w.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        w.postMessage({ type: 'close' } satisfies ToWriter);
      });
    }
    this.db.close();
  }
}
