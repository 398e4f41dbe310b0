/**
 * The call-records store's own vocabulary: what it is given (`RecordInput`, `RecordPatch`,
 * `RecordEvent`) and what it answers (`StoredCall`). Plain data, independent of the dispatcher's
 * call object: an adapter (src/records/adapter.ts) turns the call's events into these.
 */
import type { RecordOutcome } from '../core/outcome.js';
import type { CallPath } from '../core/timeline.js';
import type { TurnLatencySummary } from '../core/turn-timing.js';

export type { RecordOutcome } from '../core/outcome.js';

/** Kinds of entries of a call's event log (open list: unknown kinds are kept as given). */
export type RecordEventKind =
  /** What the bot said (text) or played. */
  | 'say'
  | 'play'
  /** DTMF digits the caller pressed. */
  | 'digits'
  /** A final transcript of what the caller said. */
  | 'transcript'
  /** A transfer: `value` is the target; `transfer_result` says how it went. */
  | 'transfer'
  | 'transfer_result'
  | 'hangup'
  /** The bot marked a step (`call.step(name)`): `value` is its name. */
  | 'step'
  /** Errors and warnings Daily reported (call client events or domain webhooks). */
  | 'dialin_error'
  | 'dialin_warning'
  | 'error'
  | 'warning';

export interface RecordEvent {
  kind: RecordEventKind | (string & {});
  value: string;
  /** Epoch ms. */
  atMs: number;
}

/** One call as the store is given it (raw: the store masks per its PII rule before keeping it). */
export interface RecordInput {
  /** Our id for the call (primary key). */
  id: string;
  /** Daily's call id and domain (from the pinless webhook). */
  callId: string;
  callDomain: string;
  from: string;
  to: string;
  bot: string;
  roomName: string;
  /** The call's state name (`admitting`, `queued`, `active`, `ended`, …). */
  state: string;
  outcome?: RecordOutcome | undefined;
  detail?: string | undefined;
  /** Epoch ms per stage (`received`, `room_created`, …, `ended`). */
  timeline: Record<string, number | undefined>;
  /** true: a warm worker took the call; false: cold-started; undefined: no worker yet. */
  warmStart?: boolean | undefined;
  workerPid?: number | undefined;
  /** The replica that runs the call; the store fills in its own when absent. */
  replicaId?: string | undefined;
  traceId?: string | undefined;
  /** Which path the call took: a warm room, or a room of its own. */
  path?: CallPath | undefined;
  events?: RecordEvent[] | undefined;
  /** The bot's version (its declared `version`, else the hash of its files). */
  botVersion?: string | undefined;
}

/** What `update()` may change on an open record. Timeline entries are merged (first value per stage wins). */
export type RecordPatch = Partial<Omit<RecordInput, 'id' | 'events'>>;

/** A stored call, as `GET /calls` and `GET /calls/:id` answer it. */
export interface StoredCall {
  /** Insertion order (open order) within the database; pages go by it (`cursor`). */
  seq: number;
  id: string;
  callId: string;
  callDomain: string;
  from: string;
  to: string;
  bot: string;
  roomName: string;
  state: string;
  /** null while the call is live. */
  outcome: RecordOutcome | null;
  detail: string | null;
  receivedAtMs: number;
  /** null while the call is live. */
  endedAtMs: number | null;
  /** To the end, or to the last update while live. */
  durationMs: number;
  warmStart: boolean | null;
  workerPid: number | null;
  replicaId: string;
  traceId: string | null;
  path: CallPath | null;
  /** The bot's version; null for calls recorded before versions were. */
  botVersion: string | null;
  timeline: Record<string, number>;
  events: RecordEvent[];
  /**
   * The call's turn latency (the caller's end of speech → the first frame of the bot's answer):
   * turns timed, p50 and p95 in ms; null without timed turns. Read from its `turn_latency` events.
   */
  turnLatency: TurnLatencySummary | null;
}

export interface CallFilter {
  /** Last digits of the caller's or callee's number (1..15 digits). */
  number?: string;
  bot?: string;
  outcome?: RecordOutcome;
  /** `receivedAtMs` from (inclusive) … to (exclusive). */
  fromMs?: number;
  toMs?: number;
}

export interface Page {
  /** 1..MAX_LIST_LIMIT. */
  limit: number;
  /** Only records with `seq < cursor` (the previous page's `nextCursor`). */
  cursor?: number;
}

export interface RecordsStats {
  backend: 'sqlite' | 'postgres';
  /** Calls with changes not yet written (the bounded memory queue). */
  queueDepth: number;
  queueMax: number;
  /** Calls dropped from the queue since start-up because it was full. */
  dropped: number;
  /** Rows written (one per call per batch) and batches since start-up. */
  written: number;
  batches: number;
  writeFailures: number;
  /** Round trips to the database since start-up (statements or transactions sent). */
  roundTrips: number;
  /** Records currently open (live calls) in this store. */
  open: number;
  /** Records deleted by retention since start-up. */
  pruned: number;
  /** Whether the last write succeeded. */
  healthy: boolean;
}
