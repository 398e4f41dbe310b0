/**
 * The callback store in the records database (docs/outbound.md "Callbacks"; the contract and its
 * states in src/admission/callback-types.ts): one row per callback in `callbacks`, in SQLite or
 * PostgreSQL. Every transition is one statement guarded by the state it leaves, so it happens once;
 * a claim takes the oldest pending row in one UPDATE … RETURNING (PostgreSQL: FOR UPDATE SKIP LOCKED,
 * so replicas sharing the database never take the same row). The number is stored in clear: it is
 * what is dialled (CALL_RECORDS_STORE_PII does not apply; the row is the request itself).
 */
import type Database from 'better-sqlite3';
import type { CallbackMirror, CallbackRequest, CallbackRow, CallbackStore } from '../admission/callback-types.js';
import { CALLBACK_STATES, rowOf } from '../admission/callback-types.js';

/** Runs one statement (`$n` placeholders) and answers its rows. */
type Exec = (sql: string, params: unknown[]) => Promise<Array<Record<string, unknown>>>;

const COLUMNS = 'id, number, to_number, bot, reason, requested_at_ms, state, owner, outbound_id, result, updated_at_ms';

const sql = (skipLocked: boolean) => ({
  add: `INSERT INTO callbacks (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, 'pending', NULL, NULL, NULL, $7) ON CONFLICT (id) DO NOTHING`,
  claim: `UPDATE callbacks SET state = 'claimed', owner = $1, updated_at_ms = $2 WHERE id = (SELECT id FROM callbacks WHERE state = 'pending'
ORDER BY requested_at_ms, id LIMIT 1${skipLocked ? ' FOR UPDATE SKIP LOCKED' : ''}) AND state = 'pending' RETURNING ${COLUMNS}`,
  dialing: `UPDATE callbacks SET state = 'dialing', outbound_id = $3, updated_at_ms = $4 WHERE id = $1 AND owner = $2 AND state = 'claimed' RETURNING id`,
  done: `UPDATE callbacks SET state = 'done', result = $2, updated_at_ms = $3 WHERE id = $1 AND state <> 'done'`,
  release: `UPDATE callbacks SET state = 'pending', owner = NULL, updated_at_ms = $3 WHERE id = $1 AND owner = $2 AND state = 'claimed'`,
  requeue: `UPDATE callbacks SET state = 'pending', owner = NULL, updated_at_ms = $2 WHERE owner = $1 AND state = 'claimed' RETURNING id`,
  interrupt: `UPDATE callbacks SET state = 'done', result = 'interrupted', updated_at_ms = $2 WHERE owner = $1 AND state = 'dialing' RETURNING id`,
  put: `INSERT INTO callbacks (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO UPDATE SET
state = excluded.state, owner = excluded.owner, outbound_id = excluded.outbound_id, result = excluded.result, updated_at_ms = excluded.updated_at_ms`,
  list: `SELECT ${COLUMNS} FROM callbacks ORDER BY requested_at_ms, id`,
});

const str = (v: unknown): string => (typeof v === 'string' ? v : String(v));
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : str(v));

function fromRow(r: Record<string, unknown>): CallbackRow {
  const state = CALLBACK_STATES.find((s) => s === r.state) ?? 'done';
  return {
    id: str(r.id),
    number: str(r.number),
    to: str(r.to_number),
    bot: str(r.bot),
    reason: str(r.reason),
    requestedAtMs: Number(r.requested_at_ms),
    state,
    owner: strOrNull(r.owner),
    outboundId: strOrNull(r.outbound_id),
    result: strOrNull(r.result),
    updatedAtMs: Number(r.updated_at_ms),
  };
}

export class SqlCallbacks implements CallbackStore, CallbackMirror {
  private readonly q: ReturnType<typeof sql>;
  constructor(
    private readonly exec: Exec,
    dialect: 'sqlite' | 'postgres',
  ) {
    this.q = sql(dialect === 'postgres');
  }

  async add(r: CallbackRequest): Promise<void> {
    const row = rowOf(r, Date.now());
    await this.exec(this.q.add, [row.id, row.number, row.to, row.bot, row.reason, row.requestedAtMs, row.updatedAtMs]);
  }

  async claim(owner: string, nowMs: number): Promise<CallbackRow | undefined> {
    const rows = await this.exec(this.q.claim, [owner, nowMs]);
    return rows[0] ? fromRow(rows[0]) : undefined;
  }

  async dialing(id: string, owner: string, outboundId: string, nowMs: number): Promise<boolean> {
    return (await this.exec(this.q.dialing, [id, owner, outboundId, nowMs])).length > 0;
  }

  async done(id: string, result: string, nowMs: number): Promise<void> {
    await this.exec(this.q.done, [id, result, nowMs]);
  }

  async release(id: string, owner: string, nowMs: number): Promise<void> {
    await this.exec(this.q.release, [id, owner, nowMs]);
  }

  async recover(owner: string, nowMs: number): Promise<{ requeued: number; interrupted: number }> {
    const requeued = (await this.exec(this.q.requeue, [owner, nowMs])).length;
    const interrupted = (await this.exec(this.q.interrupt, [owner, nowMs])).length;
    return { requeued, interrupted };
  }

  /** Fleet mode's copy of a row the fleet queue moved (callback-mirror.ts): written as it is. */
  async put(r: CallbackRow): Promise<void> {
    const p = [r.id, r.number, r.to, r.bot, r.reason, r.requestedAtMs, r.state, r.owner, r.outboundId, r.result, r.updatedAtMs];
    await this.exec(this.q.put, p);
  }

  async list(): Promise<CallbackRow[]> {
    return (await this.exec(this.q.list, [])).map(fromRow);
  }
}

/** SQLite: each statement on the main thread's connection (rare, small writes; WAL lets the writer thread go on). */
export function sqliteCallbacks(db: Database.Database): SqlCallbacks {
  const cache = new Map<string, Database.Statement<[Record<string, unknown>], Record<string, unknown>>>();
  const exec: Exec = (text, params) => {
    let st = cache.get(text);
    if (!st) {
      // `$n` → the named parameter `@pn` (better-sqlite3 binds an object by name).
      st = db.prepare<[Record<string, unknown>], Record<string, unknown>>(text.replace(/\$(\d+)/g, '@p$1'));
      cache.set(text, st);
    }
    const named = Object.fromEntries(params.map((v, i) => [`p${i + 1}`, v]));
    return Promise.resolve(st.reader ? st.all(named) : (st.run(named), []));
  };
  return new SqlCallbacks(exec, 'sqlite');
}
