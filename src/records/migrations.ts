/**
 * Versioned schema migrations, applied at start-up, recorded in a `schema_migrations` table
 * (version, name, applied_at_ms).
 *
 * Why a minimal table rather than a migration tool: the schema has a handful of migrations per
 * dialect and is owned by this service alone; a table of applied versions, each migration in its
 * own transaction (PostgreSQL: under an advisory lock, so replicas starting together apply it once)
 * does what is needed without another dependency, and is tested (test/records/migrations.test.ts).
 * Versions are per dialect: SQLite carries the v1 schema of earlier releases, PostgreSQL starts fresh.
 * A database with a version this build does not know (a newer patchbay) is refused, never altered.
 */

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The columns of the first (v1) SQLite schema, as earlier releases wrote it. */
export const SQLITE_V1_COLUMNS = [
  'seq',
  'id',
  'call_id',
  'call_domain',
  'from_number',
  'to_number',
  'bot',
  'room_name',
  'outcome',
  'detail',
  'received_at_ms',
  'ended_at_ms',
  'warm_start',
  'worker_pid',
  'timeline',
  'bot_events',
];

export const SQLITE_MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'calls (one row per ended call)',
    sql: `
CREATE TABLE IF NOT EXISTS calls (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, call_id TEXT NOT NULL, call_domain TEXT NOT NULL,
  from_number TEXT NOT NULL, to_number TEXT NOT NULL, bot TEXT NOT NULL, room_name TEXT NOT NULL, outcome TEXT NOT NULL,
  detail TEXT, received_at_ms INTEGER NOT NULL, ended_at_ms INTEGER NOT NULL, warm_start INTEGER, worker_pid INTEGER,
  timeline TEXT NOT NULL, bot_events TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_outcome_seq ON calls (outcome, seq);
CREATE INDEX IF NOT EXISTS calls_call_id ON calls (call_id);`,
  },
  {
    version: 2,
    name: 'calls written as they happen: open rows, state, replica, trace, event log, search digits',
    sql: `
CREATE TABLE calls_v2 (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, call_id TEXT NOT NULL, call_domain TEXT NOT NULL,
  from_number TEXT NOT NULL, to_number TEXT NOT NULL, from_digits TEXT NOT NULL, to_digits TEXT NOT NULL,
  bot TEXT NOT NULL, room_name TEXT NOT NULL, state TEXT NOT NULL, outcome TEXT, detail TEXT,
  received_at_ms INTEGER NOT NULL, ended_at_ms INTEGER, updated_at_ms INTEGER NOT NULL,
  warm_start INTEGER, worker_pid INTEGER, replica_id TEXT NOT NULL, trace_id TEXT,
  timeline TEXT NOT NULL, events TEXT NOT NULL
);
INSERT INTO calls_v2 (seq, id, call_id, call_domain, from_number, to_number, from_digits, to_digits, bot, room_name, state,
  outcome, detail, received_at_ms, ended_at_ms, updated_at_ms, warm_start, worker_pid, replica_id, trace_id, timeline, events)
SELECT seq, id, call_id, call_domain, from_number, to_number, substr(from_number, -4), substr(to_number, -4), bot, room_name, 'ended',
  outcome, detail, received_at_ms, ended_at_ms, ended_at_ms, warm_start, worker_pid, '', NULL, timeline, bot_events FROM calls;
DROP TABLE calls;
ALTER TABLE calls_v2 RENAME TO calls;
CREATE INDEX calls_outcome_seq ON calls (outcome, seq);
CREATE INDEX calls_bot_seq ON calls (bot, seq);
CREATE INDEX calls_received ON calls (received_at_ms);
CREATE INDEX calls_call_id ON calls (call_id);
CREATE INDEX calls_open ON calls (replica_id) WHERE ended_at_ms IS NULL;
CREATE INDEX calls_ended ON calls (ended_at_ms) WHERE ended_at_ms IS NOT NULL;`,
  },
];

/** v3 (SQLite) / v2 (PostgreSQL): which path a call took (warm room or a room of its own). */
const PATH_COLUMN = `ALTER TABLE calls ADD COLUMN path TEXT;`;
SQLITE_MIGRATIONS.push({ version: 3, name: 'calls.path (warm room or room per call)', sql: PATH_COLUMN });

export const POSTGRES_MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'calls written as they happen',
    sql: `
CREATE TABLE calls (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id TEXT NOT NULL UNIQUE, call_id TEXT NOT NULL, call_domain TEXT NOT NULL,
  from_number TEXT NOT NULL, to_number TEXT NOT NULL, from_digits TEXT NOT NULL, to_digits TEXT NOT NULL,
  bot TEXT NOT NULL, room_name TEXT NOT NULL, state TEXT NOT NULL, outcome TEXT, detail TEXT,
  received_at_ms BIGINT NOT NULL, ended_at_ms BIGINT, updated_at_ms BIGINT NOT NULL,
  warm_start BOOLEAN, worker_pid INTEGER, replica_id TEXT NOT NULL, trace_id TEXT,
  timeline JSONB NOT NULL, events JSONB NOT NULL
);
CREATE INDEX calls_outcome_seq ON calls (outcome, seq);
CREATE INDEX calls_bot_seq ON calls (bot, seq);
CREATE INDEX calls_received ON calls (received_at_ms);
CREATE INDEX calls_call_id ON calls (call_id);
CREATE INDEX calls_open ON calls (replica_id) WHERE ended_at_ms IS NULL;
CREATE INDEX calls_ended ON calls (ended_at_ms) WHERE ended_at_ms IS NOT NULL;`,
  },
];

export class MigrationError extends Error {
  override name = 'MigrationError';
}

/** The migrations still to apply, in order; throws when the database is ahead of this build. */
export function pendingMigrations(applied: readonly number[], known: readonly Migration[]): Migration[] {
  const latest = Math.max(0, ...known.map((m) => m.version));
  const ahead = applied.filter((v) => v > latest);
  if (ahead.length > 0) {
    throw new MigrationError(`its schema version ${Math.max(...ahead)} is newer than this build's ${latest}`);
  }
  const done = new Set(applied);
  return [...known].sort((a, b) => a.version - b.version).filter((m) => !done.has(m.version));
}

export const MIGRATIONS_TABLE_SQL = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_ms BIGINT NOT NULL)`;

POSTGRES_MIGRATIONS.push({ version: 2, name: 'calls.path (warm room or room per call)', sql: PATH_COLUMN });

/**
 * v4 (SQLite) / v3 (PostgreSQL): bot versions and steps (issue 25). `call_steps` holds one row per
 * call and step, written when the call's record closes (src/records/steps.ts), with the call's bot,
 * version, received time and outcome copied in, so that a funnel reads this table alone.
 * `call_steps_funnel` leads with (bot, received_at_ms) — a funnel is one bot over a time range,
 * with or without a version — and carries every column the counts read, so they are answered from
 * the index (an index-only scan on PostgreSQL: `INCLUDE`). `call_steps_spent` orders a bot's step
 * by time spent (with the filter's columns), so a median is a walk to the middle row, not a sort.
 * The primary key (call_id, step) makes writing a closed call's steps idempotent and finds them
 * when the call is pruned.
 */
export const FUNNEL_INDEX = 'call_steps_funnel';
export const SPENT_INDEX = 'call_steps_spent';
const STEPS_TABLE = (bigint: string) => `
ALTER TABLE calls ADD COLUMN bot_version TEXT;
CREATE TABLE call_steps (
  call_id TEXT NOT NULL, step TEXT NOT NULL, bot TEXT NOT NULL, bot_version TEXT NOT NULL,
  received_at_ms ${bigint} NOT NULL, entered_ms ${bigint} NOT NULL, spent_ms ${bigint} NOT NULL,
  visits INTEGER NOT NULL, is_last INTEGER NOT NULL, outcome TEXT NOT NULL, transfers INTEGER NOT NULL,
  PRIMARY KEY (call_id, step)
);`;
/** The funnel's indexes per dialect (bench/funnel.ts drops and recreates them to compare). */
export const FUNNEL_INDEX_SQL = {
  sqlite: `CREATE INDEX ${FUNNEL_INDEX} ON call_steps (bot, received_at_ms, bot_version, step, is_last, outcome, spent_ms, transfers, entered_ms);
CREATE INDEX ${SPENT_INDEX} ON call_steps (bot, step, spent_ms, received_at_ms, bot_version);`,
  postgres: `CREATE INDEX ${FUNNEL_INDEX} ON call_steps (bot, received_at_ms) INCLUDE (bot_version, step, is_last, outcome, spent_ms, transfers, entered_ms);
CREATE INDEX ${SPENT_INDEX} ON call_steps (bot, step, spent_ms) INCLUDE (received_at_ms, bot_version);`,
};
const STEPS_NAME = 'calls.bot_version; call_steps (funnels) and its index';
SQLITE_MIGRATIONS.push({ version: 4, name: STEPS_NAME, sql: STEPS_TABLE('INTEGER') + FUNNEL_INDEX_SQL.sqlite });
POSTGRES_MIGRATIONS.push({ version: 3, name: STEPS_NAME, sql: STEPS_TABLE('BIGINT') + FUNNEL_INDEX_SQL.postgres });

/**
 * v5 (SQLite) / v4 (PostgreSQL): callbacks instead of hold (src/records/callbacks.ts): one row per
 * callback, its state moved by guarded single statements; the pending index serves the claim.
 */
const CALLBACKS_TABLE = (bigint: string) => `
CREATE TABLE callbacks (
  id TEXT PRIMARY KEY, number TEXT NOT NULL, to_number TEXT NOT NULL, bot TEXT NOT NULL, reason TEXT NOT NULL,
  requested_at_ms ${bigint} NOT NULL, state TEXT NOT NULL, owner TEXT, outbound_id TEXT, result TEXT, updated_at_ms ${bigint} NOT NULL
);
CREATE INDEX callbacks_pending ON callbacks (state, requested_at_ms);
CREATE INDEX callbacks_owner ON callbacks (owner, state);`;
const CALLBACKS_NAME = 'callbacks (callbacks instead of hold)';
SQLITE_MIGRATIONS.push({ version: 5, name: CALLBACKS_NAME, sql: CALLBACKS_TABLE('INTEGER') });
POSTGRES_MIGRATIONS.push({ version: 4, name: CALLBACKS_NAME, sql: CALLBACKS_TABLE('BIGINT') });
