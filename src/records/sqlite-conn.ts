/**
 * The SQLite write statements, on one better-sqlite3 connection. Used by the writer thread
 * (sqlite-writer.ts) and, for ':memory:' databases or when that thread is gone, in-process.
 */
import Database from 'better-sqlite3';
import { ROW_FIELDS, type CallRow } from './rows.js';
import { STEP_FIELDS, stepRowsOf, type StepRow } from './steps.js';
import type { RecordEvent } from './types.js';
import {
  assembleFunnel,
  countsSql,
  funnelWhere,
  medianSql,
  reachedByStep,
  type CountRow,
  type FunnelQuery,
  type FunnelStep,
  type MedianRow,
} from './funnel.js';
import { FUNNEL_INDEX, SPENT_INDEX } from './migrations.js';

const UPSERT = `INSERT INTO calls (${ROW_FIELDS.join(', ')}) VALUES (${ROW_FIELDS.map((f) => `@${f}`).join(', ')})
ON CONFLICT (id) DO UPDATE SET ${ROW_FIELDS.filter((f) => f !== 'id')
  .map((f) => `${f} = excluded.${f}`)
  .join(', ')}
WHERE calls.ended_at_ms IS NULL`;

const CLOSE_OPEN = `UPDATE calls SET state = 'ended', outcome = @outcome, detail = @detail, ended_at_ms = @now, updated_at_ms = @now,
  timeline = json_set(timeline, '$.ended', @now)
WHERE ended_at_ms IS NULL AND replica_id = @replica AND received_at_ms < @before AND id NOT IN (SELECT value FROM json_each(@keep))
RETURNING id, bot, bot_version, received_at_ms, ended_at_ms, outcome, events`;

const DELETE_OPEN = `DELETE FROM calls WHERE id = @id AND ended_at_ms IS NULL`;

/** A closed call's steps: written once (a closed call never changes). */
const INSERT_STEP = `INSERT INTO call_steps (${STEP_FIELDS.join(', ')}) VALUES (${STEP_FIELDS.map((f) => `@${f}`).join(', ')})
ON CONFLICT (call_id, step) DO NOTHING`;

const PRUNE = `DELETE FROM calls WHERE seq IN (SELECT seq FROM calls WHERE ended_at_ms IS NOT NULL AND ended_at_ms < @cutoff LIMIT @limit)
RETURNING id`;
const PRUNE_STEPS = `DELETE FROM call_steps WHERE call_id = ?`;

interface ClosedRow {
  id: string;
  bot: string;
  bot_version: string | null;
  received_at_ms: number;
  ended_at_ms: number;
  outcome: string;
  events: string;
}

/** The steps of calls closed by `closeOpen` (their event logs as they were left). */
function stepsOfClosed(rows: ClosedRow[]): StepRow[] {
  return rows.flatMap((r) => {
    let events: RecordEvent[] = [];
    try {
      events = JSON.parse(r.events) as RecordEvent[];
    } catch {
      /* no steps then */
    }
    return stepRowsOf({
      id: r.id,
      bot: r.bot,
      botVersion: r.bot_version,
      receivedAtMs: r.received_at_ms,
      endedAtMs: r.ended_at_ms,
      outcome: r.outcome,
      events: Array.isArray(events) ? events : [],
    });
  });
}

export type WriteRequest =
  | { op: 'write'; rows: CallRow[]; steps?: StepRow[] }
  | { op: 'closeOpen'; replica: string; outcome: string; detail: string; now: number; before: number; keep: string[] }
  | { op: 'deleteOpen'; id: string }
  | { op: 'prune'; cutoff: number; limit: number }
  /** A read, not a write: the funnel, run on this thread so that a long scan never stalls the event loop. */
  | { op: 'funnel'; query: FunnelQuery };

/** Rows changed, or a funnel's steps. */
export type WriteAnswer = number | FunnelStep[];

export class SqliteWriteConnection {
  private readonly upsert: Database.Statement;
  private readonly closeOpen: Database.Statement;
  private readonly prune: Database.Statement<[{ cutoff: number; limit: number }], { id: string }>;
  private readonly pruneSteps: Database.Statement<[string]>;
  private readonly deleteOpen: Database.Statement;
  private readonly insertStep: Database.Statement;
  private readonly writeAll: (rows: CallRow[], steps: StepRow[]) => void;
  private readonly closeAll: (req: Extract<WriteRequest, { op: 'closeOpen' }>) => number;
  private readonly pruneAll: (cutoff: number, limit: number) => number;

  constructor(readonly db: Database.Database) {
    this.upsert = db.prepare(UPSERT);
    this.closeOpen = db.prepare(CLOSE_OPEN);
    this.prune = db.prepare(PRUNE);
    this.pruneSteps = db.prepare(PRUNE_STEPS);
    this.deleteOpen = db.prepare(DELETE_OPEN);
    this.insertStep = db.prepare(INSERT_STEP);
    this.writeAll = db.transaction((rows: CallRow[], steps: StepRow[]) => {
      for (const r of rows) this.upsert.run(r);
      for (const s of steps) this.insertStep.run(s);
    });
    this.closeAll = db.transaction((req: Extract<WriteRequest, { op: 'closeOpen' }>) => {
      const { replica, outcome, detail, now, before } = req;
      const closed = this.closeOpen.all({ replica, outcome, detail, now, before, keep: JSON.stringify(req.keep) }) as ClosedRow[];
      for (const s of stepsOfClosed(closed)) this.insertStep.run(s);
      return closed.length;
    });
    this.pruneAll = db.transaction((cutoff: number, limit: number) => {
      const gone = this.prune.all({ cutoff, limit });
      for (const g of gone) this.pruneSteps.run(g.id);
      return gone.length;
    });
  }

  static open(file: string): SqliteWriteConnection {
    const db = new Database(file, { timeout: 2_000 });
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    return new SqliteWriteConnection(db);
  }

  /** The funnel of one bot (src/records/funnel.ts). */
  funnel(q: FunnelQuery): FunnelStep[] {
    const w = funnelWhere(q, () => '?');
    // Each query on its index, named (the planner may pick the other one); only when they are there (bench/funnel.ts measures without).
    const indexes = new Set(
      this.db
        .prepare<[string, string, string], { name: string }>('SELECT name FROM sqlite_master WHERE type = ? AND name IN (?, ?)')
        .all('index', FUNNEL_INDEX, SPENT_INDEX)
        .map((r) => r.name),
    );
    const counts = this.db.prepare<unknown[], CountRow>(countsSql(w.sql, indexes.has(FUNNEL_INDEX))).all(...w.params);
    const median = this.db.prepare<unknown[], MedianRow>(medianSql(w, () => '?', indexes.has(SPENT_INDEX)));
    const medians = new Map<string, number>();
    for (const [step, n] of reachedByStep(counts))
      medians.set(step, Number(median.get(...w.params, step, Math.ceil(n / 2) - 1)?.median ?? 0));
    return assembleFunnel(counts, medians);
  }

  /** Runs one request; answers the number of rows it changed (a funnel: its steps). Throws what SQLite throws. */
  run(req: WriteRequest): WriteAnswer {
    if (req.op === 'funnel') return this.funnel(req.query);
    if (req.op === 'write') {
      this.writeAll(req.rows, req.steps ?? []);
      return req.rows.length;
    }
    if (req.op === 'closeOpen') return this.closeAll(req);
    if (req.op === 'deleteOpen') return this.deleteOpen.run({ id: req.id }).changes;
    return this.pruneAll(req.cutoff, req.limit);
  }
}
