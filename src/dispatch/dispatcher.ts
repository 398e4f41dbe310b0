/**
 * Admission, the queue and draining on the parent side:
 *
 *   webhook → dedupe by callId → capacity check → room + bot token (RoomService) → queue (p-queue,
 *           bounded wait) → warm worker → the worker's result → worker reaped → room released
 *
 * Each admitted call is a `Call` (call.ts): it alone changes the call's state and settles its one
 * outcome; the dispatcher relays its events. Domain-webhook reconciliation is reconcile.ts.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import PQueue from 'p-queue';
import type { Logger } from 'pino';
import type { CallIdentity } from '../core/call-identity.js';
import type { Config } from '../config.js';
import type { RoomService } from '../daily/room-service.js';
import type { PinlessCall } from '../daily/types.js';
import { DailyApiError, PatchbayError } from '../errors.js';
import type { CallAssignment } from '../ipc/protocol.js';
import { Call, type CallRecord, type CallTransition } from './call.js';
import { runOnWorker } from './call-worker.js';
import { admittedBefore, type AdmittedLog } from './admitted-log.js';
import type { AdmissionBudget } from './admission-budget.js';
import { queueFallback, type ForwardFn } from './fallback.js';
import { roomNameFor } from './leftovers.js';
import type { WorkerPool } from './pool.js';
import { routeResult, type RouteResult } from './router.js';

export type { CallRecord, CallState, CallTransition } from './call.js';
export type { BotEvent, TimelineStage } from '../core/timeline.js';

export type AdmitResult =
  | { kind: 'accepted'; duplicate: boolean; record: CallRecord }
  | { kind: 'busy'; reason: 'draining' | 'queue_full' | 'overloaded' | 'room_failed'; retryAfterSec: number; message: string }
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

export interface DispatcherDeps {
  config: Config;
  logger: Logger;
  rooms: RoomService;
  pool: WorkerPool;
  /** Picks the bot for a call. */
  route(call: PinlessCall): string | RouteResult;
  /** pinlessCallUpdate from the parent, for FALLBACK_SIP_URI (fallback.ts). */
  forward?: ForwardFn;
  /** Admitted call ids that outlive a restart (admitted-log.ts). */
  admitted?: AdmittedLog;
  /** Admission by the hold budget (admission-budget.ts). */
  budget?: AdmissionBudget;
}

const DEDUPE_TTL_MS = 15 * 60_000;

export class Dispatcher extends EventEmitter<DispatcherEvents> {
  private readonly queue: PQueue;
  /** Every admission by Daily's callId (dedupe), kept DEDUPE_TTL_MS after the call ended. */
  private readonly calls = new Map<string, { answer: Promise<AdmitResult>; call?: Call; endedAtMs?: number }>();
  /** Calls admitted and not ended, by our id. */
  private readonly live = new Map<string, Call>();
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
    return [...this.live.values()].map((c) => c.record);
  }

  /** The live call in `roomName` (reconciliation finds calls by room). */
  findByRoom(roomName: string): Call | undefined {
    return [...this.live.values()].find((c) => c.record.roomName === roomName);
  }

  /** Admits a call webhook. Answers after the room exists and the call is queued, not after the bot joins. */
  admit(call: PinlessCall, receivedAtMs = Date.now()): Promise<AdmitResult> {
    const existing = this.calls.get(call.callId);
    if (existing) return existing.answer.then((r) => (r.kind === 'accepted' ? { ...r, duplicate: true } : r));
    const before = this.deps.admitted?.get(call.callId);
    if (before) return Promise.resolve({ kind: 'accepted', duplicate: true, record: admittedBefore(call, before) });
    const { maxConcurrentBots, maxQueuedCalls } = this.deps.config.admission;
    if (this.draining) return Promise.resolve({ kind: 'busy', reason: 'draining', retryAfterSec: 1, message: 'this replica is draining; try another' });
    if (this.stats().full) {
      const message = `all ${maxConcurrentBots} bots busy and ${maxQueuedCalls} calls queued`;
      return Promise.resolve({ kind: 'busy', reason: 'queue_full', retryAfterSec: 1, message });
    }
    const waitingForWorker = [...this.live.values()].filter((c) => c.state === 'starting').length;
    const over = this.deps.budget?.check({ active: this.queue.pending, queued: this.queue.size + this.admitting, waitingForWorker });
    if (over) return Promise.resolve({ kind: 'busy', reason: 'overloaded', ...over });
    const entry: { answer: Promise<AdmitResult>; call?: Call } = { answer: Promise.resolve(null as never) };
    entry.answer = this.doAdmit(call, receivedAtMs, entry);
    this.calls.set(call.callId, entry);
    // A refused or busy call may be retried (here or elsewhere): forget it.
    void entry.answer.then((r) => r.kind !== 'accepted' && this.calls.delete(call.callId));
    return entry.answer;
  }

  private async doAdmit(pinless: PinlessCall, receivedAtMs: number, entry: { call?: Call }): Promise<AdmitResult> {
    const { config, rooms } = this.deps;
    this.admitting++;
    const roomName = roomNameFor(config.resilience.replicaId);
    const { bot, config: botConfig } = routeResult(this.deps.route(pinless));
    const { callId, callDomain, from, to, sipHeaders } = pinless;
    const identity: CallIdentity = { id: randomUUID(), callId, callDomain, from, to, sipHeaders, bot, roomName, roomUrl: '' };
    const call = this.track(new Call(identity, { receivedAtMs, logger: this.log }));
    entry.call = call;
    let token: string;
    try {
      const c = config.call;
      const expSec = Math.ceil((Date.now() + c.maxCallMs + config.admission.queueTimeoutMs + c.dialinReadyTimeoutMs + c.joinTimeoutMs) / 1000) + 300;
      const room = await rooms.provision({ roomName, displayName: from, expSec, numEndpoints: c.sipEndpoints, signal: this.stop.signal });
      token = room.token;
      call.roomCreated(room.roomUrl);
    } catch (err) {
      this.admitting--;
      call.end('room_failed', (err as Error)?.message ?? String(err), 'admission');
      call.finish();
      this.checkIdle();
      // (provision queued the room's deletion: it may exist even if the token failed.)
      if (err instanceof DailyApiError && !err.retryable && err.status !== undefined && err.status < 500) {
        return { kind: 'refused', reason: 'room_refused', message: `Daily refused the room: ${call.record.detail}` };
      }
      return { kind: 'busy', reason: 'room_failed', retryAfterSec: 1, message: `could not create the room: ${call.record.detail}` };
    }

    const assignment: CallAssignment = {
      ...identity,
      roomUrl: call.record.roomUrl,
      token,
      receivedAtMs,
      ...(botConfig ? { botConfig } : {}),
      ...(call.record.traceId ? { traceId: call.record.traceId } : {}),
    };
    this.live.set(call.id, call);
    this.admitting--;
    call.advance('queued');
    this.deps.admitted?.add({ callId, id: call.id, roomUrl: call.record.roomUrl, atMs: receivedAtMs });

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
    // Ended while queued (its caller is gone: reconcile.ts): leave the queue at once.
    call.on('transition', (t) => t.to === 'ending' && t.from === 'queued' && wait.abort());
    this.queue
      .add(
        () => {
          started();
          // The bot slot is free once the worker is reaped; the room is released after, off the slot.
          return runOnWorker(call, assignment, { pool: this.deps.pool, config, stop: this.stop.signal, forward: this.deps.forward }).then(() => {
            this.finish(call).catch((err: unknown) => call.log.error({ err }, 'call bookkeeping failed'));
          });
        },
        { signal: wait.signal },
      )
      .finally(started)
      .catch(async (err: unknown) => {
        // Never started: the wait timed out, the service is stopping, or the call already ended.
        if (call.outcome !== undefined) return this.finish(call);
        if (this.stop.signal.aborted) call.end('shutdown', String(err), 'queue');
        else {
          const sent = await queueFallback(call, config, this.deps.forward, this.stop.signal);
          call.end('queue_timeout', [`waited ${config.admission.queueTimeoutMs} ms for a free bot`, sent].filter(Boolean).join('; '), 'queue');
        }
        return this.finish(call);
      })
      .catch((err: unknown) => call.log.error({ err }, 'call bookkeeping failed'));
    return { kind: 'accepted', duplicate: false, record: call.record };
  }

  /** Relays the call's events; keeps the dedupe entry's end time. */
  private track(call: Call): Call {
    call.on('changed', (c) => {
      this.emit('changed', c);
      if (c.state !== 'ended' && c.state !== 'admitting') this.emit('call-updated', c.record);
    });
    call.on('transition', (t) => {
      this.emit('transition', t);
      // `starting` and `ending` are not announced as record updates (they never were).
      if (t.to === 'ended') {
        const entry = this.calls.get(call.record.callId);
        if (entry) entry.endedAtMs = t.atMs;
        this.emit('call-ended', call.record);
      } else if (t.to === 'queued' || t.to === 'active') this.emit('call-updated', call.record);
    });
    return call;
  }

  /** The call is over once its room is gone (deletion is paced, off the call path and the bot slot). */
  private async finish(call: Call): Promise<void> {
    await this.deps.rooms.release(call.record.roomName);
    this.live.delete(call.id);
    call.finish();
    this.checkIdle();
  }

  private checkIdle(): void {
    if (this.live.size === 0 && this.admitting === 0) for (const f of [...this.idle]) f();
  }

  private prune(): void {
    const cutoff = Date.now() - DEDUPE_TTL_MS;
    for (const [k, v] of this.calls) if (v.endedAtMs !== undefined && v.endedAtMs < cutoff) this.calls.delete(k);
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
    const timedOut = await Promise.race([this.whenIdle().then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs)))]);
    clearTimeout(timer);
    if (timedOut) {
      this.log.warn({ live: this.live.size, afterMs: Date.now() - t0 }, 'drain timeout: hanging up on live calls');
      this.stop.abort(new PatchbayError('shutdown', 'shutting down'));
      for (const call of this.live.values()) if (call.hasWorker && call.outcome === undefined) call.end('shutdown', 'ended by the service', 'drain');
      this.queue.clear();
      await this.whenIdle();
    }
  }

  /** Immediate stop (tests, second signal): hang up everything now. */
  async close(): Promise<void> {
    await this.drain(0);
    clearInterval(this.pruneTimer);
  }

  /** For tests and status: a record by our id. */
  get(id: string): CallRecord | undefined {
    return this.live.get(id)?.record ?? [...this.calls.values()].find((e) => e.call?.id === id)?.call?.record;
  }

  /** For assertions: workers that this dispatcher is running calls on. */
  assertNoUnexpectedState(): void {
    if (this.queue.pending + this.queue.size !== 0 || this.live.size !== 0) {
      throw new PatchbayError('leak', `dispatcher not idle: ${this.queue.pending} running, ${this.queue.size} queued, ${this.live.size} live`);
    }
  }
}
