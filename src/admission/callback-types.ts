/**
 * Callbacks instead of hold (docs/outbound.md "Callbacks"): what is stored of a callback and the
 * store's contract, implemented by the records database (src/records/callbacks.ts: SQLite and
 * PostgreSQL) and, in fleet mode, by the fleet queue in Redis (src/fleet/callbacks.ts).
 *
 *   pending ──claim──▶ claimed ──dialing──▶ dialing ──done──▶ done
 *      ▲                  │ release / its replica restarts or is lost (not dialled yet)
 *      └──────────────────┘
 *   dialing, and its replica restarts or is lost ──▶ done (result `interrupted`: never dialled twice)
 *
 * A claim is one atomic step (one UPDATE … RETURNING; one Lua script), so two replicas never take
 * the same callback; `dialing` is written before the worker's dial-out is granted.
 */

export const CALLBACK_STATES = ['pending', 'claimed', 'dialing', 'done'] as const;
export type CallbackState = (typeof CALLBACK_STATES)[number];

export interface CallbackRequest {
  /** patchbay's id of the call that asked (one callback per call). */
  id: string;
  /** The number to call back (E.164). */
  number: string;
  /** The number the caller dialled (its route picks the callback's bot). */
  to: string;
  /** The bot the call was routed to when it asked. */
  bot: string;
  /** Why it could not be served: `overloaded`, `queue_full`. */
  reason: string;
  requestedAtMs: number;
}

export interface CallbackRow extends CallbackRequest {
  state: CallbackState;
  /** The replica that claimed it (null while pending). */
  owner: string | null;
  /** The outbound call (GET /calls/:id) that placed it. */
  outboundId: string | null;
  /** How it ended: the outbound call's result, or `interrupted`. */
  result: string | null;
  updatedAtMs: number;
}

export interface CallbackStore {
  /** Stores a request as pending; a second add of the same id changes nothing. */
  add(r: CallbackRequest): Promise<void>;
  /** The oldest pending callback, now claimed by `owner`; undefined when none is pending. */
  claim(owner: string, nowMs: number): Promise<CallbackRow | undefined>;
  /** claimed (by `owner`) → dialing, with its outbound call; false when it is not `owner`'s claim any more. */
  dialing(id: string, owner: string, outboundId: string, nowMs: number): Promise<boolean>;
  /** → done with `result`. */
  done(id: string, result: string, nowMs: number): Promise<void>;
  /** claimed → pending (it could not be started). */
  release(id: string, owner: string, nowMs: number): Promise<void>;
  /** `owner` restarted or was lost: its claims go back to pending, its dialling ones end `interrupted`. */
  recover(owner: string, nowMs: number): Promise<{ requeued: number; interrupted: number }>;
  list(): Promise<CallbackRow[]>;
}

/** The records database's copy in fleet mode (callback-mirror.ts). */
export interface CallbackMirror {
  put(row: CallbackRow): Promise<void>;
}

/** A row's fields in the order of the SQL stores' columns (src/records/callbacks.ts). */
export function rowOf(r: CallbackRequest, nowMs: number): CallbackRow {
  return { ...r, state: 'pending', owner: null, outboundId: null, result: null, updatedAtMs: nowMs };
}
