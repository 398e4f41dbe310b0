/**
 * Admission, the queue and draining on the parent side:
 *
 *   webhook → dedupe by callId → capacity check → room + bot token (RoomService) → queue (p-queue,
 *           bounded wait) → warm worker → the worker's result → worker reaped → room released
 *
 * Each admitted call is a `Call` (call.ts): it alone changes the call's state and settles its one
 * outcome; the dispatcher relays its events. Domain-webhook reconciliation is reconcile.ts.
 */
import { EventEmitter, setMaxListeners } from 'node:events';
import PQueue from 'p-queue';
import type { Logger } from 'pino';
import type { CallIdentity } from '../core/call-identity.js';
import type { PinlessCall } from '../daily/types.js';
import type { RoomServiceStats } from '../daily/room-service.js';
import { PatchbayError } from '../core/errors.js';
import type { CallAssignment } from '../workers/protocol.js';
import type { AdmissionDelegate, AdmitResult, DispatcherDeps, DispatcherEvents } from './types.js';
import { Call, type CallRecord } from '../call/call.js';
import type { CallPath } from '../core/timeline.js';
import { runOnWorker } from '../workers/parent/run-call.js';
import { provisionCall, type Provisioned } from './provision.js';
import { addWithBoundedWait, IdleWaiters } from './queue-wait.js';
import { admittedBefore } from './admitted-log.js';
import { queueFallback } from '../workers/parent/fallback.js';
import { routeResult } from './router.js';
import type { WarmSlot, WarmSlots } from '../workers/parent/warm-slots.js';

export type { CallRecord, CallState, CallTransition } from '../call/call.js';
export type { BotEvent, TimelineStage } from '../core/timeline.js';

export type { AdmissionDelegate, AdmitAnswer, AdmitResult, DispatcherDeps, DispatcherEvents } from './types.js';

const DEDUPE_TTL_MS = 15 * 60_000;

type Busy = Extract<AdmitResult, { kind: 'busy' }>;

/** The callback offer as the dispatcher sees it (callback-offer.ts). */
export interface CallbackOfferHook {
  readonly available: boolean;
  offer(call: PinlessCall, receivedAtMs: number, busy: Busy): Promise<AdmitResult>;
}

/** A busy answer a callback can stand in for: no bot in time, or none free and no place in the queue. */
const offerable = (r: AdmitResult): r is Busy =>
  r.kind === 'busy' && !r.inFlight && (r.reason === 'overloaded' || r.reason === 'queue_full');

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
  /** Workers of ended calls still exiting (off their slots; a drain waits for them). */
  private readonly reaping = new Set<Promise<void>>();
  private readonly idle = new IdleWaiters(() => this.live.size === 0 && this.admitting === 0 && this.reaping.size === 0);
  private delegate: AdmissionDelegate | undefined;
  private callbackOffer: CallbackOfferHook | undefined;

  constructor(private readonly deps: DispatcherDeps) {
    super();
    this.log = deps.logger.child({ component: 'dispatch' });
    this.queue = new PQueue({ concurrency: deps.config.admission.maxConcurrentBots });
    // Every call in flight listens on the stop signal while it waits (room creation, the queue, a
    // worker, the fallback), a few listeners each, all removed when the wait ends: the bound is
    // the admission capacity, so that a real leak past it still warns.
    const { maxConcurrentBots, maxQueuedCalls } = deps.config.admission;
    setMaxListeners(Math.max(10, (maxConcurrentBots + maxQueuedCalls) * 4), this.stop.signal);
    this.pruneTimer = setInterval(() => this.prune(), 60_000);
    this.pruneTimer.unref();
  }

  /** Warm rooms (metrics, status), when WARM_ROOMS > 0. */
  get warmSlots(): WarmSlots | undefined {
    return this.deps.warm;
  }

  /** The room deletion queue (status, metrics): backlog, deleted, left to `exp`. */
  roomStats(): RoomServiceStats {
    return this.deps.rooms.stats();
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Calls in flight: running bots, queued calls, and calls whose room is being created. */
  stats(): { active: number; queued: number; admitting: number; capacity: number; full: boolean; draining: boolean } {
    const { maxConcurrentBots, maxQueuedCalls } = this.deps.config.admission;
    const capacity = maxConcurrentBots + maxQueuedCalls;
    const inFlight = this.queue.pending + this.queue.size + this.admitting;
    return {
      active: this.queue.pending,
      queued: this.queue.size,
      admitting: this.admitting,
      capacity,
      full: inFlight >= capacity,
      draining: this.draining,
    };
  }

  liveCalls(): CallRecord[] {
    return [...this.live.values()].map((c) => c.record);
  }

  /** The live call objects (fleet mode registers calls admitted while degraded). */
  liveCallObjects(): Call[] {
    return [...this.live.values()];
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
    if (this.draining)
      return Promise.resolve({ kind: 'busy', reason: 'draining', retryAfterSec: 1, message: 'this replica is draining; try another' });
    // Fleet mode (fleet-admission.ts) bounds the wait fleet-wide; otherwise this replica alone.
    const fleet = this.delegate?.active ? this.delegate : undefined;
    let busy: Busy | undefined;
    if (!fleet && this.stats().full) {
      const message = `all ${maxConcurrentBots} bots busy and ${maxQueuedCalls} calls queued`;
      busy = { kind: 'busy', reason: 'queue_full', retryAfterSec: 1, message };
    }
    const waitingForWorker = [...this.live.values()].filter((c) => c.state === 'starting').length;
    const over = busy
      ? undefined
      : this.deps.budget?.check({ active: this.queue.pending, queued: this.queue.size + this.admitting, waitingForWorker });
    if (over) busy = { kind: 'busy', reason: 'overloaded', ...over };
    // CALLBACK_OFFER: a caller who cannot be served in time is offered a callback (callback-offer.ts).
    const offer = this.callbackOffer?.available ? this.callbackOffer : undefined;
    if (busy && !offer) return Promise.resolve(busy);
    const entry: { answer: Promise<AdmitResult>; call?: Call } = { answer: Promise.resolve(null as never) };
    const answer = busy ? Promise.resolve(busy) : fleet ? fleet.admit(call, receivedAtMs) : this.admitLocal(call, receivedAtMs, entry);
    entry.answer = offer ? answer.then((r) => (offerable(r) ? offer.offer(call, receivedAtMs, r) : r)) : answer;
    this.calls.set(call.callId, entry);
    // A refused or busy call may be retried (here or elsewhere): forget it.
    void entry.answer.then((r) => r.kind !== 'accepted' && this.calls.delete(call.callId));
    return entry.answer;
  }

  /** CALLBACK_OFFER: busy answers go to the callback offer first (callback-offer.ts). */
  setCallbackOffer(o: CallbackOfferHook): void {
    this.callbackOffer = o;
  }

  /** Fleet mode: admission goes through `d` while `d.active` (fleet-admission.ts). */
  setDelegate(d: AdmissionDelegate): void {
    this.delegate = d;
  }

  /** Per-replica admission: room + token (or a warm slot), then this replica's p-queue. */
  async admitLocal(pinless: PinlessCall, receivedAtMs: number, entry?: { call?: Call }): Promise<AdmitResult> {
    const p = await this.provision(pinless, receivedAtMs);
    if (!('call' in p)) return p;
    if (entry) entry.call = p.call;
    this.runCall(p.call, p.assignment, this.deps.config.admission.queueTimeoutMs, p.slot);
    return { kind: 'accepted', duplicate: false, record: p.call.record };
  }

  /** A new call object, relayed and live on this replica. */
  createCall(identity: CallIdentity, receivedAtMs: number, replica = this.delegate?.replicaId, path: CallPath = 'cold'): Call {
    const botVersion = this.deps.pool.botVersions.of(identity.bot);
    const call = this.track(new Call(identity, { receivedAtMs, logger: this.log, replica, path, botVersion }));
    this.live.set(call.id, call);
    return call;
  }

  /**
   * Room + bot token for a new call, or a warm slot (when the call would start at once; in fleet
   * mode when the fleet let it run here, `opts.warm`); the call stays `admitting` (failures are ended and finished: provision.ts).
   */
  async provision(
    pinless: PinlessCall,
    receivedAtMs: number,
    opts: { warm?: boolean; cold?: boolean } = {},
  ): Promise<Provisioned | AdmitResult> {
    const { config, rooms, warm, admitted } = this.deps;
    this.admitting++;
    try {
      const startsAtOnce = this.queue.pending < config.admission.maxConcurrentBots && this.queue.size === 0;
      // In fleet mode only when the fleet let this replica run the call at once (`opts.warm`); never
      // while Redis cannot dedupe (degraded): the room named from the callId does it then.
      const useWarm = startsAtOnce && !opts.cold && (this.delegate ? this.delegate.active && opts.warm === true : true);
      return await provisionCall(pinless, receivedAtMs, {
        config,
        rooms,
        admitted,
        stop: this.stop.signal,
        slot: useWarm ? warm?.take() : undefined,
        route: routeResult(this.deps.route(pinless)),
        createCall: (identity, path) => this.createCall(identity, receivedAtMs, undefined, path),
        dropCall: (call) => this.live.delete(call.id),
        roomFromCallId: this.delegate !== undefined,
      });
    } finally {
      this.admitting--;
      this.checkIdle();
    }
  }

  /** Queues a provisioned call on this replica's p-queue, its wait bounded by `waitMs`. */
  runCall(call: Call, assignment: CallAssignment, waitMs: number, slot?: WarmSlot): void {
    const { config } = this.deps;
    call.advance('queued');
    const run = () =>
      // The call is over, and its bot slot free, once its worker has reported its outcome; the
      // worker's exit is waited for off the slot (a drain still waits for it), and the room is
      // released off the slot and off the call (paced deletion: room-service.ts).
      runOnWorker(call, assignment, {
        pool: this.deps.pool,
        config,
        stop: this.stop.signal,
        forward: this.deps.forward,
        ...(slot ? { worker: slot.worker } : {}),
      }).then(({ reaped }) => {
        this.reaping.add(reaped);
        void reaped.then(() => {
          this.reaping.delete(reaped);
          this.checkIdle();
        });
        this.delegate?.slotFreed(call);
        this.finish(call).catch((err: unknown) => call.log.error({ err }, 'call bookkeeping failed'));
      });
    addWithBoundedWait(this.queue, run, {
      waitMs,
      stop: this.stop.signal,
      // Ended while queued (its caller is gone: reconcile.ts): leave the queue at once.
      cancelWith: (cancel) => call.on('transition', (t) => t.to === 'ending' && t.from === 'queued' && cancel()),
    })
      .catch(async (err: unknown) => {
        // Never started: the wait timed out, the service is stopping, or the call already ended.
        if (call.outcome !== undefined) return Promise.all([slot?.worker.close('shutdown'), this.finish(call)]);
        if (this.stop.signal.aborted) call.end('shutdown', String(err), 'queue');
        else {
          // An outbound call has no held caller to send to the fallback.
          const sent = assignment.outbound ? undefined : await queueFallback(call, config, this.deps.forward, this.stop.signal);
          call.end('queue_timeout', [`waited ${waitMs} ms for a free bot`, sent].filter(Boolean).join('; '), 'queue');
        }
        return Promise.all([slot?.worker.close('shutdown'), this.finish(call)]);
      })
      .catch((err: unknown) => call.log.error({ err }, 'call bookkeeping failed'));
  }

  /** Bots this replica could start right now (p-queue slots free; 0 while draining). */
  freeSlots(): number {
    return this.draining ? 0 : Math.max(0, this.deps.config.admission.maxConcurrentBots - this.queue.pending - this.queue.size);
  }

  /** Fleet mode: the call runs on another replica; it is no longer this one's (no outcome here). */
  handOver(call: Call): void {
    this.live.delete(call.id);
    this.checkIdle();
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

  /**
   * The call is over: its worker reported its outcome (or it never had one). Its room's deletion is
   * queued and never waited for: Daily's slowest rate class must not hold a call, its slot, its
   * `call ended` line or a drain (a room not deleted in time expires by its `exp`).
   */
  finish(call: Call): Promise<void> {
    void this.deps.rooms.release(call.record.roomName);
    this.live.delete(call.id);
    call.finish();
    this.checkIdle();
    return Promise.resolve();
  }

  private checkIdle(): void {
    this.idle.check();
  }

  private prune(): void {
    const cutoff = Date.now() - DEDUPE_TTL_MS;
    for (const [k, v] of this.calls) if (v.endedAtMs !== undefined && v.endedAtMs < cutoff) this.calls.delete(k);
  }

  /**
   * Drain: refuse new calls at once, let live calls finish until `timeoutMs`, then hang up on the
   * rest (outcome `shutdown`) and wait for their workers to be reaped.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.draining = true;
    this.deps.pool.pauseRefill();
    const warmClosed = this.deps.warm?.close();
    const t0 = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.idle.wait().then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.log.warn({ live: this.live.size, afterMs: Date.now() - t0 }, 'drain timeout: hanging up on live calls');
      this.stop.abort(new PatchbayError('shutdown', 'shutting down'));
      for (const call of this.live.values())
        if (call.hasWorker && call.outcome === undefined) call.end('shutdown', 'ended by the service', 'drain');
      this.queue.clear();
      await this.idle.wait();
    }
    // The warm slots' workers close within the close escalation; their rooms' deletions, queued
    // behind others, are not waited for (what the room service has not sent at close expires by `exp`).
    let t: NodeJS.Timeout | undefined;
    await Promise.race([warmClosed, new Promise((r) => (t = setTimeout(r, this.deps.config.workers.closeTimeoutMs * 3)))]);
    clearTimeout(t);
  }

  /** Immediate stop (tests, second signal): hang up everything now. */
  async close(): Promise<void> {
    await this.drain(0);
    clearInterval(this.pruneTimer);
  }

  /** A record by our id (tests, status). */
  get(id: string): CallRecord | undefined {
    return this.live.get(id)?.record ?? [...this.calls.values()].find((e) => e.call?.id === id)?.call?.record;
  }

  /** For assertions: workers that this dispatcher is running calls on. */
  assertNoUnexpectedState(): void {
    if (this.queue.pending + this.queue.size !== 0 || this.live.size !== 0) {
      const what = `${this.queue.pending} running, ${this.queue.size} queued, ${this.live.size} live`;
      throw new PatchbayError('leak', `dispatcher not idle: ${what}`);
    }
  }
}
