/**
 * PostgreSQL backend (`pg` Pool), used when DATABASE_URL is set: every replica writes to the same
 * database and reads the fleet's history from it. A batch of snapshots is one statement (one round
 * trip): `INSERT … SELECT FROM jsonb_to_recordset($1) ON CONFLICT (id) DO UPDATE … WHERE open`.
 * Migrations run at start-up under an advisory lock, so replicas starting together apply each once.
 */
import pg from 'pg';
import type { Logger } from 'pino';
import { whereClause, type RecordsBackend } from './backend.js';
import { RecordsError } from './errors.js';
import { MIGRATIONS_TABLE_SQL, POSTGRES_MIGRATIONS, pendingMigrations } from './migrations.js';
import { ROW_FIELDS, SELECT_COLUMNS, fromRow, type CallRow, type CallRowOut } from './rows.js';
import type { CallFilter, Page, RecordEvent, StoredCall } from './types.js';
import { STEP_FIELDS, stepRowsOf, type StepRow } from './steps.js';
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

interface ClosedRow {
  id: string;
  bot: string;
  bot_version: string | null;
  received_at_ms: string;
  ended_at_ms: string;
  outcome: string;
  events: RecordEvent[];
}
import { errorCode, errorMessage } from '../core/errors.js';
import { SqlCallbacks } from './callbacks.js';

/** Any number that is the same for every patchbay: the advisory lock migrations run under. */
const MIGRATION_LOCK = 0x70617463;

const RECORDSET_TYPES: Record<(typeof ROW_FIELDS)[number], string> = {
  id: 'text',
  call_id: 'text',
  call_domain: 'text',
  from_number: 'text',
  to_number: 'text',
  from_digits: 'text',
  to_digits: 'text',
  bot: 'text',
  room_name: 'text',
  state: 'text',
  outcome: 'text',
  detail: 'text',
  received_at_ms: 'bigint',
  ended_at_ms: 'bigint',
  updated_at_ms: 'bigint',
  warm_start: 'int',
  worker_pid: 'int',
  replica_id: 'text',
  trace_id: 'text',
  timeline: 'text',
  events: 'text',
  path: 'text',
  bot_version: 'text',
};
const SELECT_FROM_RECORDSET = ROW_FIELDS.map((f) =>
  f === 'timeline' || f === 'events'
    ? `x.${f}::jsonb`
    : f === 'warm_start'
      ? `CASE WHEN x.warm_start IS NULL THEN NULL ELSE x.warm_start = 1 END`
      : `x.${f}`,
).join(', ');
const UPSERT = `INSERT INTO calls (${ROW_FIELDS.join(', ')})
SELECT ${SELECT_FROM_RECORDSET} FROM jsonb_to_recordset($1::jsonb) AS x(${ROW_FIELDS.map((f) => `${f} ${RECORDSET_TYPES[f]}`).join(', ')})
ON CONFLICT (id) DO UPDATE SET ${ROW_FIELDS.filter((f) => f !== 'id')
  .map((f) => `${f} = excluded.${f}`)
  .join(', ')}
WHERE calls.ended_at_ms IS NULL`;

const STEP_TYPES: Record<(typeof STEP_FIELDS)[number], string> = {
  call_id: 'text',
  step: 'text',
  bot: 'text',
  bot_version: 'text',
  received_at_ms: 'bigint',
  entered_ms: 'bigint',
  spent_ms: 'bigint',
  visits: 'int',
  is_last: 'int',
  outcome: 'text',
  transfers: 'int',
};
/** A closed call's steps, written once ($n: a JSON array of `StepRow`s). */
const insertSteps = (n: number) => `INSERT INTO call_steps (${STEP_FIELDS.join(', ')})
SELECT ${STEP_FIELDS.map((f) => `s.${f}`).join(', ')}
FROM jsonb_to_recordset($${n}::jsonb) AS s(${STEP_FIELDS.map((f) => `${f} ${STEP_TYPES[f]}`).join(', ')})
ON CONFLICT (call_id, step) DO NOTHING`;
/** The calls and the steps of those closed in the batch: one statement, one round trip. */
const UPSERT_WITH_STEPS = `WITH c AS (${UPSERT} RETURNING 1) ${insertSteps(2)}`;

/** The URL without its password, for logs and errors. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparsable DATABASE_URL)';
  }
}

/** Applies the migrations this database lacks (one transaction, under the advisory lock). */
async function migrate(pool: pg.Pool, logger: Logger): Promise<void> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await c.query(MIGRATIONS_TABLE_SQL);
    const applied = (await c.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => Number(r.version));
    const todo = pendingMigrations(applied, POSTGRES_MIGRATIONS);
    for (const m of todo) {
      await c.query(m.sql);
      await c.query('INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES ($1, $2, $3)', [m.version, m.name, Date.now()]);
    }
    await c.query('COMMIT');
    if (todo.length > 0) logger.info({ applied: todo.map((m) => m.version) }, 'call records: PostgreSQL migrations applied');
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    c.release();
  }
}

/**
 * The server could not be reached (refused, timed out, not resolvable, starting or shutting down):
 * worth waiting for. Anything else (bad login, no such database, a newer schema) is a mistake to
 * report at start-up.
 */
export function isUnreachable(err: unknown): boolean {
  const inner = typeof err === 'object' && err !== null && 'errors' in err ? err.errors : undefined;
  if (Array.isArray(inner) && inner.length > 0) return inner.every(isUnreachable);
  const message = typeof err === 'object' && err !== null && 'message' in err && typeof err.message === 'string' ? err.message : '';
  return (
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EPIPE', '57P01', '57P02', '57P03'].includes(
      errorCode(err) ?? '',
    ) || /timeout exceeded when trying to connect|Connection terminated/i.test(message)
  );
}

/**
 * Opens the pool and migrates. A server that cannot be reached does not stop start-up (calls must
 * not wait for their records): the backend migrates on first use, and writes wait in the store's
 * queue until then. Any other failure stops start-up with a `RecordsError` naming the URL.
 */
export async function openPostgres(opts: {
  url: string;
  logger: Logger;
  poolMax?: number;
  connectTimeoutMs?: number;
}): Promise<PostgresBackend> {
  const where = redactUrl(opts.url);
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.poolMax ?? 4,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 5_000,
    idleTimeoutMillis: 30_000,
    // A statement that hangs (server stuck) fails rather than holding the writer forever.
    query_timeout: 30_000,
  });
  // An idle client losing its connection (server restart) must not crash the process.
  pool.on('error', (err) => opts.logger.warn({ err: err.message }, 'call records: PostgreSQL connection lost'));
  const backend = new PostgresBackend(pool, where, () => migrate(pool, opts.logger));
  try {
    await backend.ready();
  } catch (err) {
    if (isUnreachable(err)) {
      opts.logger.error(
        { where, err: errorMessage(err) },
        'call records: PostgreSQL unreachable at start-up; records wait in memory until it answers',
      );
      return backend;
    }
    await pool.end().catch(() => undefined);
    throw new RecordsError(where, `call records: cannot use DATABASE_URL=${where}: ${errorMessage(err)}`, { cause: err });
  }
  return backend;
}

export class PostgresBackend implements RecordsBackend {
  readonly kind = 'postgres' as const;
  roundTrips = 0;

  private migrated: Promise<void> | undefined;
  readonly callbacks = new SqlCallbacks(async (sql, params) => (await this.q<Record<string, unknown>>(sql, params)).rows, 'postgres');

  constructor(
    private readonly pool: pg.Pool,
    readonly where: string,
    private readonly migrate: () => Promise<void>,
  ) {}

  /** Resolves once the schema is migrated (tried again on each use until it is). */
  ready(): Promise<void> {
    this.migrated ??= this.migrate().catch((err: unknown) => {
      this.migrated = undefined;
      throw err;
    });
    return this.migrated;
  }

  private async q<R extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<pg.QueryResult<R>> {
    await this.ready();
    this.roundTrips++;
    return this.pool.query<R>(sql, params);
  }

  async write(rows: CallRow[], steps: StepRow[] = []): Promise<void> {
    if (rows.length === 0) return;
    if (steps.length === 0) await this.q(UPSERT, [JSON.stringify(rows)]);
    else await this.q(UPSERT_WITH_STEPS, [JSON.stringify(rows), JSON.stringify(steps)]);
  }

  /** Closes the rows and writes the steps their event logs name, in one transaction. */
  async closeOpen(replica: string, outcome: string, detail: string, now: number, before: number, keep: string[] = []): Promise<number> {
    await this.ready();
    this.roundTrips++;
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const r = await c.query<ClosedRow>(
        `UPDATE calls SET state = 'ended', outcome = $2, detail = $3, ended_at_ms = $4, updated_at_ms = $4,
           timeline = timeline || jsonb_build_object('ended', $4::bigint)
         WHERE ended_at_ms IS NULL AND replica_id = $1 AND received_at_ms < $5 AND NOT (id = ANY($6::text[]))
         RETURNING id, bot, bot_version, received_at_ms, ended_at_ms, outcome, events`,
        [replica, outcome, detail, now, before, keep],
      );
      const steps = r.rows.flatMap((x) =>
        stepRowsOf({
          id: x.id,
          bot: x.bot,
          botVersion: x.bot_version,
          receivedAtMs: Number(x.received_at_ms),
          endedAtMs: Number(x.ended_at_ms),
          outcome: x.outcome,
          events: Array.isArray(x.events) ? x.events : [],
        }),
      );
      if (steps.length > 0) await c.query(insertSteps(1), [JSON.stringify(steps)]);
      await c.query('COMMIT');
      return r.rowCount ?? 0;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
  }

  async deleteOpen(id: string): Promise<number> {
    const r = await this.q('DELETE FROM calls WHERE id = $1 AND ended_at_ms IS NULL', [id]);
    return r.rowCount ?? 0;
  }

  async pruneBatch(cutoff: number, limit: number): Promise<number> {
    const r = await this.q<{ n: string }>(
      `WITH gone AS (DELETE FROM calls WHERE seq IN (SELECT seq FROM calls WHERE ended_at_ms IS NOT NULL AND ended_at_ms < $1 LIMIT $2) RETURNING id),
         steps AS (DELETE FROM call_steps WHERE call_id IN (SELECT id FROM gone))
       SELECT count(*) AS n FROM gone`,
      [cutoff, limit],
    );
    return Number(r.rows[0]?.n ?? 0);
  }

  async query(filter: CallFilter, page: Page): Promise<StoredCall[]> {
    const w = whereClause(filter, page, (n) => `$${n}`);
    const r = await this.q<CallRowOut>(`SELECT ${SELECT_COLUMNS} FROM calls ${w.sql} ORDER BY seq DESC LIMIT $${w.params.length + 1}`, [
      ...w.params,
      page.limit,
    ]);
    return r.rows.map(fromRow);
  }

  async get(id: string): Promise<StoredCall | undefined> {
    const r = await this.q<CallRowOut>(`SELECT ${SELECT_COLUMNS} FROM calls WHERE id = $1`, [id]);
    return r.rows[0] ? fromRow(r.rows[0]) : undefined;
  }

  async count(filter: CallFilter = {}): Promise<number> {
    const w = whereClause(filter, undefined, (n) => `$${n}`);
    const r = await this.q<{ n: string }>(`SELECT count(*) AS n FROM calls ${w.sql}`, w.params);
    return Number(r.rows[0]?.n ?? 0);
  }

  async funnel(query: FunnelQuery): Promise<FunnelStep[]> {
    const ph = (n: number) => `$${n}`;
    const w = funnelWhere(query, ph);
    const counts = (await this.q<CountRow>(countsSql(w.sql), w.params)).rows;
    // Each step's median: a walk of call_steps_spent to its middle row (src/records/funnel.ts).
    const sql = medianSql(w, ph, false);
    const medians = new Map<string, number>();
    await Promise.all(
      [...reachedByStep(counts)].map(async ([step, n]) => {
        const r = await this.q<MedianRow>(sql, [...w.params, step, Math.ceil(n / 2) - 1]);
        medians.set(step, Number(r.rows[0]?.median ?? 0));
      }),
    );
    return assembleFunnel(counts, medians);
  }

  async close(): Promise<void> {
    // Ended clients may still hear from a server that stops right after: not worth a warning now.
    this.pool.removeAllListeners('error');
    this.pool.on('error', () => undefined);
    await this.pool.end();
  }
}
