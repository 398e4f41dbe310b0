/**
 * Fleet mode: many replicas answering as one service, coordinated through one Redis.
 *
 *   claim(callId)      exactly-once admission (the first replica owns the call; a duplicate gets its answer)
 *   enqueue / take     one fleet-wide queue (a Redis Stream with a consumer group), bounded fleet-wide
 *   ack / finish       the bot forwarded the call / the call ended here (registry of live calls)
 *   routeEvent         a domain webhook for a call another replica runs, to that replica's inbox stream
 *   heartbeats         a lost replica is cleaned up once, by one survivor ('replica-lost')
 *   degraded           Redis unreachable: every call fails fast, the dispatcher falls back to local behaviour
 *
 * Keys (all under `pb:{ns}:`, one hash slot): docs/scaling.md. The Fleet never decides an outcome
 * or touches Daily: it tells the dispatcher, which does.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import os from 'node:os';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { closeConnection, createConnection, evictionPolicy, isConnectionError, scriptCaller, type ScriptCaller } from './connection.js';
import { FleetQueue } from './queue.js';
import type { ScriptName } from './scripts.js';
import { parseReap, parseStatus } from './status.js';
import { claimCall, ClaimBook, num, replyList, reserveCall, str } from './claims.js';
import { logStateLost, RedisHealth, SLOW_OK, warnIfEvicting, withTimeout } from './health.js';
import { firstSeen, ownerOfRoom, takeLostMarks } from './routing.js';
import { FleetUnavailableError, resolveOptions, type ReplicaLost, type ReserveResult, type ResolvedFleetOptions } from './types.js';
import type { ClaimResult, EnqueueResult, FleetEvents, FleetOptions, FleetStatus, TakenCall } from './types.js';
import { errorMessage } from '../core/errors.js';

export const GROUP = 'replicas';
const REAP_LOCK_MS = 60_000;

export class Fleet<P = unknown> extends EventEmitter<FleetEvents<P>> {
  readonly replicaId: string;
  /** `pb:{ns}:` */
  readonly prefix: string;
  readonly queueKey: string;
  readonly opts: ResolvedFleetOptions;
  /** The command connection (scripts). */
  readonly redis: Redis;
  readonly log: Logger | undefined;
  private readonly script: ScriptCaller;
  private readonly queue: FleetQueue<P>;
  private _degraded = false;
  private closed = false;
  private draining = false;
  private started = false;
  private readonly startedAtMs = Date.now();
  private hbTimer: NodeJS.Timeout | undefined;
  private reforming: Promise<void> | undefined;
  private runId: string | undefined;
  /** Calls running here (callId → room): re-published when the fleet re-forms. */
  readonly live = new Map<string, string>();
  /** The last fleet view (fleetStatus), for gauges read at scrape time. */
  lastSeen: { replicas: number; queued: number } | undefined;
  /** Claims won here or made while apart (with their answers): published again whenever the fleet re-forms or loses its state. */
  private readonly claims: ClaimBook;
  /** Slow or down: answers and failures of Redis operations, with hysteresis. */
  private readonly health: RedisHealth;
  /** The fleet's epoch as last seen ('' before the first heartbeat): another one, or none, means Redis lost the fleet's state. */
  private epoch = '';
  /** Times Redis was found to have lost the fleet's state (restart, FLUSHALL, eviction, empty primary). */
  stateLosses = 0;
  /** Redis's maxmemory-policy as last read (undefined: unknown). */
  evictionPolicy: string | undefined;
  /** Finishes that could not reach Redis: retried when it returns. */
  private readonly unfinished = new Map<string, string>();

  constructor(options: FleetOptions) {
    super();
    this.replicaId = options.replicaId ?? `${os.hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    if (!/^[A-Za-z0-9._:-]{1,100}$/.test(this.replicaId)) throw new Error('fleet: replicaId must be 1-100 of [A-Za-z0-9._:-]');
    const ns = options.namespace ?? 'default';
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(ns)) throw new Error('fleet: namespace must be 1-64 of [A-Za-z0-9._-]');
    this.prefix = `pb:{${ns}}:`;
    this.queueKey = `${this.prefix}queue`;
    this.opts = resolveOptions(options);
    this.claims = new ClaimBook(this.opts.claimTtlMs);
    this.health = new RedisHealth(this.opts.degradeAfterMs);
    if (this.opts.replicaLostMs <= this.opts.heartbeatMs) throw new Error('fleet: replicaLostMs must exceed heartbeatMs');
    this.log = options.logger?.child({ component: 'fleet', replica: this.replicaId });
    this.redis = createConnection(this.opts.url, Math.max(this.opts.opTimeoutMs, this.opts.admitTimeoutMs), false);
    this.script = scriptCaller(this.redis);
    this.queue = new FleetQueue<P>(this);
    this.redis.on('close', () => this.markDegraded('connection closed'));
    this.redis.on('ready', () => {
      if (this.started && !this.closed) void this.reform().catch(() => undefined);
    });
  }

  /** True while Redis is unreachable: callers must fall back to per-replica behaviour. */
  get degraded(): boolean {
    return this._degraded;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Connects and joins the fleet. Never throws for an unreachable Redis: the Fleet starts degraded and re-forms later. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.hbTimer = setInterval(() => void this.heartbeat().catch(() => undefined), this.opts.heartbeatMs);
    this.hbTimer.unref();
    try {
      await this.redis.connect();
    } catch (err) {
      this.markDegraded(errorMessage(err));
    }
    this.queue.startInbox();
    if (this.redis.status === 'ready') await this.reform().catch(() => undefined);
  }

  /**
   * One Redis operation: refused at once while disconnected; otherwise bounded by `opTimeoutMs`, or
   * by `admitTimeoutMs` for the steps of a webhook's answer and the heartbeat (a slow Redis is not a
   * down one). A slow answer fails this operation only: the replica degrades when the connection is
   * down, or when Redis has answered nothing for `degradeAfterMs`.
   */
  async op<T>(
    what: string,
    f: () => Promise<T>,
    budgetMs = SLOW_OK.has(what) ? this.opts.admitTimeoutMs : this.opts.opTimeoutMs,
  ): Promise<T> {
    if (this.closed) throw new FleetUnavailableError(what, new Error('fleet closed'));
    if (this.redis.status !== 'ready') {
      this.markDegraded(`redis ${this.redis.status}`);
      throw new FleetUnavailableError(what, new Error(`redis ${this.redis.status}`));
    }
    try {
      const r = await withTimeout(f(), budgetMs, what);
      this.health.answered();
      return r;
    } catch (err) {
      if (!isConnectionError(err)) {
        this.health.answered();
        throw err;
      }
      const why = this.health.unanswered(this.redis.status === 'ready', errorMessage(err));
      if (why) this.markDegraded(why);
      throw new FleetUnavailableError(what, err);
    }
  }

  run(name: ScriptName, ...args: (string | number)[]): Promise<unknown> {
    return this.op(name, () => this.script(name, this.queueKey, this.prefix, ...args));
  }

  markDegraded(why: string): void {
    if (this.closed || !this.started || this._degraded) return;
    this._degraded = true;
    this.log?.error(
      { why, live: this.live.size },
      '!!! FLEET DEGRADED: Redis is unreachable. This replica now dedupes and queues on its own (per-replica admission, no takeover, local rate limits) until Redis returns. !!!',
    );
    this.emitSafely('degraded', true);
  }

  /** A listener that throws must not turn a Fleet call's FleetUnavailableError into something else. */
  private emitSafely<K extends keyof FleetEvents<P>>(event: K, ...args: FleetEvents<P>[K]): void {
    try {
      (this.emit as (e: K, ...a: FleetEvents<P>[K]) => boolean)(event, ...args);
    } catch (err) {
      this.log?.error({ err, event }, 'a fleet event listener threw');
    }
  }

  /** Rejoin after (re)connecting: consumer group, live calls, pending finishes, heartbeat. */
  reform(): Promise<void> {
    this.reforming ??= this.doReform().finally(() => (this.reforming = undefined));
    return this.reforming;
  }

  private async doReform(): Promise<void> {
    const info = await this.op('reform', () => this.redis.info('server'));
    const runId = /run_id:(\w+)/.exec(info)?.[1];
    const beat = await this.beat();
    const restarted = (this.runId !== undefined && runId !== this.runId) || beat.stateLost;
    this.runId = runId;
    for (const [callId, room] of [...this.unfinished]) {
      await this.finishInRedis(callId, room);
      this.unfinished.delete(callId);
    }
    await this.republish(restarted);
    this.evictionPolicy = warnIfEvicting(await evictionPolicy(this.redis), this.evictionPolicy, this.log);
    if (this._degraded) {
      this._degraded = false;
      this.log?.warn(
        { live: this.live.size, redisRestarted: restarted },
        'fleet re-formed: Redis is back; fleet-wide admission and queueing resumed',
      );
      this.emitSafely('degraded', false);
    }
  }

  /**
   * Publishes what this replica holds: its live calls, every claim it won or made while apart (with
   * its first answer; a claim another replica holds meanwhile is left alone) and, when Redis lost the
   * fleet's state (`lost`), the calls it queued and nobody took. Never the others' state: each
   * replica publishes its own.
   */
  private async republish(lost: boolean): Promise<void> {
    await this.ensureGroup();
    const flat = [...this.live].flat();
    for (let i = 0; i < flat.length; i += 2 * 500)
      await this.run('fleetPublishCalls', this.replicaId, this.opts.claimTtlMs, ...flat.slice(i, i + 2 * 500));
    for (const batch of this.claims.batches()) await this.run('fleetRestoreClaims', this.replicaId, ...batch);
    await this.queue.reformed(lost);
  }

  /** A claim made while Redis was unreachable (this replica admitted the call on its own): published when the fleet re-forms. */
  rememberClaim(callId: string, answer: unknown): void {
    this.claims.remember(callId, JSON.stringify(answer));
  }

  async ensureGroup(): Promise<void> {
    try {
      await this.op('group', () => this.redis.xgroup('CREATE', this.queueKey, GROUP, '0', 'MKSTREAM'));
    } catch (err) {
      if (!/BUSYGROUP/.test(errorMessage(err))) throw err;
    }
  }

  // ---- admission (claims.ts) -----------------------------------------------------------------

  /** Exactly-once admission: the first claim of `callId` wins; a duplicate learns the owner and, once stored, its answer. */
  claim(callId: string): Promise<ClaimResult> {
    return claimCall(this, this.claims, callId);
  }

  /** Stores the owner's answer with its claim, for duplicates at any replica. */
  async setAnswer(callId: string, answer: unknown): Promise<boolean> {
    const json = JSON.stringify(answer);
    this.claims.answer(callId, json);
    return (await this.run('fleetSetAnswer', callId, this.replicaId, json)) === 1;
  }

  /** Polls a duplicate's claim until the owner stored its answer (or `timeoutMs`). */
  async waitAnswer(callId: string, timeoutMs: number, everyMs = 20): Promise<ClaimResult> {
    const deadline = Date.now() + timeoutMs;
    for (let c = await this.claim(callId); ; c = await this.claim(callId)) {
      if (c.kind === 'won' || c.answer !== undefined || Date.now() >= deadline) return c;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }

  /** The owner refused the call (busy, room failed): forget the claim so a retry can be admitted. */
  async release(callId: string): Promise<boolean> {
    this.claims.forget(callId);
    return (await this.run('fleetRelease', callId, this.replicaId)) === 1;
  }

  /** Holds the call's place in the fleet-wide bound before its room is made (claims.ts `reserveCall`). */
  reserve(callId: string, waitMs: number): Promise<ReserveResult> {
    return reserveCall(this, callId, waitMs);
  }

  /** Runs `callId` here at once, past the queue (queue.ts `runHere`). */
  runHere(callId: string, room: string): Promise<boolean> {
    return this.draining ? Promise.resolve(false) : this.queue.runHere(callId, room);
  }

  /** A call running here moved to another room (a warm slot's). */
  publishRoom(callId: string, room: string): Promise<void> {
    return this.queue.publishRoom(callId, room);
  }

  /** Calls running here without the fleet knowing, registered with their claims (queue.ts `adopt`). */
  adopt(calls: Array<{ callId: string; room: string; answer?: unknown }>): Promise<void> {
    const withJson = calls.map((c) => ({ ...c, answer: c.answer === undefined ? '' : JSON.stringify(c.answer) }));
    for (const c of withJson) this.claims.remember(c.callId, c.answer);
    return this.queue.adopt(withJson);
  }

  /** Puts an admitted call in the fleet queue; `waitMs` bounds its wait (QUEUE_TIMEOUT_MS). */
  enqueue(call: { callId: string; room: string; payload: P }, waitMs: number): Promise<EnqueueResult> {
    return this.queue.enqueue(call, waitMs);
  }

  /** Takes the next live entry, if any (call when a slot is free). */
  take(hasCapacity?: () => boolean): Promise<TakenCall<P> | undefined> {
    return this.draining ? Promise.resolve(undefined) : this.queue.take(false, hasCapacity);
  }

  /**
   * A consumer loop: blocks on the queue while `hasCapacity()`; each entry taken goes to `onCall`
   * (return false to give it back). Call `wake()` when a slot frees.
   */
  startConsumer(hasCapacity: () => boolean, onCall: (c: TakenCall<P>) => boolean | void): void {
    this.queue.startConsumer(hasCapacity, onCall);
  }

  wake(): void {
    this.queue.wake();
  }

  /** The caller hung up on hold (or the owner timed it out): true if it was still waiting (now dropped). */
  async cancel(callId: string): Promise<boolean> {
    const ok = (await this.run('fleetCancel', callId)) === 1;
    this.queue.forget(callId);
    return ok;
  }

  /** The bot forwarded the call: it will not be handed over any more. */
  ack(callId: string): Promise<void> {
    return this.queue.ack(callId);
  }

  /** Hands a taken call back to the queue (it will not run here). */
  giveBack(callId: string): Promise<void> {
    return this.queue.giveBack(callId);
  }

  /** The call ended here: out of the registry (and acked, if it never was). Never throws. */
  async finish(callId: string): Promise<void> {
    const room = this.live.get(callId) ?? '';
    this.live.delete(callId);
    try {
      await this.finishInRedis(callId, room);
    } catch {
      this.unfinished.set(callId, room);
    }
  }

  private async finishInRedis(callId: string, room: string): Promise<void> {
    await this.queue.ack(callId);
    await this.run('fleetFinish', this.replicaId, callId, room);
  }

  /** Calls this replica admitted that are not yet confirmed taken; handing them to the caller forgets them here. */
  takeOverUnconfirmed(): Array<{ callId: string; room: string; payload: P }> {
    return this.queue.takeOverUnconfirmed();
  }

  /** Fleet-wide count of calls waiting for a bot. */
  async queuedCount(): Promise<number> {
    return (await this.fleetStatus()).queued;
  }

  // ---- domain events ---------------------------------------------------------------------------

  /** The replica to tell about `room` (running its bot, or queued it), with the call's id (routing.ts). */
  ownerOfRoom(room: string): Promise<{ replicaId: string; callId: string } | undefined> {
    return ownerOfRoom(this, room);
  }

  /** Fleet-wide dedupe: true the first time `eventId` is seen (within `ttlMs`). */
  firstSeen(eventId: string, ttlMs: number): Promise<boolean> {
    return firstSeen(this, eventId, ttlMs);
  }

  /** Delivers `event` to `owner`'s inbox; 'owner_gone' → the receiving replica handles it itself. */
  async routeEvent(owner: string, event: unknown): Promise<'routed' | 'owner_gone'> {
    return (await this.run('fleetRoute', owner, JSON.stringify(event))) === 1 ? 'routed' : 'owner_gone';
  }

  // ---- replicas --------------------------------------------------------------------------------

  /** Stop taking calls from the fleet queue (SIGTERM); this replica's free slots count as 0. */
  async setDraining(draining = true): Promise<void> {
    this.draining = draining;
    await this.beat().catch(() => undefined);
  }

  /** A heartbeat now; then the clean-up of any replica whose heartbeat expired. */
  async heartbeat(): Promise<ReplicaLost[]> {
    if (this.closed) return [];
    const { lost, stateLost } = await this.beat();
    // Hysteresis: back from a slow spell only after a few answers in a row.
    if (this._degraded && this.redis.status === 'ready' && this.health.steady) await this.reform();
    else if (stateLost) await this.republish(true);
    const out: ReplicaLost[] = [];
    for (const id of lost) {
      const r = await this.reap(id);
      if (r) out.push(r);
    }
    return out;
  }

  private async beat(): Promise<{ lost: string[]; stateLost: boolean }> {
    const r = replyList(
      await this.run(
        'fleetHeartbeat',
        this.replicaId,
        this.opts.replicaLostMs,
        this.opts.capacity,
        this.draining ? 1 : 0,
        this.queue.unconfirmedCount,
        JSON.stringify(this.opts.meta),
        this.startedAtMs,
        this.epoch,
        randomBytes(8).toString('hex'),
      ),
    );
    this.epoch = str(r[2]);
    const stateLost = num(r[1]) === 1;
    if (stateLost) logStateLost(this.log, { losses: ++this.stateLosses, live: this.live.size, claims: this.claims.size });
    if (num(r[0]) === 1) await this.presumedLost();
    return { lost: r.slice(3).map(str), stateLost };
  }

  /** The fleet took this replica for lost (cut off or frozen): the listener hears which calls survivors recorded. */
  private async presumedLost(): Promise<void> {
    this.emitSafely('presumed-lost', await takeLostMarks(this));
    const flat = [...this.live].flat();
    if (flat.length > 0) await this.run('fleetPublishCalls', this.replicaId, this.opts.claimTtlMs, ...flat);
  }

  /** Cleans up `lostId` if its heartbeat expired and no other survivor did it first. */
  async reap(lostId: string): Promise<ReplicaLost | undefined> {
    const r = (await this.run('fleetReap', GROUP, lostId, REAP_LOCK_MS, this.opts.requeueWaitMs)) as [number, number?, ...string[]];
    if (r[0] !== 1) return undefined;
    const lost = parseReap(lostId, r);
    const { calls, requeued } = lost;
    this.log?.warn(
      { lost: lostId, calls: calls.length, requeued: requeued.length },
      'replica lost: its calls are ours to record, its taken-but-unforwarded calls are back in the queue',
    );
    this.emitSafely('replica-lost', lost);
    return lost;
  }

  /** Every replica's capacity, load and live calls. */
  async fleetStatus(): Promise<FleetStatus> {
    const { queued, replicas } = parseStatus((await this.run('fleetStatus')) as string);
    this.lastSeen = { replicas: replicas.filter((r) => r.alive).length, queued };
    return { replicaId: this.replicaId, degraded: this._degraded, queued, replicas };
  }

  /** Leaves the fleet (a clean exit: nobody reaps us). Calls still live here are not handed over. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.hbTimer) clearInterval(this.hbTimer);
    await this.queue.stop();
    if (this.redis.status === 'ready') await this.run('fleetLeave', this.replicaId).catch(() => undefined);
    this.closed = true;
    await closeConnection(this.redis, this.opts.opTimeoutMs);
  }

  /** For the queue module: a blocking connection of this fleet's Redis. */
  blockingConnection(): Redis {
    return createConnection(this.opts.url, Math.max(this.opts.opTimeoutMs, this.opts.admitTimeoutMs), true);
  }

  get isClosed(): boolean {
    return this.closed;
  }
}
