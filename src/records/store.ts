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
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import type { BotEvent, CallRecord } from '../dispatch/dispatcher.js';
import type { Outcome } from '../dispatch/outcome.js';
import { PatchbayError } from '../errors.js';
import { maskNumber } from '../logger.js';

export const SCHEMA_VERSION = 1;
/** Most records one query returns. */
export const MAX_LIST_LIMIT = 500;
/** Records kept in memory when the database refuses writes (disk full, locked), retried on the next write. */
const MAX_PENDING = 10_000;
const SENSITIVE_BOT_EVENTS = new Set(['digits', 'transcript']);

/** A stored call, as `GET /calls` returns it. */
export interface StoredCall {
  /** Insertion order; `before=<seq>` pages through older records. */
  seq: number;
  id: string;
  callId: string;
  callDomain: string;
  from: string;
  to: string;
  bot: string;
  roomName: string;
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
}

const COLUMNS =
  'seq, id, call_id, call_domain, from_number, to_number, bot, room_name, outcome, detail, received_at_ms, ended_at_ms, warm_start, worker_pid, timeline, bot_events';

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
  bot_events     TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_outcome_seq ON calls (outcome, seq);
CREATE INDEX IF NOT EXISTS calls_call_id ON calls (call_id);
`;

/** Opens (creating when needed) and checks the database; throws `RecordsError` naming the path. */
export function openCallRecords(opts: CallRecordStoreOptions): CallRecordStore {
  return new CallRecordStore(opts);
}

export class CallRecordStore {
  readonly path: string;
  private readonly db: Database.Database;
  private readonly log: Logger;
  private readonly storePii: boolean;
  private readonly insert: Database.Statement;
  private pending: CallRecord[] = [];
  private flushScheduled: NodeJS.Immediate | undefined;
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
        db.pragma('journal_mode = WAL');
      }
      db.pragma('synchronous = NORMAL');
      // A write now, so a read-only file, directory or file system fails start-up, not the first call.
      db.exec('BEGIN IMMEDIATE');
      const have = new Set((db.pragma('table_info(calls)') as Array<{ name: string }>).map((c) => c.name));
      const missing = COLUMNS.split(', ').filter((c) => !have.has(c));
      if (have.size > 0 && missing.length > 0) {
        throw new Error(`its calls table is not patchbay's (no ${missing.join(', ')}): schema version mismatch`);
      }
      db.exec(SCHEMA);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
      db.exec('COMMIT');
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
    this.insert = db.prepare(
      `INSERT OR REPLACE INTO calls (id, call_id, call_domain, from_number, to_number, bot, room_name, outcome, detail,
         received_at_ms, ended_at_ms, warm_start, worker_pid, timeline, bot_events)
       VALUES (@id, @call_id, @call_domain, @from_number, @to_number, @bot, @room_name, @outcome, @detail,
         @received_at_ms, @ended_at_ms, @warm_start, @worker_pid, @timeline, @bot_events)`,
    );
    const count = (db.prepare('SELECT count(*) AS n FROM calls').get() as { n: number }).n;
    this.log.info({ path: where, records: count, storePii: this.storePii }, 'call records opened');
  }

  /** Queues an ended call; written on the next turn of the event loop. Never throws. */
  save(record: CallRecord): void {
    if (this.closed) {
      this.log.warn({ id: record.id, callId: record.callId }, 'call records closed; record not saved');
      return;
    }
    if (this.pending.length >= MAX_PENDING) {
      const dropped = this.pending.shift()!;
      this.log.error({ id: dropped.id, callId: dropped.callId }, 'call records: too many unwritten records; dropping the oldest');
    }
    // A snapshot: the dispatcher's object is not ours to keep.
    this.pending.push(structuredClone(record));
    this.flushScheduled ??= setImmediate(() => {
      this.flushScheduled = undefined;
      this.flush();
    });
  }

  /** Writes queued records now (one transaction). Returns how many were written. */
  flush(): number {
    if (this.pending.length === 0) return 0;
    const batch = this.pending;
    this.pending = [];
    const t0 = performance.now();
    try {
      this.db.transaction((rs: CallRecord[]) => {
        for (const r of rs) this.insert.run(this.toRow(r));
      })(batch);
    } catch (err) {
      this.writeFailures++;
      // Keep them for the next write (bounded); say so loudly.
      this.pending = batch.concat(this.pending).slice(-MAX_PENDING);
      this.log.error({ err: (err as Error).message, unwritten: this.pending.length, path: this.path }, 'call records: write failed; will retry');
      return 0;
    }
    this.written += batch.length;
    const tookMs = performance.now() - t0;
    if (tookMs > 50) this.log.warn({ tookMs: Math.round(tookMs), records: batch.length }, 'call records: slow write');
    return batch.length;
  }

  get unwritten(): number {
    return this.pending.length;
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
    return (this.db.prepare(sql).all(params) as Row[]).map((r) => this.fromRow(r));
  }

  count(outcome?: Outcome): number {
    const row = outcome
      ? this.db.prepare('SELECT count(*) AS n FROM calls WHERE outcome = ?').get(outcome)
      : this.db.prepare('SELECT count(*) AS n FROM calls').get();
    return (row as { n: number }).n;
  }

  /** Flushes what is queued, then closes the database. Idempotent. */
  close(): void {
    if (this.closed) return;
    if (this.flushScheduled) clearImmediate(this.flushScheduled);
    this.flushScheduled = undefined;
    this.flush();
    this.closed = true;
    if (this.pending.length > 0) {
      this.log.error({ unwritten: this.pending.length, ids: this.pending.slice(0, 20).map((r) => r.id) }, 'call records: closing with unwritten records');
    }
    this.db.close();
  }

  private toRow(r: CallRecord): Record<string, unknown> {
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
