/**
 * The call lifecycle on the parent side:
 *
 *   webhook → dedupe by callId → capacity check → room + bot token → queue (p-queue, bounded wait)
 *           → warm worker → stages reported by the worker → outcome → worker reaped → room deleted
 *
 * Every admitted call ends in exactly one outcome, logged once as a structured line with its timeline.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import PQueue from 'p-queue';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { DailyRestClient } from '../daily/rest.js';
import type { DailyRoom, PinlessCall } from '../daily/types.js';
import { DailyApiError, PatchbayError } from '../errors.js';
import { maskNumber } from '../logger.js';
import type { Outcome } from './outcome.js';
import type { WorkerPool } from './pool.js';
import type { CallAssignment, ChildMessage, Stage } from './protocol.js';
import { routeResult, type RouteResult } from './router.js';
import type { WorkerHandle } from './worker-handle.js';

export type TimelineStage = 'received' | 'room_created' | 'queued' | 'worker_assigned' | Stage | 'ended';

export interface BotEvent {
  kind: string;
  value: string;
  atMs: number;
}

export interface CallRecord {
  id: string;
  callId: string;
  callDomain: string;
  from: string;
  to: string;
  sipHeaders: Record<string, string>;
  bot: string;
  roomName: string;
  roomUrl: string;
  state: 'admitting' | 'queued' | 'starting' | 'active' | 'ended';
  /** Epoch ms per stage. */
  timeline: Partial<Record<TimelineStage, number>>;
  warmStart?: boolean;
  workerPid?: number;
  outcome?: Outcome;
  detail?: string;
  botEvents: BotEvent[];
  /** The last `dialin.error` Daily reported for this call's room (domain webhook), if any. */
  dialinError?: string;
}

/** A verified Daily domain event, as the webhook route hands it to `reconcile`. */
export interface DomainEventInput {
  /** `dialin.stopped`, `meeting.ended`, `dialin.error`, … */
  type: string;
  id: string;
  /** The room the event is about (`payload.room`). */
  room: string | undefined;
  /** `payload.error_msg` / `payload.warning_msg`, when present. */
  message?: string;
}

export type ReconcileAction = 'ignored' | 'unknown_room' | 'recorded' | 'end_scheduled';

export type AdmitResult =
  | { kind: 'accepted'; duplicate: boolean; record: CallRecord }
  | { kind: 'busy'; reason: 'draining' | 'queue_full' | 'room_failed'; retryAfterSec: number; message: string };

export interface DispatcherEvents {
  'call-updated': [CallRecord];
  'call-ended': [CallRecord];
}

export interface DispatcherDeps {
  config: Config;
  logger: Logger;
  daily: DailyRestClient;
  pool: WorkerPool;
  /** Picks the bot for a call. */
  route(call: PinlessCall): string | RouteResult;
}

const DEDUPE_TTL_MS = 15 * 60_000;
const ROOM_DEADLINE_MS = 4_000;
/** After a room create timed out, the room is deleted again this long after the call ended. */
const LATE_CREATE_DELETE_MS = 10_000;

export class Dispatcher extends EventEmitter<DispatcherEvents> {
  private readonly queue: PQueue;
  private readonly calls = new Map<string, { answer: Promise<AdmitResult>; record?: CallRecord; endedAtMs?: number }>();
  private readonly live = new Map<string, { record: CallRecord; worker?: WorkerHandle; reconciled?: { outcome: Outcome; detail: string } }>();
  private readonly reconcileTimers = new Set<NodeJS.Timeout>();
  /** Calls whose worker already reported its outcome (it is finishing: reconcile leaves it alone). */
  private readonly workerDone = new WeakSet<CallRecord>();
  /** Calls with a room create that timed out (it may still be carried out by Daily). */
  private readonly uncertainCreates = new WeakSet<CallRecord>();
  private admitting = 0;
  private draining = false;
  private readonly stop = new AbortController();
  private readonly pruneTimer: NodeJS.Timeout;
  private readonly log: Logger;
  private readonly idle = new Set<() => void>();

  constructor(private readonly deps: DispatcherDeps) {
    super();
    this.log = deps.logger.child({ component: 'dispatch' });
    this.queue = new PQueue({ concurrency: deps.config.admission.maxConcurrentBots });
    this.pruneTimer = setInterval(() => this.prune(), 60_000);
    this.pruneTimer.unref();
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Calls in flight: running bots, queued calls, and calls whose room is being created. */
  stats(): { active: number; queued: number; admitting: number; capacity: number; full: boolean; draining: boolean } {
    const { maxConcurrentBots, maxQueuedCalls } = this.deps.config.admission;
    const capacity = maxConcurrentBots + maxQueuedCalls;
    const inFlight = this.queue.pending + this.queue.size + this.admitting;
    return { active: this.queue.pending, queued: this.queue.size, admitting: this.admitting, capacity, full: inFlight >= capacity, draining: this.draining };
  }

  liveCalls(): CallRecord[] {
    return [...this.live.values()].map((l) => l.record);
  }

  /** Admits a call webhook. Answers after the room exists and the call is queued, not after the bot joins. */
  admit(call: PinlessCall, receivedAtMs = Date.now()): Promise<AdmitResult> {
    const existing = this.calls.get(call.callId);
    if (existing) {
      return existing.answer.then((r) => (r.kind === 'accepted' ? { ...r, duplicate: true } : r));
    }
    if (this.draining) {
      return Promise.resolve({ kind: 'busy', reason: 'draining', retryAfterSec: 1, message: 'this replica is draining; try another' });
    }
    if (this.stats().full) {
      return Promise.resolve({
        kind: 'busy',
        reason: 'queue_full',
        retryAfterSec: 1,
        message: `all ${this.deps.config.admission.maxConcurrentBots} bots busy and ${this.deps.config.admission.maxQueuedCalls} calls queued`,
      });
    }
    const entry: { answer: Promise<AdmitResult>; record?: CallRecord } = { answer: Promise.resolve(null as never) };
    entry.answer = this.doAdmit(call, receivedAtMs, entry);
    this.calls.set(call.callId, entry);
    entry.answer.then((r) => {
      // A refused call may be retried (here or elsewhere): forget it.
      if (r.kind === 'busy') this.calls.delete(call.callId);
    });
    return entry.answer;
  }

  private async doAdmit(call: PinlessCall, receivedAtMs: number, entry: { record?: CallRecord }): Promise<AdmitResult> {
    const { config } = this.deps;
    this.admitting++;
    const id = randomUUID();
    const roomName = `pb-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
    const { bot, config: botConfig } = routeResult(this.deps.route(call));
    // The call's identity, shared by the record and the worker's assignment.
    const who = { id, callId: call.callId, callDomain: call.callDomain, from: call.from, to: call.to, sipHeaders: call.sipHeaders, bot, roomName };
    const record: CallRecord = {
      ...who,
      roomUrl: '',
      state: 'admitting',
      timeline: { received: receivedAtMs },
      botEvents: [],
    };
    entry.record = record;
    const log = this.log.child({ callId: call.callId, id, bot });
    let token: string;
    try {
      const expSec =
        Math.ceil((Date.now() + config.call.maxCallMs + config.admission.queueTimeoutMs + config.call.dialinReadyTimeoutMs + config.call.joinTimeoutMs) / 1000) +
        300;
      const retry = { deadlineMs: ROOM_DEADLINE_MS, baseDelayMs: 100, maxDelayMs: 1_000, signal: this.stop.signal };
      const [room, t] = await Promise.all([
        this.deps.daily.retrying(
          (remaining) =>
            this.deps.daily
              .createDialinRoom({ name: roomName, displayName: call.from, expSec, numEndpoints: config.call.sipEndpoints, enableDialout: config.call.dialout }, { timeoutMs: Math.min(remaining, config.daily.apiTimeoutMs) })
              .catch((err: unknown) => this.onCreateRoomError(err, record, Math.min(remaining, config.daily.apiTimeoutMs))),
          retry,
        ),
        this.deps.daily.retrying(
          (remaining) =>
            this.deps.daily.createMeetingToken({ roomName, userName: 'patchbay-bot', expSec, isOwner: true }, { timeoutMs: Math.min(remaining, config.daily.apiTimeoutMs) }),
          retry,
        ),
      ]);
      record.roomUrl = room.url;
      token = t;
      record.timeline.room_created = Date.now();
    } catch (err) {
      this.admitting--;
      this.checkIdle();
      record.detail = (err as Error)?.message ?? String(err);
      record.outcome = 'room_failed';
      record.state = 'ended';
      record.timeline.ended = Date.now();
      this.logOutcome(record, log);
      this.emit('call-ended', record);
      // The room may exist even if the token failed.
      void this.deleteRoom(record, log);
      return { kind: 'busy', reason: 'room_failed', retryAfterSec: 1, message: `could not create the room: ${record.detail}` };
    }

    const assignment: CallAssignment = {
      ...who,
      roomUrl: record.roomUrl,
      token,
      receivedAtMs,
      ...(botConfig ? { botConfig } : {}),
    };
    record.state = 'queued';
    record.timeline.queued = Date.now();
    this.live.set(id, { record });
    this.admitting--;
    this.emit('call-updated', record);

    // This signal bounds the *wait* only. p-queue also races a running task against its signal (and
    // frees the slot), so it must never fire once the call has started: a call lasting longer than
    // QUEUE_TIMEOUT_MS would otherwise end as `queue_timeout`, lose its room, and exceed the cap.
    const wait = new AbortController();
    const waitTimer = setTimeout(() => wait.abort(), config.admission.queueTimeoutMs);
    waitTimer.unref();
    const onStop = () => wait.abort(this.stop.signal.reason);
    if (this.stop.signal.aborted) onStop();
    else this.stop.signal.addEventListener('abort', onStop, { once: true });
    const started = () => {
      clearTimeout(waitTimer);
      this.stop.signal.removeEventListener('abort', onStop);
    };
    this.queue
      .add(
        () => {
          started();
          return this.runCall(assignment, record, log);
        },
        { signal: wait.signal },
      )
      .finally(started)
      .catch((err: unknown) => {
        // Never started: the wait timed out, or the service is stopping.
        const outcome: Outcome = this.stop.signal.aborted ? 'shutdown' : 'queue_timeout';
        return this.finish(record, { outcome, detail: outcome === 'queue_timeout' ? `waited ${config.admission.queueTimeoutMs} ms for a free bot` : String(err) }, log);
      })
      .catch((err: unknown) => log.error({ err }, 'call bookkeeping failed'));
    return { kind: 'accepted', duplicate: false, record };
  }

  private async runCall(a: CallAssignment, record: CallRecord, log: Logger): Promise<void> {
    record.state = 'starting';
    let worker: WorkerHandle;
    const coldBefore = this.deps.pool.coldStarts;
    try {
      worker = await this.deps.pool.acquire(this.stop.signal);
    } catch (err) {
      await this.finish(record, { outcome: this.stop.signal.aborted ? 'shutdown' : 'worker_crashed', detail: `no worker: ${(err as Error).message}` }, log);
      return;
    }
    record.warmStart = this.deps.pool.coldStarts === coldBefore;
    record.workerPid = worker.pid;
    record.timeline.worker_assigned = Date.now();
    record.state = 'active';
    const liveEntry = this.live.get(a.id);
    if (liveEntry) liveEntry.worker = worker;
    const wlog = log.child({ pid: worker.pid });
    worker.on('message', (m: ChildMessage) => this.onWorkerMessage(record, m));
    this.emit('call-updated', record);

    // Backstop: the worker enforces MAX_CALL_MS itself; this catches a worker that does not.
    const c = this.deps.config.call;
    const backstopMs = c.maxCallMs + c.joinTimeoutMs + c.dialinReadyTimeoutMs * 2 + c.pinlessUpdateDeadlineMs + 10_000;
    const backstop = setTimeout(() => {
      wlog.error({ backstopMs }, 'call outlived every deadline; closing its worker');
      void worker.close('max_duration');
    }, backstopMs);
    backstop.unref();

    worker.start(a);
    const workerResult = await worker.result;
    clearTimeout(backstop);
    // Ended by reconcile(): keep the webhook's explanation rather than the worker's generic one.
    const rec = this.live.get(a.id)?.reconciled;
    const result = rec && rec.outcome === workerResult.outcome ? rec : workerResult;
    // Reap: the worker exits by itself after `done`; make sure it does.
    const reaped = await Promise.race([worker.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), this.deps.config.workers.closeTimeoutMs))]);
    if (!reaped) await worker.close(result.outcome);
    await this.finish(record, result, wlog);
  }

  private onWorkerMessage(record: CallRecord, m: ChildMessage): void {
    if (m.type === 'done') this.workerDone.add(record);
    if (m.type === 'stage') {
      record.timeline[m.stage] ??= m.atMs;
      this.emit('call-updated', record);
    } else if (m.type === 'bot') {
      if (record.botEvents.length < 500) record.botEvents.push({ kind: m.kind, value: m.value, atMs: m.atMs });
    }
  }

  private async finish(record: CallRecord, result: { outcome: Outcome; detail?: string }, log: Logger): Promise<void> {
    if (record.outcome) return;
    record.outcome = result.outcome;
    if (result.detail !== undefined) record.detail = result.detail;
    record.state = 'ended';
    record.timeline.ended = Date.now();
    await this.deleteRoom(record, log);
    this.live.delete(record.id);
    const entry = this.calls.get(record.callId);
    if (entry) entry.endedAtMs = Date.now();
    this.logOutcome(record, log);
    this.emit('call-ended', record);
    this.checkIdle();
  }

  /**
   * A create that timed out may still be carried out by Daily after we gave up: its retry then
   * answers 400 "already exists" for our own (uniquely named) room, which is ours to use; and if
   * it lands after the call ended, the room must be deleted again (see `deleteRoom`).
   */
  private async onCreateRoomError(err: unknown, record: CallRecord, timeoutMs: number): Promise<DailyRoom> {
    if (err instanceof DailyApiError && err.status === undefined) this.uncertainCreates.add(record);
    if (err instanceof DailyApiError && err.status === 400 && /already exists/i.test(`${err.info ?? ''} ${err.message}`) && this.uncertainCreates.has(record)) {
      return this.deps.daily.request<DailyRoom>('GET', `/rooms/${encodeURIComponent(record.roomName)}`, undefined, { timeoutMs });
    }
    throw err;
  }

  private checkIdle(): void {
    if (this.live.size === 0 && this.admitting === 0) for (const f of [...this.idle]) f();
  }

  private async deleteRoom(record: CallRecord, log: Logger): Promise<void> {
    const { daily, config } = this.deps;
    try {
      await daily.retrying((remaining) => daily.deleteRoom(record.roomName, { timeoutMs: Math.min(remaining, config.daily.apiTimeoutMs) }), {
        deadlineMs: 5_000,
      });
    } catch (err) {
      log.warn({ err: (err as Error).message, room: record.roomName }, 'could not delete the room; it expires by itself');
    }
    if (this.uncertainCreates.has(record)) {
      // A create we abandoned (timeout) may land after this delete: delete once more, later.
      this.uncertainCreates.delete(record);
      const timer = setTimeout(() => {
        this.reconcileTimers.delete(timer);
        void daily.deleteRoom(record.roomName, { timeoutMs: config.daily.apiTimeoutMs }).catch(() => undefined);
      }, LATE_CREATE_DELETE_MS);
      timer.unref();
      this.reconcileTimers.add(timer);
    }
  }

  private logOutcome(record: CallRecord, log: Logger): void {
    const t0 = record.timeline.received ?? 0;
    const timelineMs: Record<string, number> = {};
    for (const [k, v] of Object.entries(record.timeline)) timelineMs[k] = v - t0;
    const level = ['completed', 'caller_hangup'].includes(record.outcome!) ? 'info' : 'warn';
    log[level](
      {
        outcome: record.outcome,
        detail: record.detail,
        from: maskNumber(record.from),
        to: record.to,
        room: record.roomName,
        warmStart: record.warmStart,
        timelineMs,
        holdAddedMs: record.timeline.forward_sent !== undefined ? record.timeline.forward_sent - t0 : undefined,
      },
      'call ended',
    );
  }

  private prune(): void {
    const cutoff = Date.now() - DEDUPE_TTL_MS;
    for (const [k, v] of this.calls) if (v.endedAtMs !== undefined && v.endedAtMs < cutoff) this.calls.delete(k);
  }

  /**
   * Reconciles our view with a verified Daily domain event (POST /webhooks/daily). The call is
   * found by its room. `dialin.error` is recorded on the call; `dialin.stopped` / `meeting.ended`
   * end a call that is still live `DAILY_WEBHOOK_RECONCILE_GRACE_MS` later (the worker normally
   * notices first, through its call client), so a lost event or a wedged worker cannot hold a slot.
   */
  reconcile(ev: DomainEventInput): { action: ReconcileAction; id?: string } {
    const handled = ['dialin.stopped', 'meeting.ended', 'dialin.error'];
    if (!handled.includes(ev.type)) return { action: 'ignored' };
    const entry = ev.room === undefined ? undefined : [...this.live.values()].find((l) => l.record.roomName === ev.room);
    if (!entry) return { action: 'unknown_room' };
    const record = entry.record;
    const log = this.log.child({ callId: record.callId, id: record.id, bot: record.bot, ...(record.workerPid ? { pid: record.workerPid } : {}) });
    if (ev.type === 'dialin.error') {
      record.dialinError = ev.message ?? 'dialin.error (no message)';
      log.warn({ event: ev.type, eventId: ev.id, error: record.dialinError }, 'Daily reported a dial-in error for this call');
      this.emit('call-updated', record);
      return { action: 'recorded', id: record.id };
    }
    const graceMs = this.deps.config.daily.webhookReconcileGraceMs;
    const timer = setTimeout(() => {
      this.reconcileTimers.delete(timer);
      const still = this.live.get(record.id);
      if (!still || record.outcome || still.reconciled) return;
      // The worker saw it too and is finishing the call: nothing to reconcile.
      if (this.workerDone.has(record) || (ev.type === 'dialin.stopped' && record.timeline.caller_left !== undefined)) return;
      const outcome: Outcome = record.dialinError
        ? 'dialin_error'
        : ev.type === 'meeting.ended'
          ? 'bot_removed'
          : record.timeline.connected !== undefined
            ? 'caller_hangup'
            : 'caller_hangup_on_hold';
      const detail = `${ev.type} webhook (event ${ev.id}); the call was still live ${graceMs} ms later${record.dialinError ? `; dialin.error: ${record.dialinError}` : ''}`;
      if (!still.worker) {
        log.warn({ event: ev.type, eventId: ev.id, state: record.state }, 'domain event for a call without a worker yet; left to the call deadlines');
        return;
      }
      still.reconciled = { outcome, detail };
      log.warn({ event: ev.type, eventId: ev.id, outcome, graceMs }, 'Daily says the call is over but its worker has not ended it: ending it');
      void still.worker.close(outcome);
    }, graceMs);
    timer.unref();
    this.reconcileTimers.add(timer);
    return { action: 'end_scheduled', id: record.id };
  }

  /** Resolves when no call is live (or immediately). */
  private whenIdle(): Promise<void> {
    if (this.live.size === 0 && this.admitting === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const f = () => {
        this.idle.delete(f);
        resolve();
      };
      this.idle.add(f);
    });
  }

  /**
   * Drain: refuse new calls at once, let live calls finish until `timeoutMs`, then hang up on the
   * rest (outcome `shutdown`) and wait for their workers to be reaped.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.draining = true;
    this.deps.pool.pauseRefill();
    const t0 = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.whenIdle().then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.log.warn({ live: this.live.size, afterMs: Date.now() - t0 }, 'drain timeout: hanging up on live calls');
      this.stop.abort(new PatchbayError('shutdown', 'shutting down'));
      await Promise.all([...this.live.values()].map((l) => l.worker?.close('shutdown')));
      this.queue.clear();
      await this.whenIdle();
    }
  }

  /** Immediate stop (tests, second signal): hang up everything now. */
  async close(): Promise<void> {
    await this.drain(0);
    clearInterval(this.pruneTimer);
    for (const t of this.reconcileTimers) clearTimeout(t);
    this.reconcileTimers.clear();
  }

  /** For tests and status: a record by our id. */
  get(id: string): CallRecord | undefined {
    return this.live.get(id)?.record ?? [...this.calls.values()].find((e) => e.record?.id === id)?.record;
  }

  /** For assertions: workers that this dispatcher is running calls on. */
  assertNoUnexpectedState(): void {
    if (this.queue.pending + this.queue.size !== 0 || this.live.size !== 0) {
      throw new PatchbayError('leak', `dispatcher not idle: ${this.queue.pending} running, ${this.queue.size} queued, ${this.live.size} live`);
    }
  }
}
