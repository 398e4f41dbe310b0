/**
 * Call records: one row per ended call in an embedded SQLite database (better-sqlite3).
 *
 * - Opened once at start-up (`openCallRecords`): a file that is corrupt, not a database, from a newer
 *   schema, or that cannot be created/written fails start-up with a `RecordsError` naming the path,
 *   instead of a service that silently loses its records.
 * - Written off the call path: `save()` only queues the record; the queue is flushed in one
 *   transaction on the next turn of the event loop (WAL journal, synchronous=NORMAL: no fsync per call).
 * - Numbers are masked (all but the last 4 digits) and DTMF digits / transcripts are left out unless
 *   `storePii` is set. Whatever is stored, `list()` callers that show data mask numbers again.
 */
import { mkdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import type { CallIdentity } from '../core/call-identity.js';
import type { BotEvent } from '../core/timeline.js';
import type { CallRecord } from '../dispatch/call.js';
import type { Outcome } from '../core/outcome.js';
import { PatchbayError } from '../errors.js';
import { maskNumber } from '../logger.js';

/** 2: `trace_id`; 3: `path` (older files get the columns when opened). */
export const SCHEMA_VERSION = 3;
/** Most records one query returns. */
export const MAX_LIST_LIMIT = 500;
/** Records kept in memory when the database refuses writes (disk full, locked), retried on the next write. */
const MAX_PENDING = 10_000;
const SENSITIVE_BOT_EVENTS = new Set(['digits', 'transcript']);

/** A stored call, as `GET /calls` returns it. */
export interface StoredCall extends Pick<CallIdentity, 'id' | 'callId' | 'callDomain' | 'from' | 'to' | 'bot' | 'roomName'> {
  /** Insertion order; `before=<seq>` pages through older records. */
  seq: number;
  outcome: Outcome;
  detail: string | null;
  receivedAtMs: number;
  endedAtMs: number;
  durationMs: number;
  warmStart: boolean | null;
  workerPid: number | null;
  /** Epoch ms per stage. */
  timeline: Record<string, number>;
  botEvents: BotEvent[];
  /** The call's OpenTelemetry trace id; null when tracing was off. */
  traceId: string | null;
  /** `warm` (a warm room) or `cold` (a room per call); null for records older than schema 3. */
  path: 'warm' | 'cold' | null;
}

export interface CallQuery {
  /** 1..MAX_LIST_LIMIT. */
  limit: number;
  outcome?: Outcome;
  /** Only records with `seq < before` (the previous page's `nextBefore`). */
  before?: number;
}

export class RecordsError extends PatchbayError {
  override name = 'RecordsError';
  constructor(
    readonly path: string,
    message: string,
    opts: { cause?: unknown } = {},
  ) {
    super('records_unavailable', message, { retryable: false, ...opts });
  }
}

export interface CallRecordStoreOptions {
  /** File path, or ':memory:'. */
  path: string;
  storePii: boolean;
  logger: Logger;
  /** Write from a worker thread (default) or from the main thread (measurements). Always main for ':memory:'. */
  writerThread?: boolean;
}

interface Row {
  seq: number;
  id: string;
  call_id: string;
  call_domain: string;
  from_number: string;
  to_number: string;
  bot: string;
  room_name: string;
  outcome: string;
  detail: string | null;
  received_at_ms: number;
  ended_at_ms: number;
  warm_start: number | null;
  worker_pid: number | null;
  timeline: string;
  bot_events: string;
  trace_id: string | null;
  path: string | null;
}

const COLUMNS =
  'seq, id, call_id, call_domain, from_number, to_number, bot, room_name, outcome, detail, received_at_ms, ended_at_ms, warm_start, worker_pid, timeline, bot_events, trace_id, path';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS calls (
  seq            INTEGER PRIMARY KEY AUTOINCREMENT,
  id             TEXT    NOT NULL UNIQUE,
  call_id        TEXT    NOT NULL,
  call_domain    TEXT    NOT NULL,
  from_number    TEXT    NOT NULL,
  to_number      TEXT    NOT NULL,
  bot            TEXT    NOT NULL,
  room_name      TEXT    NOT NULL,
  outcome        TEXT    NOT NULL,
  detail         TEXT,
  received_at_ms INTEGER NOT NULL,
  ended_at_ms    INTEGER NOT NULL,
  warm_start     INTEGER,
  worker_pid     INTEGER,
  timeline       TEXT    NOT NULL,
  bot_events     TEXT    NOT NULL,
  trace_id       TEXT,
  path           TEXT
);
CREATE INDEX IF NOT EXISTS calls_outcome_seq ON calls (outcome, seq);
CREATE INDEX IF NOT EXISTS calls_call_id ON calls (call_id);
`;

/** Opens (creating when needed) and checks the database; throws `RecordsError` naming the path. */
export function openCallRecords(opts: CallRecordStoreOptions): CallRecordStore {
  return new CallRecordStore(opts);
}

type RowIn = Record<string, unknown>;

/**
 * The writer thread: its own connection to the same file, so inserts, commits and WAL checkpoints
 * (the fsyncs) never stall the event loop that answers webhooks. Plain JavaScript, run with
 * `eval`, so it works the same from src/ (tsx) and from a compiled dist/.
 */
const WRITER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { timeout: 2000 });
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
const insert = db.prepare(workerData.sql);
const write = db.transaction((rows) => { for (const r of rows) insert.run(r); });
parentPort.on('message', (m) => {
  if (m.type === 'close') { db.close(); parentPort.postMessage({ type: 'closed' }); parentPort.close(); return; }
  const t0 = performance.now();
  try {
    write(m.rows);
    parentPort.postMessage({ type: 'ack', seq: m.seq, tookMs: performance.now() - t0 });
  } catch (err) {
    parentPort.postMessage({ type: 'error', seq: m.seq, message: String((err && err.message) || err), code: err && err.code });
  }
});
parentPort.postMessage({ type: 'ready' });
`;

const INSERT_SQL = `INSERT OR REPLACE INTO calls (id, call_id, call_domain, from_number, to_number, bot, room_name, outcome, detail,
   received_at_ms, ended_at_ms, warm_start, worker_pid, timeline, bot_events, trace_id, path)
 VALUES (@id, @call_id, @call_domain, @from_number, @to_number, @bot, @room_name, @outcome, @detail,
   @received_at_ms, @ended_at_ms, @warm_start, @worker_pid, @timeline, @bot_events, @trace_id, @path)`;

type WriterMessage =
  | { type: 'ready' }
  | { type: 'closed' }
  | { type: 'ack'; seq: number; tookMs: number }
  | { type: 'error'; seq: number; message: string; code?: string };

export class CallRecordStore {
  readonly path: string;
  private readonly db: Database.Database;
  private readonly log: Logger;
  private readonly storePii: boolean;
  private readonly insert: Database.Statement;
  /** Prepared SELECTs of list(), by SQL text (four shapes). */
  private readonly selects = new Map<string, Database.Statement>();
  /** Rows not yet handed to the writer. */
  private pending: RowIn[] = [];
  /** Batches handed to the writer, by sequence number, until it answers. */
  private readonly inflight = new Map<number, RowIn[]>();
  private seq = 0;
  private readonly settledWaiters: Array<{ upTo: number; resolve: () => void }> = [];
  private writer: Worker | undefined;
  private flushScheduled: NodeJS.Immediate | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  private closed = false;
  /** Records written since start-up, and writes that failed (for status and tests). */
  written = 0;
  writeFailures = 0;

  constructor(opts: CallRecordStoreOptions) {
    this.path = opts.path;
    this.storePii = opts.storePii;
    this.log = opts.logger.child({ component: 'records' });
    const memory = opts.path === ':memory:';
    const where = memory ? ':memory:' : path.resolve(opts.path);
    if (!memory) {
      try {
        const st = statSync(where, { throwIfNoEntry: false });
        if (st && !st.isFile()) throw new Error('it is not a regular file');
        mkdirSync(path.dirname(where), { recursive: true });
      } catch (err) {
        throw new RecordsError(where, `call records: cannot use CALL_RECORDS_PATH=${where}: ${(err as Error).message}`, { cause: err });
      }
    }
    let db: Database.Database | undefined;
    try {
      db = new Database(where, { fileMustExist: false, timeout: 2_000 });
      // Reads the header: "file is not a database" shows up here.
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version > SCHEMA_VERSION) {
        throw new Error(`its schema version ${version} is newer than this build's ${SCHEMA_VERSION}`);
      }
      if (!memory) {
        const problems = (db.pragma('quick_check') as Array<{ quick_check: string }>).map((r) => r.quick_check).join('\n').split('\n');
        if (problems[0] !== 'ok') {
          throw new Error(`the file is corrupt (integrity check: ${problems.filter((l) => !l.startsWith('***')).slice(0, 2).join('; ')}${problems.length > 3 ? '; …' : ''})`);
        }
      }
      db.pragma('synchronous = NORMAL');
      // A write now, so a read-only file, directory or file system fails start-up, not the first call.
      db.exec('BEGIN IMMEDIATE');
      const have = new Set((db.pragma('table_info(calls)') as Array<{ name: string }>).map((c) => c.name));
      const missing = COLUMNS.split(', ').filter((c) => c !== 'trace_id' && c !== 'path' && !have.has(c));
      if (have.size > 0 && missing.length > 0) {
        throw new Error(`its calls table is not patchbay's (no ${missing.join(', ')}): schema version mismatch`);
      }
      // Version 1 → 2: the trace id column.
      if (have.size > 0 && !have.has('trace_id')) db.exec('ALTER TABLE calls ADD COLUMN trace_id TEXT');
      if (have.size > 0 && !have.has('path')) db.exec('ALTER TABLE calls ADD COLUMN path TEXT');
      db.exec(SCHEMA);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
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
      const e = err as Error & { code?: string };
      const code = e.code && e.code.startsWith('SQLITE_') ? ` (${e.code})` : '';
      const hint =
        e.code === 'SQLITE_NOTADB' || e.code === 'SQLITE_CORRUPT' || /corrupt|schema version/.test(e.message)
          ? '; move the file away (it is kept as is) or point CALL_RECORDS_PATH elsewhere'
          : '; check that the directory exists and is writable, or point CALL_RECORDS_PATH elsewhere';
      throw new RecordsError(where, `call records: cannot open ${where}: ${e.message}${code}${hint}`, { cause: err });
    }
    this.db = db;
    this.insert = db.prepare(INSERT_SQL);
    // An in-memory database lives in this connection only: it is written here (no fsync, cheap).
    if (!memory && opts.writerThread !== false) this.startWriter(where);
    const count = (db.prepare('SELECT count(*) AS n FROM calls').get() as { n: number }).n;
    this.log.info({ path: where, records: count, storePii: this.storePii, writerThread: this.writer !== undefined }, 'call records opened');
  }

  private startWriter(file: string): void {
    const w = new Worker(WRITER_SOURCE, {
      eval: true,
      workerData: { driver: createRequire(import.meta.url).resolve('better-sqlite3'), path: file, sql: INSERT_SQL },
      resourceLimits: { maxOldGenerationSizeMb: 64 },
    });
    w.unref();
    w.on('message', (m: WriterMessage) => this.onWriterMessage(m));
    const lost = (why: string) => {
      if (this.writer !== w) return;
      this.writer = undefined;
      if (!this.closing) this.log.error({ why }, 'call records: writer thread lost; writing from the main thread from now on');
      // Whatever it had not confirmed is written again (INSERT OR REPLACE: no duplicates).
      this.pending = [...[...this.inflight.values()].flat(), ...this.pending];
      this.inflight.clear();
      this.settle();
      if (this.pending.length > 0 && !this.closing) this.scheduleFlush();
    };
    w.on('error', (err) => lost(err.message));
    w.on('exit', (code) => lost(`exited with code ${code}`));
    this.writer = w;
  }

  private onWriterMessage(m: WriterMessage): void {
    if (m.type === 'ack') {
      const rows = this.inflight.get(m.seq);
      this.inflight.delete(m.seq);
      this.written += rows?.length ?? 0;
      if (m.tookMs > 200) this.log.warn({ tookMs: Math.round(m.tookMs), records: rows?.length }, 'call records: slow write');
    } else if (m.type === 'error') {
      const rows = this.inflight.get(m.seq) ?? [];
      this.inflight.delete(m.seq);
      this.failed(rows, m.message);
    }
    this.settle();
  }

  /** A batch that could not be written: keep it (bounded) and try again in a second. */
  private failed(rows: RowIn[], message: string): void {
    this.writeFailures++;
    this.pending = rows.concat(this.pending).slice(-MAX_PENDING);
    this.log.error({ err: message, unwritten: this.pending.length, path: this.path }, 'call records: write failed; will retry');
    if (!this.retryTimer && !this.closing) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.scheduleFlush();
      }, 1_000);
      this.retryTimer.unref();
    }
  }

  private settle(): void {
    const lowest = this.inflight.size === 0 ? Infinity : Math.min(...this.inflight.keys());
    for (let i = this.settledWaiters.length - 1; i >= 0; i--) {
      const w = this.settledWaiters[i]!;
      if (w.upTo < lowest) {
        this.settledWaiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  private scheduleFlush(): void {
    this.flushScheduled ??= setImmediate(() => {
      this.flushScheduled = undefined;
      this.send();
    });
  }

  /** Hands the queued rows to the writer thread (or writes them here when there is none). */
  private send(): void {
    if (this.pending.length === 0) return;
    const rows = this.pending;
    this.pending = [];
    if (this.writer) {
      const seq = ++this.seq;
      this.inflight.set(seq, rows);
      this.writer.postMessage({ type: 'write', seq, rows });
      return;
    }
    try {
      this.db.transaction((rs: RowIn[]) => {
        for (const r of rs) this.insert.run(r);
      })(rows);
      this.written += rows.length;
    } catch (err) {
      this.failed(rows, (err as Error).message);
    }
  }

  /** Queues an ended call; handed to the writer on the next turn of the event loop. Never throws. */
  save(record: CallRecord): void {
    if (this.closed || this.closing) {
      this.log.warn({ id: record.id, callId: record.callId }, 'call records closed; record not saved');
      return;
    }
    if (this.pending.length >= MAX_PENDING) {
      const dropped = this.pending.shift()!;
      this.log.error({ id: dropped.id, callId: dropped.call_id }, 'call records: too many unwritten records; dropping the oldest');
    }
    try {
      // A snapshot now: the dispatcher's object is not ours to keep.
      this.pending.push(this.toRow(record));
    } catch (err) {
      this.log.error({ err: (err as Error).message, id: record.id }, 'call records: record not saved');
      return;
    }
    this.scheduleFlush();
  }

  /** Resolves once everything saved so far has been written (or has failed and is queued for a retry). */
  flush(): Promise<void> {
    if (this.flushScheduled) {
      clearImmediate(this.flushScheduled);
      this.flushScheduled = undefined;
    }
    this.send();
    const upTo = this.seq;
    return new Promise((resolve) => {
      this.settledWaiters.push({ upTo, resolve });
      this.settle();
    });
  }

  /** Saved records not yet confirmed written. */
  get unwritten(): number {
    let n = this.pending.length;
    for (const rows of this.inflight.values()) n += rows.length;
    return n;
  }

  /** Newest first. `limit` is clamped to 1..MAX_LIST_LIMIT. */
  list(q: CallQuery): StoredCall[] {
    const limit = Math.max(1, Math.min(MAX_LIST_LIMIT, Math.trunc(q.limit)));
    const where: string[] = [];
    const params: Record<string, unknown> = { limit };
    if (q.outcome !== undefined) {
      where.push('outcome = @outcome');
      params.outcome = q.outcome;
    }
    if (q.before !== undefined) {
      where.push('seq < @before');
      params.before = q.before;
    }
    const sql = `SELECT ${COLUMNS} FROM calls ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT @limit`;
    let stmt = this.selects.get(sql);
    if (!stmt) this.selects.set(sql, (stmt = this.db.prepare(sql)));
    return (stmt.all(params) as Row[]).map((r) => this.fromRow(r));
  }

  count(outcome?: Outcome): number {
    const row = outcome
      ? this.db.prepare('SELECT count(*) AS n FROM calls WHERE outcome = ?').get(outcome)
      : this.db.prepare('SELECT count(*) AS n FROM calls').get();
    return (row as { n: number }).n;
  }

  /** Writes what is queued, stops the writer thread, then closes the database. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    clearTimeout(this.retryTimer);
    await this.flush();
    const w = this.writer;
    if (w) {
      this.writer = undefined;
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => void w.terminate().then(() => resolve()), 2_000);
        w.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        w.postMessage({ type: 'close' });
      });
    }
    // Last chance for anything that failed on the writer: once more from here.
    this.send();
    this.closed = true;
    if (this.pending.length > 0) {
      this.log.error({ unwritten: this.pending.length, ids: this.pending.slice(0, 20).map((r) => r.id) }, 'call records: closing with unwritten records');
    }
    this.db.close();
  }

  private toRow(r: CallRecord): RowIn {
    const pii = this.storePii;
    const t = r.timeline;
    const received = t.received ?? t.ended ?? Date.now();
    const ended = t.ended ?? Date.now();
    const botEvents = r.botEvents.map((e) =>
      pii || !SENSITIVE_BOT_EVENTS.has(e.kind) ? (e.kind === 'transfer' && !pii ? { ...e, value: maskNumber(e.value) ?? '' } : e) : { ...e, value: '[not stored]' },
    );
    return {
      id: r.id,
      call_id: r.callId,
      call_domain: r.callDomain,
      from_number: pii ? r.from : (maskNumber(r.from) ?? ''),
      to_number: pii ? r.to : (maskNumber(r.to) ?? ''),
      bot: r.bot,
      room_name: r.roomName,
      outcome: r.outcome ?? 'worker_crashed',
      detail: r.detail ?? null,
      received_at_ms: received,
      ended_at_ms: ended,
      warm_start: r.warmStart === undefined ? null : r.warmStart ? 1 : 0,
      worker_pid: r.workerPid ?? null,
      timeline: JSON.stringify(t),
      bot_events: JSON.stringify(botEvents),
      trace_id: r.traceId ?? null,
      path: r.path ?? null,
    };
  }

  private fromRow(r: Row): StoredCall {
    return {
      seq: r.seq,
      id: r.id,
      callId: r.call_id,
      callDomain: r.call_domain,
      from: r.from_number,
      to: r.to_number,
      bot: r.bot,
      roomName: r.room_name,
      outcome: r.outcome as Outcome,
      detail: r.detail,
      receivedAtMs: r.received_at_ms,
      endedAtMs: r.ended_at_ms,
      durationMs: Math.max(0, r.ended_at_ms - r.received_at_ms),
      warmStart: r.warm_start === null ? null : r.warm_start === 1,
      workerPid: r.worker_pid,
      timeline: safeJson(r.timeline, {}),
      botEvents: safeJson(r.bot_events, []),
      traceId: r.trace_id ?? null,
      path: r.path === 'warm' || r.path === 'cold' ? r.path : null,
    };
  }
}

function safeJson<T>(s: string, fallback: T): T {
  try {
    return JSON.parse(s) as T;
  } catch {
    return fallback;
  }
}
