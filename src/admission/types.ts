/** The dispatcher's admission answers and events (their own module: fleet-admission.ts uses them too). */
import type { Logger } from 'pino';
import type { Config } from '../core/config.js';
import type { RoomService } from '../daily/room-service.js';
import type { PinlessCall } from '../daily/types.js';
import type { AdmissionBudget } from './budget.js';
import type { AdmittedLog } from './admitted-log.js';
import type { ForwardFn } from '../workers/parent/fallback.js';
import type { WorkerPool } from '../workers/parent/pool.js';
import type { RouteResult } from './router.js';
import type { WarmSlots } from '../workers/parent/warm-slots.js';
import type { Call, CallRecord, CallTransition } from '../call/call.js';

/** What a webhook's 200 says about the call (a duplicate at another replica gets the owner's). */
export type AdmitAnswer = Pick<CallRecord, 'id' | 'callId' | 'roomUrl' | 'bot' | 'state'>;

export type AdmitResult =
  | { kind: 'accepted'; duplicate: boolean; record: AdmitAnswer }
  | {
      kind: 'busy';
      reason: 'draining' | 'queue_full' | 'overloaded' | 'room_failed';
      retryAfterSec: number;
      message: string;
      /** Fleet mode: the same call is being admitted by another replica (never offered a callback here). */
      inFlight?: boolean;
    }
  /** Daily refused the room for good (a 4xx that is not retryable): trying again fails the same way. */
  | { kind: 'refused'; reason: 'room_refused'; message: string };

export interface DispatcherEvents {
  /** Every call's state changes (relayed from `Call`). */
  transition: [CallTransition];
  /** Every call's other changes: timeline stage, bot event, dial-in error, outcome detail. */
  changed: [Call];
  /** Record views of the same: any change of a call not yet ended … */
  'call-updated': [CallRecord];
  /** … and its end (exactly once per call, in state `ended`). */
  'call-ended': [CallRecord];
}

/** Fleet mode's admission (src/fleet/admission.ts). */
export interface AdmissionDelegate {
  /** False while Redis is unreachable: the dispatcher admits per replica. */
  readonly active: boolean;
  readonly replicaId: string;
  admit(call: PinlessCall, receivedAtMs: number): Promise<AdmitResult>;
  /** The call's worker is reaped: its bot slot is free (its room is released after). */
  slotFreed(call: Call): void;
}

export interface DispatcherDeps {
  config: Config;
  logger: Logger;
  rooms: RoomService;
  pool: WorkerPool;
  /** Picks the bot for a call. */
  route(call: PinlessCall): string | RouteResult;
  /** Warm rooms (WARM_ROOMS): a call takes one when a bot slot is free at once, else a room of its own. */
  warm?: WarmSlots;
  /** pinlessCallUpdate from the parent, for FALLBACK_SIP_URI (fallback.ts). */
  forward?: ForwardFn;
  /** Admitted call ids that outlive a restart (admitted-log.ts). */
  admitted?: AdmittedLog;
  /** Admission by the hold budget (admission-budget.ts). */
  budget?: AdmissionBudget;
}
