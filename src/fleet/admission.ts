/**
 * Fleet mode (REDIS_URL, docs/scaling.md): the dispatcher's admission, queue and domain events
 * through the Fleet (src/fleet). Loaded only when `config.fleet` is set.
 *
 *   admit:    claim(callId) → duplicate: the owner's answer (waitAnswer) | won: reserve → room + token
 *             (dispatcher.provision) → enqueue → setAnswer → 200. The call waits `admitting` here.
 *   consumer: a free p-queue slot takes the next entry, here or from another replica; the call then
 *             runs on this replica's p-queue (dispatcher.runCall), is acked at `forward_sent` and
 *             finished (registry) when it ended.
 *   events:   domain webhooks deduped fleet-wide and routed to the replica that owns the room.
 *   loss:     a lost replica's calls are recorded `replica_lost` (once, here) and their rooms deleted.
 *   degraded: Redis unreachable → per-replica admission; calls waiting here run here.
 */
import type { Logger } from 'pino';
import type { Config } from '../core/config.js';
import type { RoomService } from '../daily/room-service.js';
import type { PinlessCall } from '../daily/types.js';
import type { Fleet, FleetStatus, TakenCall } from './index.js';
import type { CallAssignment } from '../workers/protocol.js';
import type { AdmissionDelegate, AdmitResult } from '../admission/types.js';
import type { Call } from '../call/call.js';
import type { Dispatcher } from '../admission/dispatcher.js';
import { answerOf, logPresumedLost, LostCalls, recordElsewhere, type StoredAnswer } from './lost.js';
import { RedisReadiness } from './readiness.js';
import type { WarmSlot } from '../workers/parent/warm-slots.js';
import type { DomainEventInput, Reconciler } from '../call/reconcile.js';
import { errorMessage } from '../core/errors.js';

export interface FleetAdmissionDeps {
  config: Config;
  logger: Logger;
  dispatcher: Dispatcher;
  reconciler: Reconciler;
  rooms: RoomService;
  fleet: Fleet<CallAssignment>;
}

interface Waiting {
  call: Call;
  assignment: CallAssignment;
  deadlineMs: number;
  timer: NodeJS.Timeout;
}

export type DomainEventResult = { duplicate: true } | { duplicate?: false; action: string; id?: string };

/** A duplicate waits this long for the owner's answer before answering 503 (the balancer retries). */
const ANSWER_WAIT_MS = 2_000;
/** Fleet-wide dedupe of domain events (Daily's retries span minutes). */
const EVENT_DEDUPE_MS = 60 * 60_000;
const STATUS_REFRESH_MS = 5_000;
const ENDING_EVENTS = ['dialin.stopped', 'meeting.ended'];

/** `inFlight`: another replica is admitting this very call (dispatcher.ts offers no callback for it). */
const busy = (message: string, reason: 'queue_full' | 'room_failed' = 'queue_full', inFlight = false): AdmitResult =>
  inFlight ? { kind: 'busy', reason, retryAfterSec: 1, message, inFlight } : { kind: 'busy', reason, retryAfterSec: 1, message };

export class FleetAdmission implements AdmissionDelegate {
  private readonly log: Logger;
  /** Calls admitted here, waiting in the fleet queue (not yet taken). */
  private readonly waiting = new Map<string, Waiting>();
  /** Calls that went through the fleet on this replica (by callId): finished in Redis when they end. */
  private readonly mine = new Map<string, Call>();
  private refresh: NodeJS.Timeout | undefined;
  /** Calls of lost replicas, recorded here (or left to their owner while its bot is still in the room). */
  private readonly lost: LostCalls;
  private readonly readiness: RedisReadiness;

  constructor(private readonly deps: FleetAdmissionDeps) {
    this.log = deps.logger.child({ component: 'fleet-admission', replica: deps.fleet.replicaId });
    this.lost = new LostCalls({ ...deps, log: this.log });
    const { fleet, dispatcher } = deps;
    fleet.on('call-taken', ({ callId, by }) => this.takenElsewhere(callId, by));
    fleet.on('call-expired', ({ callId }) =>
      this.expire(callId, `expired in the fleet queue after ${deps.config.admission.queueTimeoutMs} ms`),
    );
    fleet.on('call-orphaned', ({ callId, room, owner }) => {
      const detail = `waited ${deps.config.admission.queueTimeoutMs} ms in the fleet queue; its owner ${owner} is gone; recorded by ${fleet.replicaId}`;
      void recordElsewhere({ callId, room }, owner, 'queue_timeout', detail, 'queue', deps).catch((err: unknown) =>
        this.log.error({ err, callId }, 'fleet: recording an orphaned call failed'),
      );
    });
    fleet.on('domain-event', (ev) => void this.handleHere(ev as DomainEventInput, undefined, undefined));
    fleet.on('replica-lost', (lost) => this.lost.settle(lost));
    fleet.on('presumed-lost', (recorded) => logPresumedLost(this.log, dispatcher.liveCalls().length, recorded));
    this.readiness = new RedisReadiness(fleet, deps.config.fleet?.readyWaitMs ?? 0, this.log);
    fleet.on('degraded', (d) => (d ? this.takeOver() : void this.adoptLocal()));
    // Calls that never got a bot here (timed out, hung up on hold) leave the fleet when they end.
    dispatcher.on('transition', (t) => {
      if (t.to === 'ended') this.finishInFleet(t.call);
      // Admitted on this replica alone (Redis unreachable): its claim is published when the fleet
      // re-forms — ended or not, for as long as a claim lives — so a late duplicate still dedupes.
      else if (t.to === 'queued' && !this.mine.has(t.call.record.callId))
        fleet.rememberClaim(t.call.record.callId, answerOf(t.call, t.call.record.timeline.received ?? Date.now(), 'queued'));
    });
  }

  /**
   * The bot slot is free: the fleet counts it free at once (the room is deleted after, paced), and
   * the consumer looks at the queue now rather than at its next poll.
   */
  slotFreed(call: Call): void {
    this.finishInFleet(call);
    this.deps.fleet.wake();
  }

  private finishInFleet(call: Call): void {
    const callId = call.record.callId;
    if (this.mine.get(callId) !== call) return;
    this.mine.delete(callId);
    void this.deps.fleet.finish(callId);
  }

  get active(): boolean {
    return !this.deps.fleet.degraded && !this.deps.fleet.isClosed;
  }

  /** Not ready yet: Redis never reached since start-up, within FLEET_READY_WAIT_MS (readiness.ts). */
  get waitingForRedis(): boolean {
    return this.readiness.waiting;
  }

  get replicaId(): string {
    return this.deps.fleet.replicaId;
  }

  /** Joins the fleet (never throws: an unreachable Redis starts degraded) and starts taking calls. */

  async start(): Promise<void> {
    const { fleet, dispatcher } = this.deps;
    await fleet.start();
    this.readiness.started();
    fleet.startConsumer(
      () => dispatcher.freeSlots() > 0,
      (t) => this.onTaken(t),
    );
    this.refresh = setInterval(() => void fleet.fleetStatus().catch(() => undefined), STATUS_REFRESH_MS);
    this.refresh.unref();
    void fleet.fleetStatus().catch(() => undefined);
  }

  async admit(p: PinlessCall, receivedAtMs: number): Promise<AdmitResult> {
    const { fleet, dispatcher, config } = this.deps;
    const waitMs = config.admission.queueTimeoutMs;
    let claim;
    try {
      claim = await fleet.claim(p.callId);
      if (claim.kind === 'duplicate') {
        if (claim.answer === undefined) claim = await fleet.waitAnswer(p.callId, ANSWER_WAIT_MS);
        if (claim.kind === 'duplicate') {
          const a = claim.answer as StoredAnswer | undefined;
          if (!a?.id) return busy(`call ${p.callId} is being admitted by replica ${claim.owner}; try again`, 'queue_full', true);
          return {
            kind: 'accepted',
            duplicate: true,
            record: { id: a.id, callId: a.callId, roomUrl: a.roomUrl, bot: a.bot, state: a.state },
          };
        }
      }
      // A warm slot here and nobody waiting in the fleet: the call runs here at once (one update).
      const warmRoom = dispatcher.freeSlots() > 0 ? dispatcher.warmSlots?.nextRoom() : undefined;
      if (warmRoom !== undefined && (await fleet.runHere(p.callId, warmRoom))) return await this.admitHere(p, receivedAtMs, warmRoom);
      const r = await fleet.reserve(p.callId, waitMs);
      if (r.kind === 'fleet_full') {
        await fleet.release(p.callId).catch(() => undefined);
        return busy(`the fleet is full: ${r.backlog} calls waiting, ${r.freeSlots} free bot slots`);
      }
    } catch (err) {
      return this.local(p, receivedAtMs, err);
    }
    const prov = await dispatcher.provision(p, receivedAtMs);
    if (!('call' in prov)) {
      await fleet.cancel(p.callId).catch(() => undefined);
      await fleet.release(p.callId).catch(() => undefined);
      return prov;
    }
    const { call, assignment } = prov;
    this.mine.set(p.callId, call);
    // Registered before the entry exists: this replica's own consumer may take it at once.
    this.wait(call, assignment, waitMs);
    try {
      const q = await fleet.enqueue({ callId: p.callId, room: assignment.roomName, payload: assignment }, waitMs);
      if (q.kind === 'fleet_full') throw new Error('fleet full after the reservation');
    } catch (err) {
      if (this.unwait(p.callId)) {
        call.log.warn({ err: errorMessage(err) }, 'fleet: could not queue the call fleet-wide; it waits on this replica');
        dispatcher.runCall(call, assignment, waitMs);
      }
    }
    const answer = answerOf(call, receivedAtMs, 'queued');
    await fleet.setAnswer(p.callId, answer).catch(() => undefined);
    return { kind: 'accepted', duplicate: false, record: answer };
  }

  /** The fleet registered the call as running here (`runHere`): a warm slot if one is still ready, else a room of its own. */
  private async admitHere(p: PinlessCall, receivedAtMs: number, registeredRoom: string): Promise<AdmitResult> {
    const { fleet, dispatcher, config } = this.deps;
    const prov = await dispatcher.provision(p, receivedAtMs, { warm: true });
    if (!('call' in prov)) {
      await fleet.finish(p.callId);
      await fleet.release(p.callId).catch(() => undefined);
      return prov;
    }
    const { call, assignment, slot } = prov;
    this.mine.set(p.callId, call);
    dispatcher.runCall(call, assignment, config.admission.queueTimeoutMs, slot);
    const answer = answerOf(call, receivedAtMs, call.record.state);
    // The slot taken was not the one registered (it died a moment ago): register the room it runs in.
    if (assignment.roomName !== registeredRoom)
      await fleet.adopt([{ callId: p.callId, room: assignment.roomName, answer }]).catch(() => undefined);
    await fleet.setAnswer(p.callId, answer).catch(() => undefined);
    return { kind: 'accepted', duplicate: false, record: answer };
  }

  /** Redis failed mid-admission: this replica admits on its own (degraded). */
  private local(p: PinlessCall, receivedAtMs: number, err: unknown): Promise<AdmitResult> {
    const { dispatcher, config } = this.deps;
    this.log.warn({ callId: p.callId, err: errorMessage(err) }, 'fleet unavailable: admitting this call on this replica alone');
    if (dispatcher.stats().full)
      return Promise.resolve(
        busy(`all ${config.admission.maxConcurrentBots} bots busy and ${config.admission.maxQueuedCalls} calls queued`),
      );
    return dispatcher.admitLocal(p, receivedAtMs);
  }

  private wait(call: Call, assignment: CallAssignment, waitMs: number): void {
    const timer = setTimeout(() => {
      this.deps.fleet.cancel(call.record.callId).then(
        // Not waiting any more and not taken here: taken elsewhere, or dropped at its deadline.
        (dropped) =>
          dropped
            ? this.expire(call.record.callId, `waited ${waitMs} ms for a free bot in the fleet`)
            : void this.notWaiting(call.record.callId, waitMs),
        () => this.expire(call.record.callId, `waited ${waitMs} ms for a free bot (fleet unreachable)`),
      );
    }, waitMs);
    timer.unref();
    this.waiting.set(call.record.callId, { call, assignment, deadlineMs: Date.now() + waitMs, timer });
  }

  /** The wait ended but the entry was gone: the claim says whether a replica took it (its notice may be lost). */
  private async notWaiting(callId: string, waitMs: number): Promise<void> {
    try {
      const c = await this.deps.fleet.claim(callId);
      if (c.kind === 'duplicate' && c.runner) return this.takenElsewhere(callId, c.runner);
    } catch {
      /* unknown: the wait is over either way */
    }
    this.expire(callId, `waited ${waitMs} ms for a free bot in the fleet`);
  }

  /** Another replica runs the call: this one's object goes (no outcome here). */
  private takenElsewhere(callId: string, by: string): void {
    const w = this.unwait(callId);
    if (!w) return;
    this.mine.delete(callId);
    w.call.log.info({ by }, 'fleet: call taken by another replica');
    this.deps.dispatcher.handOver(w.call);
  }

  private unwait(callId: string): Waiting | undefined {
    const w = this.waiting.get(callId);
    if (!w) return undefined;
    clearTimeout(w.timer);
    this.waiting.delete(callId);
    return w;
  }

  private expire(callId: string, detail: string): void {
    const w = this.unwait(callId);
    if (!w) return;
    w.call.end('queue_timeout', detail, 'queue');
    void this.deps.dispatcher.finish(w.call);
  }

  /** The consumer took an entry (a slot is free: the call starts at once on this replica's p-queue). */
  private onTaken(t: TakenCall<CallAssignment>): boolean {
    const { dispatcher, config } = this.deps;
    const a = t.payload;
    if (!a?.callId || !a.roomName) {
      this.log.error({ callId: t.callId }, 'fleet: an entry without a call; dropped');
      void this.deps.fleet.finish(t.callId);
      return true;
    }
    let call = this.unwait(t.callId)?.call;
    if (!call && dispatcher.liveCalls().some((r) => r.callId === t.callId)) {
      // Already running here on its own (queued while Redis failed, or taken over while degraded).
      this.log.warn({ callId: t.callId }, 'fleet: an entry for a call already running here; not started twice');
      void this.deps.fleet.finish(t.callId);
      return true;
    }
    if (!call) {
      const { id, callId, callDomain, from, to, sipHeaders, bot, roomName, roomUrl } = a;
      call = dispatcher.createCall({ id, callId, callDomain, from, to, sipHeaders, bot, roomName, roomUrl: '' }, a.receivedAtMs);
      call.roomCreated(roomUrl);
      call.log.info({ owner: t.owner, attempt: t.attempt }, 'fleet: running a call admitted by another replica');
    }
    this.mine.set(t.callId, call);
    const { assignment, slot } = this.warmIfReady(call, a);
    const onChanged = (c: Call) => {
      if (c.record.timeline.forward_sent === undefined) return;
      c.off('changed', onChanged);
      this.deps.fleet.ack(t.callId).catch(() => undefined);
    };
    call.on('changed', onChanged);
    dispatcher.runCall(call, assignment, config.admission.queueTimeoutMs, slot);
    return true;
  }

  /**
   * A call taken from the fleet queue runs in a warm slot of this replica when one is ready (one
   * update, no join or dial-in wait); the room made at admission is then not needed and deleted.
   */
  private warmIfReady(call: Call, a: CallAssignment): { assignment: CallAssignment; slot?: WarmSlot } {
    const { dispatcher, fleet, rooms } = this.deps;
    if (a.warm) return { assignment: a };
    const slot = dispatcher.warmSlots?.take();
    if (!slot) return { assignment: a };
    const { roomName, roomUrl, token } = slot.room;
    call.movedToWarmRoom(roomName, roomUrl);
    void fleet.publishRoom(call.record.callId, roomName).catch(() => undefined);
    void rooms.release(a.roomName);
    return { assignment: { ...a, roomName, roomUrl, token, warm: { sipEndpoint: slot.sipEndpoint } }, slot };
  }

  /**
   * A verified domain event (POST /webhooks/daily): deduped fleet-wide, handled by the replica
   * whose room it is. `localFirstSeen` is the route's own dedupe (used while degraded).
   */
  async domainEvent(ev: DomainEventInput, localFirstSeen: () => boolean): Promise<DomainEventResult> {
    const { fleet, reconciler } = this.deps;
    const firstHere = localFirstSeen();
    let first: boolean;
    try {
      first = await fleet.firstSeen(ev.id, EVENT_DEDUPE_MS);
    } catch {
      return firstHere ? reconciler.reconcile(ev) : { duplicate: true };
    }
    if (!first) return { duplicate: true };
    if (ev.room === undefined) return reconciler.reconcile(ev);
    let owner;
    try {
      owner = await fleet.ownerOfRoom(ev.room);
      if (owner && owner.replicaId !== fleet.replicaId && (await fleet.routeEvent(owner.replicaId, ev)) === 'routed')
        return { action: 'routed' };
    } catch {
      /* handled here */
    }
    return this.handleHere(ev, owner?.callId, owner !== undefined && owner.replicaId !== fleet.replicaId ? owner.replicaId : undefined);
  }

  /** An event for this replica (or for the room of `goneOwner`, a replica that did not take it). */
  private async handleHere(ev: DomainEventInput, callId: string | undefined, goneOwner: string | undefined): Promise<DomainEventResult> {
    const { fleet, reconciler } = this.deps;
    const w = callId ? this.waiting.get(callId) : [...this.waiting.values()].find((x) => x.call.record.roomName === ev.room);
    if (w && ENDING_EVENTS.includes(ev.type)) {
      const id = w.call.record.callId;
      // Still waiting in the fleet queue: drop it there; if it was taken meanwhile, its runner ends it.
      if (await fleet.cancel(id).catch(() => true)) {
        const x = this.unwait(id);
        if (x) {
          x.call.end('caller_hangup_on_hold', `${ev.type} webhook (event ${ev.id}) while waiting in the fleet queue`, 'reconcile');
          void this.deps.dispatcher.finish(x.call);
        }
      }
      return { action: 'end_scheduled', id: w.call.id };
    }
    if (goneOwner !== undefined && callId && ev.room && ENDING_EVENTS.includes(ev.type) && !this.deps.dispatcher.findByRoom(ev.room)) {
      // The owner is gone: a call it queued and nobody took is dropped, its room deleted here.
      if (await fleet.cancel(callId).catch(() => false)) {
        this.log.warn(
          { callId, room: ev.room, event: ev.type },
          'fleet: the owner of a waiting call is gone; dropped it, recorded it and deleted its room',
        );
        const detail = `${ev.type} webhook (event ${ev.id}) while waiting in the fleet queue; its owner ${goneOwner} is gone; recorded by ${fleet.replicaId}`;
        await recordElsewhere({ callId, room: ev.room }, goneOwner, 'caller_hangup_on_hold', detail, 'reconcile', this.deps).catch(
          (err: unknown) => this.log.error({ err, callId }, 'fleet: recording a call of a gone owner failed'),
        );
        return { action: 'owner_gone' };
      }
    }
    return reconciler.reconcile(ev);
  }

  /** Redis is gone: calls waiting here that nobody confirmed taking run here. */
  private takeOver(): void {
    const now = Date.now();
    const handed = this.deps.fleet.takeOverUnconfirmed();
    let n = 0;
    for (const u of handed) {
      const w = this.unwait(u.callId);
      if (!w) continue;
      n++;
      this.mine.delete(u.callId);
      this.deps.dispatcher.runCall(w.call, w.assignment, Math.max(1_000, w.deadlineMs - now));
    }
    if (n > 0) this.log.error({ takenOver: n }, 'fleet degraded: calls this replica queued and nobody confirmed taking now run here');
  }

  /**
   * The fleet re-formed: calls admitted here on their own while Redis was away (and those taken
   * over) are registered as running here, with their claims, so duplicates dedupe, domain
   * webhooks find their room, the capacity counts them and a loss of this replica records them.
   */
  private async adoptLocal(): Promise<void> {
    const { fleet, dispatcher } = this.deps;
    const calls = dispatcher.liveCallObjects().filter((c) => !fleet.live.has(c.record.callId) && !this.waiting.has(c.record.callId));
    if (calls.length === 0) return;
    try {
      await fleet.adopt(
        calls.map((c) => ({
          callId: c.record.callId,
          room: c.record.roomName,
          answer: answerOf(c, c.record.timeline.received ?? Date.now(), c.record.state),
        })),
      );
      for (const c of calls) this.mine.set(c.record.callId, c);
      this.log.warn({ adopted: calls.length }, 'fleet re-formed: calls admitted on this replica alone are registered fleet-wide');
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, 'fleet: could not register the calls admitted while degraded');
    }
  }

  /** Every replica's capacity, load and live calls (for /status). */
  async status(): Promise<FleetStatus | { replicaId: string; degraded: boolean; error: string }> {
    try {
      return await this.deps.fleet.fleetStatus();
    } catch (err) {
      // A slow answer is not a down Redis: degraded says what the replica does, error what failed.
      return { replicaId: this.replicaId, degraded: this.deps.fleet.degraded, error: errorMessage(err) };
    }
  }

  /** SIGTERM: take nothing more from the fleet queue. */
  async setDraining(): Promise<void> {
    await this.deps.fleet.setDraining(true);
  }

  /** Exit: leave the fleet cleanly (nobody reaps this replica). */
  async close(): Promise<void> {
    clearInterval(this.refresh);
    this.lost.close();
    for (const id of [...this.waiting.keys()]) this.unwait(id);
    await this.deps.fleet.close();
  }
}
