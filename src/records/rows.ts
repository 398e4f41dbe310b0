/**
 * A record as a database row (both dialects), and back. Rows are full snapshots: writing one is an
 * upsert that is idempotent and never reopens a closed call (see the `WHERE ended_at_ms IS NULL`).
 */
import type { CallPath } from '../core/timeline.js';
import type { RecordOutcome } from '../core/outcome.js';
import type { RecordEvent, StoredCall } from './types.js';
import { summarizeTurns, turnsOfEvents } from '../core/turn-timing.js';

/** A row as written (SQLite parameters; PostgreSQL reads the same object from JSON). */
export interface CallRow {
  id: string;
  call_id: string;
  call_domain: string;
  from_number: string;
  to_number: string;
  from_digits: string;
  to_digits: string;
  bot: string;
  room_name: string;
  state: string;
  outcome: RecordOutcome | null;
  detail: string | null;
  received_at_ms: number;
  ended_at_ms: number | null;
  updated_at_ms: number;
  /** 1, 0 or null. */
  warm_start: number | null;
  worker_pid: number | null;
  replica_id: string;
  trace_id: string | null;
  /** `warm` or `cold`; null for calls recorded before the column existed. */
  path: CallPath | null;
  /** The bot's version; null before it was recorded. */
  bot_version: string | null;
  /** JSON text. */
  timeline: string;
  /** JSON text. */
  events: string;
}

/** A row as read: SQLite gives JSON text and 0/1, PostgreSQL objects, booleans and BIGINT strings. */
export interface CallRowOut extends Omit<
  CallRow,
  'timeline' | 'events' | 'warm_start' | 'received_at_ms' | 'ended_at_ms' | 'updated_at_ms'
> {
  seq: number | string;
  received_at_ms: number | string;
  ended_at_ms: number | string | null;
  updated_at_ms: number | string;
  warm_start: number | boolean | null;
  timeline: string | Record<string, number>;
  events: string | RecordEvent[];
}

export const ROW_FIELDS = [
  'id',
  'call_id',
  'call_domain',
  'from_number',
  'to_number',
  'from_digits',
  'to_digits',
  'bot',
  'room_name',
  'state',
  'outcome',
  'detail',
  'received_at_ms',
  'ended_at_ms',
  'updated_at_ms',
  'warm_start',
  'worker_pid',
  'replica_id',
  'trace_id',
  'timeline',
  'events',
  'path',
  'bot_version',
] as const satisfies ReadonlyArray<keyof CallRow>;

export const SELECT_COLUMNS = `seq, ${ROW_FIELDS.join(', ')}`;

/** A JSON column: SQLite's text (parsed; the fallback when it does not parse), PostgreSQL's value as is. */
function json<T>(v: string | T | null, fallback: T): T {
  if (typeof v !== 'string') return v ?? fallback;
  try {
    const parsed: T = JSON.parse(v);
    return parsed;
  } catch {
    return fallback;
  }
}

/**
 * What a row shows (`StoredCall`), from its fields as numbers: for a stored row (`fromRow`) and for
 * the store's own snapshot of a live call (snapshot.ts `toStored`). `openUntilMs`: the end of an
 * open call's duration so far.
 */
export function storedCall(
  r: Omit<CallRow, 'timeline' | 'events'>,
  x: { seq: number; timeline: Record<string, number>; events: RecordEvent[]; openUntilMs: number },
): StoredCall {
  return {
    seq: x.seq,
    id: r.id,
    callId: r.call_id,
    callDomain: r.call_domain,
    from: r.from_number,
    to: r.to_number,
    bot: r.bot,
    roomName: r.room_name,
    state: r.state,
    outcome: r.outcome ?? null,
    detail: r.detail,
    receivedAtMs: r.received_at_ms,
    endedAtMs: r.ended_at_ms,
    durationMs: Math.max(0, (r.ended_at_ms ?? x.openUntilMs) - r.received_at_ms),
    warmStart: r.warm_start === null ? null : r.warm_start === 1,
    workerPid: r.worker_pid,
    replicaId: r.replica_id,
    traceId: r.trace_id,
    path: r.path ?? null,
    botVersion: r.bot_version ?? null,
    timeline: x.timeline,
    events: x.events,
    turnLatency: summarizeTurns(turnsOfEvents(x.events)),
  };
}

/** A row as read (either dialect's types) → `StoredCall`. */
export function fromRow(r: CallRowOut): StoredCall {
  const updated = Number(r.updated_at_ms);
  const row: Omit<CallRow, 'timeline' | 'events'> = {
    ...r,
    received_at_ms: Number(r.received_at_ms),
    ended_at_ms: r.ended_at_ms === null ? null : Number(r.ended_at_ms),
    updated_at_ms: updated,
    warm_start: r.warm_start === null ? null : r.warm_start === true || r.warm_start === 1 ? 1 : 0,
  };
  return storedCall(row, {
    seq: Number(r.seq),
    timeline: json<Record<string, number>>(r.timeline, {}),
    events: json<RecordEvent[]>(r.events, []),
    openUntilMs: updated,
  });
}
