/**
 * Rooms and bot tokens for calls, behind one interface (the dispatcher never calls the REST client
 * itself). First version: today's dispatcher logic moved here — retries bounded by a deadline, the
 * uncertain-create handling (a create that timed out may still be carried out by Daily: its retry
 * then answers 400 "already exists" for our own uniquely named room, which is ours to use), and a
 * second, delayed delete for such rooms (the abandoned create may land after the first delete).
 */
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { DailyApiError } from '../errors.js';
import type { DailyRestClient } from './rest.js';
import type { DailyRoom } from './types.js';

export interface CallRoomRequest {
  roomName: string;
  displayName: string;
  expSec: number;
  numEndpoints: number;
  signal?: AbortSignal;
}

export interface CallRoom {
  roomName: string;
  roomUrl: string;
  token: string;
}

export interface RoomService {
  /** Creates the SIP dial-in room and the bot's meeting token. Throws DailyApiError (retryable or not). */
  provision(req: CallRoomRequest): Promise<CallRoom>;
  /** Deletes the room (queued, paced, off the call path). Resolves when deleted or given up; never throws. */
  release(roomName: string): Promise<void>;
  /** Stops timers (service close). */
  close(): void;
}

/** Room and token creation, retries included, must fit in this (the caller is waiting on the webhook). */
const PROVISION_DEADLINE_MS = 4_000;
const RELEASE_DEADLINE_MS = 5_000;
/** After a room create timed out, the room is deleted again this long after its release. */
const LATE_CREATE_DELETE_MS = 10_000;

export function createRoomService(deps: { rest: DailyRestClient; config: Config; logger: Logger }): RoomService {
  const { rest, config } = deps;
  const log = deps.logger.child({ component: 'rooms' });
  /** Rooms whose create timed out (it may still be carried out by Daily). */
  const uncertain = new Set<string>();
  const timers = new Set<NodeJS.Timeout>();
  const perTry = (remaining: number) => ({ timeoutMs: Math.min(remaining, config.daily.apiTimeoutMs) });

  const createRoom = (req: CallRoomRequest, remaining: number): Promise<DailyRoom> =>
    rest
      .createDialinRoom(
        { name: req.roomName, displayName: req.displayName, expSec: req.expSec, numEndpoints: req.numEndpoints, enableDialout: config.call.dialout },
        perTry(remaining),
      )
      .catch((err: unknown) => {
        if (err instanceof DailyApiError && err.status === undefined) uncertain.add(req.roomName);
        if (err instanceof DailyApiError && err.status === 400 && /already exists/i.test(`${err.info ?? ''} ${err.message}`) && uncertain.has(req.roomName)) {
          return rest.request<DailyRoom>('GET', `/rooms/${encodeURIComponent(req.roomName)}`, undefined, perTry(remaining));
        }
        throw err;
      });

  return {
    async provision(req) {
      const retry = { deadlineMs: PROVISION_DEADLINE_MS, baseDelayMs: 100, maxDelayMs: 1_000, ...(req.signal ? { signal: req.signal } : {}) };
      const [room, token] = await Promise.all([
        rest.retrying((remaining) => createRoom(req, remaining), retry),
        rest.retrying(
          (remaining) => rest.createMeetingToken({ roomName: req.roomName, userName: 'patchbay-bot', expSec: req.expSec, isOwner: true }, perTry(remaining)),
          retry,
        ),
      ]);
      return { roomName: req.roomName, roomUrl: room.url, token };
    },

    async release(roomName) {
      try {
        await rest.retrying((remaining) => rest.deleteRoom(roomName, perTry(remaining)), { deadlineMs: RELEASE_DEADLINE_MS });
      } catch (err) {
        log.warn({ err: (err as Error).message, room: roomName }, 'could not delete the room; it expires by itself');
      }
      if (uncertain.delete(roomName)) {
        // A create we abandoned (timeout) may land after this delete: delete once more, later.
        const timer = setTimeout(() => {
          timers.delete(timer);
          void rest.deleteRoom(roomName, { timeoutMs: config.daily.apiTimeoutMs }).catch(() => undefined);
        }, LATE_CREATE_DELETE_MS);
        timer.unref();
        timers.add(timer);
      }
    },

    close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
    },
  };
}
