/**
 * The SQLite write statements, on one better-sqlite3 connection. Used by the writer thread
 * (sqlite-writer.ts) and, for ':memory:' databases or when that thread is gone, in-process.
 */
import Database from 'better-sqlite3';
import { ROW_FIELDS, type CallRow } from './rows.js';

const UPSERT = `INSERT INTO calls (${ROW_FIELDS.join(', ')}) VALUES (${ROW_FIELDS.map((f) => `@${f}`).join(', ')})
ON CONFLICT (id) DO UPDATE SET ${ROW_FIELDS.filter((f) => f !== 'id')
  .map((f) => `${f} = excluded.${f}`)
  .join(', ')}
WHERE calls.ended_at_ms IS NULL`;

const CLOSE_OPEN = `UPDATE calls SET state = 'ended', outcome = @outcome, detail = @detail, ended_at_ms = @now, updated_at_ms = @now,
  timeline = json_set(timeline, '$.ended', @now)
WHERE ended_at_ms IS NULL AND replica_id = @replica AND received_at_ms < @before AND id NOT IN (SELECT value FROM json_each(@keep))`;

const DELETE_OPEN = `DELETE FROM calls WHERE id = @id AND ended_at_ms IS NULL`;

const PRUNE = `DELETE FROM calls WHERE seq IN (SELECT seq FROM calls WHERE ended_at_ms IS NOT NULL AND ended_at_ms < @cutoff LIMIT @limit)`;

export type WriteRequest =
  | { op: 'write'; rows: CallRow[] }
  | { op: 'closeOpen'; replica: string; outcome: string; detail: string; now: number; before: number; keep: string[] }
  | { op: 'prune'; cutoff: number; limit: number }
  | { op: 'deleteOpen'; id: string };

export class SqliteWriteConnection {
  private readonly upsert: Database.Statement;
  private readonly closeOpen: Database.Statement;
  private readonly prune: Database.Statement;
  private readonly deleteOpen: Database.Statement;
  private readonly writeAll: (rows: CallRow[]) => void;

  constructor(readonly db: Database.Database) {
    this.upsert = db.prepare(UPSERT);
    this.closeOpen = db.prepare(CLOSE_OPEN);
    this.prune = db.prepare(PRUNE);
    this.deleteOpen = db.prepare(DELETE_OPEN);
    this.writeAll = db.transaction((rows: CallRow[]) => {
      for (const r of rows) this.upsert.run(r);
    });
  }

  static open(file: string): SqliteWriteConnection {
    const db = new Database(file, { timeout: 2_000 });
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    return new SqliteWriteConnection(db);
  }

  /** Runs one request; answers the number of rows it changed. Throws what SQLite throws. */
  run(req: WriteRequest): number {
    if (req.op === 'write') {
      this.writeAll(req.rows);
      return req.rows.length;
    }
    if (req.op === 'closeOpen') {
      const { replica, outcome, detail, now, before } = req;
      return this.closeOpen.run({ replica, outcome, detail, now, before, keep: JSON.stringify(req.keep) }).changes;
    }
    if (req.op === 'deleteOpen') return this.deleteOpen.run({ id: req.id }).changes;
    return this.prune.run({ cutoff: req.cutoff, limit: req.limit }).changes;
  }
}
