/**
 * The rooms of calls: created on the call path (room + bot token, before the webhook is answered),
 * deleted off it through a paced queue.
 *
 * - `provision`: POST /rooms under the `create` policy (its deadline stretched to the caller's
 *   hold budget when the request says so), in parallel with the bot's meeting token
 *   (self-signed: no request; see token.ts). A create that timed out may still be carried out by
 *   Daily: a later "already exists" for our unique name is our room (rest.ts), and the room is
 *   deleted once more `LATE_CREATE_DELETE_MS` after its release in case it landed late.
 * - `release`: queued; one DELETE per `DAILY_ROOM_DELETE_INTERVAL_MS` (Daily's DELETE /rooms class is
 *   about 2 req/s, 50 per 30 s); a tick is skipped while a `provision` is in flight (the call path
 *   goes first) unless the head has waited `PRIORITY_MAX_DEFER_MS`; a 429 pauses the whole queue
 *   for its Retry-After (deferred, never retried into more 429s); other failures are retried under
 *   the `cleanup` policy's statuses, backoff and deadline, then given up (the room expires by itself).
 *   Nobody waits for a deletion on the call path: a call ends, frees its slot and is logged when its
 *   worker is reaped; `release` only queues.
 * - The backlog is bounded (`maxBacklog`, default `DELETE_BACKLOG_MAX`): when rooms are released
 *   faster than Daily's deletion class allows (≈1.7/s per domain) for long, the oldest queued room
 *   is dropped — it is the nearest to its `exp` and expires by itself — and counted (`dropped`).
 *   Nothing else is kept per room beyond that bound.
 */
import type { Logger } from 'pino';
import type { Config } from '../core/config.js';
import { DailyApiError, errorMessage } from '../core/errors.js';
import { backoffMs, isRetryableUnder, type RetryPolicy } from './policies.js';
import type { DailyRestClient } from './rest.js';
import { callerDisplayName } from './sip.js';
import { createTokenSource, type TokenSource } from './token.js';

/** Daily's answer to a room name already in use: 400, `info` "a room named … already exists". */
export function isRoomNameTaken(err: unknown): boolean {
  return err instanceof DailyApiError && err.status === 400 && /already exists/i.test(`${err.info ?? ''} ${err.message}`);
}

export interface CallRoomRequest {
  roomName: string;
  displayName: string;
  expSec: number;
  numEndpoints: number;
  signal?: AbortSignal;
  /**
   * How long the create may go on retrying (the caller's hold budget less what serving the call
   * needs), when longer than the `create` policy's own deadline: a lost answer (the attempt timed
   * out though Daily created the room) then gets its retry, whose "already exists" is our room.
   */
  deadlineMs?: number;
  /** Daily's `enable_dialout` for this room (an outbound call); absent → DAILY_DIALOUT. */
  enableDialout?: boolean;
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
  /**
   * Who is in the room as Daily's presence data has it (up to 15 s behind): whether a patchbay bot
   * is, and how many others; undefined when the room no longer exists. Throws DailyApiError when
   * Daily could not say.
   */
  presence(roomName: string): Promise<{ bot: boolean; others: number } | undefined>;
  /**
   * Shutdown: lets the queued deletions go on, paced as always, until the queue is empty or `budgetMs`
   * has passed (what is left then expires by its `exp`). Never throws.
   */
  flush(budgetMs: number): Promise<void>;
  /** Stops timers (service close); rooms still queued are left to their `exp`. */
  close(): void;
  /** The deletion queue's counters (status, metrics). */
  stats(): RoomServiceStats;
}

/** The bot's user name in its meeting token. */
export const BOT_USER_NAME = 'patchbay-bot';
/** After a room create timed out, the room is deleted again this long after its release. */
export const LATE_CREATE_DELETE_MS = 10_000;
/** The call path defers a deletion at most this long. */
export const PRIORITY_MAX_DEFER_MS = 2_000;
/**
 * Rooms waiting for deletion, at most: a minute of Daily's DELETE /rooms class (50 per 30 s). Past it
 * the oldest is left to its `exp`.
 */
export const DELETE_BACKLOG_MAX = 100;
/** Dropped rooms are logged at most once per this long (with the count since the last line). */
const DROP_LOG_INTERVAL_MS = 10_000;

interface Pending {
  name: string;
  queuedAtMs: number;
  attempts: number;
  notBeforeMs: number;
  done: Array<() => void>;
}

/** Test/metrics view of the deletion queue. */
export interface RoomServiceStats {
  queued: number;
  deleted: number;
  givenUp: number;
  deferredForCalls: number;
  rateLimited: number;
  /** Rooms waiting for their deletion now: queued (≤ `maxBacklog`) plus the one being sent, if any. */
  backlog: number;
  /** The most that ever waited at once. */
  backlogPeak: number;
  /** Rooms dropped from a full backlog: left to their `exp`. */
  dropped: number;
}

/** The paced deletion queue behind `release` (see the module comment). */
class DeletionQueue {
  private readonly queue: Pending[] = [];
  /** Rooms whose create timed out: deleted once more `LATE_CREATE_DELETE_MS` after their deletion. */
  readonly uncertain = new Set<string>();
  private readonly lateTimers = new Set<NodeJS.Timeout>();
  private readonly counters = { queued: 0, deleted: 0, givenUp: 0, deferredForCalls: 0, rateLimited: 0, backlogPeak: 0, dropped: 0 };
  private readonly cleanup: RetryPolicy;
  private readonly once: RetryPolicy;
  private droppedUnlogged = 0;
  private dropLoggedAtMs = 0;
  private provisioning = 0;
  private pausedUntilMs = 0;
  private lastSentMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private sending = false;
  private closed = false;

  constructor(
    private readonly rest: DailyRestClient,
    private readonly intervalMs: number,
    private readonly maxBacklog: number,
    private readonly log: Logger,
  ) {
    this.cleanup = rest.policies.cleanup;
    this.once = { ...this.cleanup, maxAttempts: 1 };
  }

  private settle(p: Pending): void {
    for (const f of p.done.splice(0)) f();
  }

  private schedule(): void {
    if (this.closed || this.timer || this.sending || this.queue.length === 0) return;
    const now = Date.now();
    const head = Math.min(...this.queue.map((p) => p.notBeforeMs));
    const at = Math.max(this.lastSentMs + this.intervalMs, this.pausedUntilMs, head, now);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.tick();
    }, at - now);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    const now = Date.now();
    const i = this.queue.findIndex((p) => p.notBeforeMs <= now);
    if (i < 0) return this.schedule();
    const p = this.queue[i]!;
    if (this.provisioning > 0 && now - p.queuedAtMs < PRIORITY_MAX_DEFER_MS) {
      this.counters.deferredForCalls++;
      this.timer = setTimeout(
        () => {
          this.timer = undefined;
          void this.tick();
        },
        Math.max(this.intervalMs, 50),
      );
      this.timer.unref();
      return;
    }
    this.queue.splice(i, 1);
    this.sending = true;
    this.lastSentMs = Date.now();
    p.attempts++;
    try {
      await this.rest.deleteRoom(p.name, { policy: this.once });
      this.counters.deleted++;
      this.settle(p);
      if (this.uncertain.delete(p.name)) this.lateDelete(p.name);
    } catch (err) {
      this.failed(p, err);
    } finally {
      this.sending = false;
      this.schedule();
    }
  }

  /** A DELETE failed: a 429 pauses the queue; retried under `cleanup`, else given up. */
  private failed(p: Pending, err: unknown): void {
    const { cleanup } = this;
    const elapsed = Date.now() - p.queuedAtMs;
    const delay = backoffMs(cleanup, p.attempts, err);
    if (err instanceof DailyApiError && err.status === 429) {
      this.counters.rateLimited++;
      this.pausedUntilMs = Date.now() + Math.max(err.retryAfterMs ?? 0, delay);
    }
    if (!this.closed && isRetryableUnder(cleanup, err) && p.attempts < cleanup.maxAttempts && elapsed + delay < cleanup.deadlineMs) {
      p.notBeforeMs = Date.now() + delay;
      this.queue.push(p);
    } else {
      this.counters.givenUp++;
      this.log.warn({ err: errorMessage(err), room: p.name, attempts: p.attempts }, 'could not delete the room; it expires by itself');
      this.settle(p);
    }
  }

  /** A full backlog: the oldest room is left to its `exp` (it expires first). */
  private dropOldest(): void {
    const { queue } = this;
    let oldest = 0;
    for (let i = 1; i < queue.length; i++) if (queue[i]!.queuedAtMs < queue[oldest]!.queuedAtMs) oldest = i;
    const [p] = queue.splice(oldest, 1);
    if (!p) return;
    this.counters.dropped++;
    this.droppedUnlogged++;
    this.uncertain.delete(p.name);
    this.settle(p);
    const now = Date.now();
    if (now - this.dropLoggedAtMs >= DROP_LOG_INTERVAL_MS) {
      this.log.warn(
        { dropped: this.droppedUnlogged, maxBacklog: this.maxBacklog, room: p.name },
        'room deletions are behind Daily’s rate limit: leaving the oldest queued rooms to expire by their exp',
      );
      this.droppedUnlogged = 0;
      this.dropLoggedAtMs = now;
    }
  }

  enqueue(name: string): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.closed) return resolve();
      const existing = this.queue.find((p) => p.name === name);
      if (existing) {
        existing.done.push(resolve);
        return;
      }
      this.counters.queued++;
      while (this.queue.length >= this.maxBacklog) this.dropOldest();
      this.queue.push({ name, queuedAtMs: Date.now(), attempts: 0, notBeforeMs: 0, done: [resolve] });
      this.counters.backlogPeak = Math.max(this.counters.backlogPeak, this.queue.length);
      this.schedule();
    });
  }

  private lateDelete(name: string): void {
    if (this.lateTimers.size >= this.maxBacklog) return; // bounded like the backlog: the room expires by itself
    const t = setTimeout(() => {
      this.lateTimers.delete(t);
      void this.enqueue(name);
    }, LATE_CREATE_DELETE_MS);
    t.unref();
    this.lateTimers.add(t);
  }

  /** A `provision` starts: deletions wait for it (at most `PRIORITY_MAX_DEFER_MS`). */
  provisionStarted(): void {
    this.provisioning++;
  }

  provisionEnded(): void {
    this.provisioning--;
    // A deletion skipped for this call may go now.
    if (this.provisioning === 0 && this.timer && !this.sending) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.schedule();
    }
  }

  /** Resolves once nothing is queued or being sent, or after `budgetMs`. */
  async flush(budgetMs: number): Promise<void> {
    const deadline = Date.now() + Math.max(0, budgetMs);
    while (!this.closed && (this.queue.length > 0 || this.sending) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, Math.min(50, Math.max(1, deadline - Date.now()))));
    }
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const t of this.lateTimers) clearTimeout(t);
    this.lateTimers.clear();
    for (const p of this.queue.splice(0)) this.settle(p);
  }

  stats(): RoomServiceStats {
    return { ...this.counters, backlog: this.queue.length + (this.sending ? 1 : 0) };
  }
}

/** POST /rooms (its deadline stretched to `req.deadlineMs`) in parallel with the bot's token. */
async function createRoomAndToken(
  rest: DailyRestClient,
  config: Config,
  tokens: TokenSource,
  req: CallRoomRequest,
  onUncertain: () => void,
): Promise<CallRoom> {
  const signal = req.signal;
  const [room, token] = await Promise.all([
    rest.createDialinRoom(
      {
        name: req.roomName,
        displayName: callerDisplayName(req.displayName),
        expSec: req.expSec,
        numEndpoints: req.numEndpoints,
        enableDialout: req.enableDialout ?? config.call.dialout,
        ...(config.call.recording.dailyRooms ? { enableRecording: 'cloud-audio-only' as const } : {}),
      },
      {
        ...(signal ? { signal } : {}),
        ...(req.deadlineMs !== undefined && req.deadlineMs > rest.policies.create.deadlineMs
          ? { policy: { ...rest.policies.create, deadlineMs: req.deadlineMs } }
          : {}),
        onUncertain,
      },
    ),
    tokens.mint({ roomName: req.roomName, userName: BOT_USER_NAME, expSec: req.expSec, isOwner: true }, signal ? { signal } : undefined),
  ]);
  return { roomName: room.name ?? req.roomName, roomUrl: room.url, token };
}

export function createRoomService(deps: {
  rest: DailyRestClient;
  config: Config;
  logger: Logger;
  tokens?: TokenSource;
  /** Rooms waiting for deletion, at most (default: DAILY_ROOM_DELETE_BACKLOG_MAX, else DELETE_BACKLOG_MAX). */
  maxBacklog?: number;
}): RoomService {
  const { rest, config } = deps;
  const maxBacklog = Math.max(1, deps.maxBacklog ?? config.daily.roomDeleteBacklogMax);
  const log = deps.logger.child({ component: 'rooms' });
  const tokens =
    deps.tokens ?? createTokenSource({ rest, mode: config.daily.tokenMode, domainId: config.daily.domainId, logger: deps.logger });
  const deletions = new DeletionQueue(rest, config.daily.roomDeleteIntervalMs, maxBacklog, log);

  return {
    async presence(roomName) {
      try {
        const p = await rest.roomPresence(roomName);
        const bots = p.data.filter((x) => x.userName === BOT_USER_NAME).length;
        return { bot: bots > 0, others: p.data.length - bots };
      } catch (err) {
        if (err instanceof DailyApiError && err.status === 404) return undefined;
        throw err;
      }
    },
    async provision(req) {
      deletions.provisionStarted();
      try {
        return await createRoomAndToken(rest, config, tokens, req, () => deletions.uncertain.add(req.roomName));
      } catch (err) {
        // Another call's room (a name derived from Daily's callId: a duplicate): not ours to delete.
        if (isRoomNameTaken(err)) throw err;
        // The room may exist even though the token (or a late create) failed.
        void deletions.enqueue(req.roomName);
        if (err instanceof DailyApiError) throw err;
        throw new DailyApiError(`could not create the room: ${errorMessage(err)}`, { retryable: true, cause: err });
      } finally {
        deletions.provisionEnded();
      }
    },
    release: (roomName) => deletions.enqueue(roomName),
    flush: (budgetMs) => deletions.flush(budgetMs),
    close() {
      deletions.close();
      tokens.close();
    },
    stats: () => deletions.stats(),
  };
}
