/**
 * A new call's room and bot token (or a warm slot's), its call object and its worker assignment.
 * A failure ends and finishes the call here and becomes the webhook's answer: 502 `room_refused`
 * for a permanent Daily 4xx (trying again fails the same way), else 503 + Retry-After.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { CallIdentity } from '../core/call-identity.js';
import type { Config } from '../core/config.js';
import { isRoomNameTaken, type RoomService } from '../daily/room-service.js';
import type { PinlessCall } from '../daily/types.js';
import { DailyApiError, errorMessage } from '../core/errors.js';
import type { CallAssignment } from '../workers/protocol.js';
import type { AdmitResult } from './types.js';
import type { AdmittedLog } from './admitted-log.js';
import type { Call } from '../call/call.js';
import type { CallPath } from '../core/timeline.js';
import { roomNameFor } from '../daily/leftovers.js';
import { cleanCallerText } from '../daily/sip.js';
import type { RouteResult } from './router.js';
import type { WarmSlot } from '../workers/parent/warm-slots.js';
import { ATTEMPT_MIN_MS, FALLBACK_RESERVE_MS } from '../workers/parent/fallback.js';

export interface Provisioned {
  call: Call;
  assignment: CallAssignment;
  slot?: WarmSlot;
}

export interface ProvisionDeps {
  config: Config;
  rooms: RoomService;
  admitted?: AdmittedLog | undefined;
  stop: AbortSignal;
  /** A warm slot taken for this call, if any. */
  slot: WarmSlot | undefined;
  route: { bot: string; config?: RouteResult['config'] };
  /** A new call object, live on this replica. */
  createCall(identity: CallIdentity, path: CallPath): Call;
  /** The call failed before it was queued: no longer live. */
  dropCall(call: Call): void;
  /**
   * Fleet mode: the room is named from Daily's callId, so that it can be created only once — Daily's
   * own room namespace is exactly-once's last resort when Redis cannot say (a duplicate is answered
   * 400 "already exists").
   */
  roomFromCallId?: boolean;
}

/** The room of Daily's `callId` in fleet mode: the same name at every replica. */
export function callRoomName(callId: string): string {
  return `pbc-${createHash('sha256').update(callId).digest('hex').slice(0, 40)}`;
}

/** The room's `exp`: beyond the longest the call can wait and last. */
function roomExpSec(config: Config): number {
  const c = config.call;
  return Math.ceil((Date.now() + c.maxCallMs + config.admission.queueTimeoutMs + c.dialinReadyTimeoutMs + c.joinTimeoutMs) / 1000) + 300;
}

export async function provisionCall(pinless: PinlessCall, receivedAtMs: number, d: ProvisionDeps): Promise<Provisioned | AdmitResult> {
  const { config, slot } = d;
  const roomName = slot?.room.roomName ?? (d.roomFromCallId ? callRoomName(pinless.callId) : roomNameFor(config.resilience.replicaId));
  const { bot, config: botConfig } = d.route;
  const { callId, callDomain, to, sipHeaders } = pinless;
  // Well-formed and without control characters before it reaches a room name, a worker or a bot.
  const from = cleanCallerText(pinless.from);
  const identity: CallIdentity = { id: randomUUID(), callId, callDomain, from, to, sipHeaders, bot, roomName, roomUrl: '' };
  const call = d.createCall(identity, slot ? 'warm' : 'cold');
  let token: string;
  if (slot) {
    token = slot.room.token;
    call.roomCreated(slot.room.roomUrl);
  } else {
    try {
      const c = config.call;
      const room = await d.rooms.provision({
        roomName,
        displayName: from,
        expSec: roomExpSec(config),
        numEndpoints: c.sipEndpoints,
        signal: d.stop,
        // Retries (a lost answer included) within the hold budget, leaving what serving the call needs.
        deadlineMs: receivedAtMs + config.resilience.holdBudgetMs - FALLBACK_RESERVE_MS - ATTEMPT_MIN_MS - Date.now(),
      });
      token = room.token;
      call.roomCreated(room.roomUrl);
    } catch (err) {
      if (d.roomFromCallId && isRoomNameTaken(err)) {
        // Another replica made this call's room: a duplicate. No record here (the call is theirs).
        d.dropCall(call);
        call.log.warn({ room: roomName }, 'duplicate call: its room (named from the callId) already exists; not admitted again');
        return { kind: 'accepted', duplicate: true, record: { id: '', callId, roomUrl: '', bot, state: 'queued' } };
      }
      call.end('room_failed', errorMessage(err), 'admission');
      d.dropCall(call);
      call.finish();
      // (provision queued the room's deletion: it may exist even if the token failed.)
      if (err instanceof DailyApiError && !err.retryable && err.status !== undefined && err.status < 500) {
        return { kind: 'refused', reason: 'room_refused', message: `Daily refused the room: ${call.record.detail}` };
      }
      return { kind: 'busy', reason: 'room_failed', retryAfterSec: 1, message: `could not create the room: ${call.record.detail}` };
    }
  }
  const traceId = call.record.traceId;
  const assignment: CallAssignment = {
    ...identity,
    roomUrl: call.record.roomUrl,
    token,
    receivedAtMs,
    ...(botConfig ? { botConfig } : {}),
    ...(traceId ? { traceId } : {}),
    ...(slot ? { warm: { sipEndpoint: slot.sipEndpoint } } : {}),
  };
  d.admitted?.add({ callId, id: call.id, roomUrl: call.record.roomUrl, atMs: receivedAtMs });
  return slot ? { call, assignment, slot } : { call, assignment };
}
