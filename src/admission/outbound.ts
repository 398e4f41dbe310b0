/**
 * Outbound calls (POST /calls, docs/outbound.md): a bot calls a number.
 *
 *   place → queued → (a free bot slot, no inbound call waiting, under OUTBOUND_MAX_CONCURRENT)
 *         → room with enable_dialout + owner token → a worker joins as the bot → startDialOut
 *           (the worker waits for a grant of Daily's `start` rate class from the shared limiter)
 *         → dialing → answered | voicemail | busy | no-answer | failed → ended
 *
 * Each attempt is a call of the dispatcher (its record, its outcome; `dialout_failed` when the far
 * end was busy, did not answer or could not be reached). Busy and no-answer are tried again after
 * OUTBOUND_RETRY_MS, doubled each time, up to OUTBOUND_MAX_ATTEMPTS. An `Idempotency-Key` names a
 * request: the same key answers the same call, never a second one.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { CallIdentity } from '../core/call-identity.js';
import type { Config } from '../core/config.js';
import { errorMessage } from '../core/errors.js';
import { roomNameFor } from '../daily/leftovers.js';
import type { RoomService } from '../daily/room-service.js';
import type { Call } from '../call/call.js';
import type { CallAssignment } from '../workers/protocol.js';
import type { Dispatcher } from './dispatcher.js';
import { sendStatusWebhook } from './outbound-webhook.js';
import { isOutboundStatus, type JournalEntry, type OutboundRequest, type OutboundStatus, type OutboundView } from './outbound-types.js';

export { OUTBOUND_STATUSES } from './outbound-types.js';
export type { OutboundRequest, OutboundResult, OutboundStatus, OutboundView } from './outbound-types.js';

interface Entry {
  view: OutboundView;
  req: OutboundRequest;
  key?: string;
  dueAtMs: number;
  running: boolean;
}

export interface OutboundDeps {
  config: Config;
  logger: Logger;
  rooms: RoomService;
  dispatcher: Dispatcher;
  /** The bots the service knows (a request naming another is refused). */
  hasBot(name: string): boolean;
  /** Where every change is written, and what it held at start-up (outbound-journal.ts); absent: memory only. */
  journal?: { write(e: JournalEntry): void; restored: JournalEntry[] };
  /** Every status change (callbacks.ts follows the callbacks it placed). */
  onStatus?: OutboundStatusHook;
}

export type OutboundStatusHook = (view: OutboundView, req: OutboundRequest) => void;

/** Slots shared by the fleet (OUTBOUND_FLEET_MAX_CONCURRENT): one per running attempt, by key. */
export interface FleetSlots {
  acquire(key: string): Promise<boolean>;
  release(key: string): void;
}

/** Entries kept after they ended (GET /calls/:id, idempotency), the oldest dropped first. */
const KEEP_ENDED = 10_000;
const TICK_MS = 250;

export class OutboundCalls {
  private readonly calls = new Map<string, Entry>();
  private readonly byKey = new Map<string, string>();
  private readonly log: Logger;
  private readonly timer: NodeJS.Timeout;
  private running = 0;
  /** Attempts started whose call is not on the dispatcher's queue yet (room being created): slots they will take. */
  private provisioning = 0;
  private fleetSlots: FleetSlots | undefined;
  private closed = false;
  private readonly stop = new AbortController();

  constructor(private readonly d: OutboundDeps) {
    this.log = d.logger.child({ component: 'outbound' });
    for (const r of d.journal?.restored ?? []) {
      this.calls.set(r.view.id, { view: r.view, req: r.req, dueAtMs: r.dueAtMs, running: false, ...(r.key ? { key: r.key } : {}) });
      if (r.key !== undefined) this.byKey.set(r.key, r.view.id);
    }
    const pending = this.pending();
    if (pending > 0) this.log.info({ pending }, 'outbound calls restored from the journal');
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
  }

  /** Queues an outbound call; the same idempotency key answers the same call (`duplicate: true`). */
  place(req: OutboundRequest, idempotencyKey?: string): { view: OutboundView; duplicate: boolean } {
    const known = idempotencyKey === undefined ? undefined : this.byKey.get(idempotencyKey);
    const existing = known === undefined ? undefined : this.calls.get(known);
    if (existing) return { view: existing.view, duplicate: true };
    const now = Date.now();
    const to = 'phoneNumber' in req.to ? req.to.phoneNumber : req.to.sipUri;
    const view: OutboundView = {
      id: randomUUID(),
      direction: 'outbound',
      status: 'queued',
      result: null,
      outcome: null,
      detail: null,
      to,
      from: req.from ?? null,
      bot: req.bot,
      metadata: req.metadata ?? {},
      attempts: 0,
      callIds: [],
      createdAtMs: now,
      notBeforeMs: req.notBeforeMs ?? null,
      nextAttemptAtMs: null,
      history: [],
    };
    const entry: Entry = {
      view,
      req,
      dueAtMs: Math.max(now, req.notBeforeMs ?? now),
      running: false,
      ...(idempotencyKey ? { key: idempotencyKey } : {}),
    };
    this.calls.set(view.id, entry);
    if (idempotencyKey !== undefined) this.byKey.set(idempotencyKey, view.id);
    this.setStatus(entry, 'queued');
    this.prune();
    queueMicrotask(() => this.tick());
    return { view, duplicate: false };
  }

  /** A bot the service can run (POST /calls refuses others). */
  hasBot(name: string): boolean {
    return this.d.hasBot(name);
  }

  get(id: string): OutboundView | undefined {
    return this.calls.get(id)?.view;
  }

  /** Outbound calls not ended yet (queued, waiting to retry, or live). */
  pending(): number {
    return [...this.calls.values()].filter((e) => e.view.status !== 'ended').length;
  }

  close(): void {
    this.closed = true;
    this.stop.abort();
    clearInterval(this.timer);
  }

  /**
   * One more outbound call could start now: a bot slot free (less those of attempts still creating
   * their rooms), no inbound call waiting or being admitted — inbound calls first: an outbound call
   * never takes a slot a waiting (or arriving) caller needs — and under OUTBOUND_MAX_CONCURRENT.
   */
  hasRoom(): boolean {
    const { dispatcher, config } = this.d;
    const s = dispatcher.stats();
    if (this.closed || this.running >= config.outbound.maxConcurrent || s.draining || s.queued > 0 || s.admitting > 0) return false;
    return dispatcher.freeSlots() - this.provisioning >= 1;
  }

  /** Starts due calls, oldest first, while a bot slot is free, no inbound call waits and the cap allows. */
  private tick(): void {
    if (this.closed) return;
    const now = Date.now();
    const due = [...this.calls.values()]
      .filter((e) => !e.running && e.view.status !== 'ended' && e.dueAtMs <= now)
      .sort((a, b) => a.dueAtMs - b.dueAtMs);
    for (const e of due) {
      if (!this.hasRoom()) return;
      e.running = true;
      this.running++;
      void this.slotThenAttempt(e).finally(() => {
        e.running = false;
        this.running--;
      });
    }
  }

  /** Fleet mode with OUTBOUND_FLEET_MAX_CONCURRENT: a fleet-wide slot first (else the call stays due: the next tick tries again). */
  private async slotThenAttempt(e: Entry): Promise<void> {
    const slots = this.fleetSlots;
    const key = `${e.view.id}:${e.view.attempts + 1}`;
    // Redis unreachable: the per-replica cap alone (as every fleet feature degrades).
    if (slots && !(await slots.acquire(key).catch(() => true))) return;
    try {
      await this.attempt(e);
    } finally {
      slots?.release(key);
    }
  }

  /** Fleet mode: the fleet-wide outbound cap (src/fleet/outbound-slots.ts). */
  setFleetSlots(slots: FleetSlots): void {
    this.fleetSlots = slots;
  }

  /** One attempt: room, call object, worker; resolves when the attempt's call ended. */
  private async attempt(e: Entry): Promise<void> {
    const { config, rooms, dispatcher } = this.d;
    const v = e.view;
    v.attempts++;
    v.nextAttemptAtMs = null;
    const roomName = roomNameFor(config.resilience.replicaId);
    const identity: CallIdentity = {
      id: randomUUID(),
      callId: `outbound-${v.id}-${v.attempts}`,
      callDomain: '',
      from: v.from ?? '',
      to: v.to,
      sipHeaders: {},
      bot: v.bot,
      roomName,
      roomUrl: '',
    };
    const now = Date.now();
    const call = dispatcher.createCall(identity, now);
    v.callIds.push(call.id);
    const ended = new Promise<void>((resolve) => call.on('transition', (t) => t.to === 'ended' && resolve()));
    this.follow(e, call);
    this.provisioning++;
    try {
      const room = await rooms.provision({
        roomName,
        displayName: v.bot,
        expSec: Math.ceil((now + config.call.maxCallMs + config.outbound.ringTimeoutMs + config.call.joinTimeoutMs) / 1000) + 300,
        numEndpoints: 1,
        enableDialout: true,
        signal: this.stop.signal,
      });
      call.roomCreated(room.roomUrl);
      this.provisioning--;
      dispatcher.runCall(call, this.assignment(e, identity, room, now), config.admission.queueTimeoutMs);
    } catch (err) {
      this.provisioning--;
      call.end('room_failed', errorMessage(err), 'admission');
      await dispatcher.finish(call);
    }
    await ended;
  }

  private assignment(e: Entry, identity: CallIdentity, room: { roomUrl: string; token: string }, now: number): CallAssignment {
    const { config } = this.d;
    return {
      ...identity,
      roomUrl: room.roomUrl,
      token: room.token,
      receivedAtMs: now,
      ...(e.req.botConfig ? { botConfig: e.req.botConfig } : {}),
      outbound: {
        to: e.req.to,
        ...(e.req.from ? { callerId: e.req.from } : {}),
        metadata: e.view.metadata,
        attempt: e.view.attempts,
        ringTimeoutMs: config.outbound.ringTimeoutMs,
        detectVoicemail: config.outbound.detectVoicemail,
        ...(e.req.callback ? { callback: e.req.callback } : {}),
      },
    };
  }

  /** The attempt's `dialout` events become the call's status; its end decides a retry or the end. */
  private follow(e: Entry, call: Call): void {
    let seen = 0;
    call.on('changed', (c) => {
      const events = c.record.botEvents;
      for (; seen < events.length; seen++) {
        const ev = events[seen]!;
        if (ev.kind !== 'dialout') continue;
        const status = ev.value.startsWith('dialing') ? 'dialing' : ev.value;
        if (isOutboundStatus(status)) this.setStatus(e, status);
      }
    });
    call.on('transition', (t) => {
      if (t.to !== 'ended') return;
      const v = e.view;
      v.outcome = call.record.outcome ?? null;
      v.detail = call.record.detail ?? null;
      const result = v.status === 'queued' || v.status === 'dialing' || v.status === 'ended' ? 'failed' : v.status;
      v.result = result;
      const retry = (result === 'busy' || result === 'no-answer') && v.attempts < this.d.config.outbound.maxAttempts && !this.closed;
      if (retry) {
        e.dueAtMs = Date.now() + this.d.config.outbound.retryMs * 2 ** (v.attempts - 1);
        v.nextAttemptAtMs = e.dueAtMs;
        this.persist(e);
        this.log.info({ id: v.id, result, attempt: v.attempts, retryAtMs: e.dueAtMs }, 'outbound call: trying again later');
        return;
      }
      if (v.status !== result) this.setStatus(e, result);
      this.setStatus(e, 'ended');
    });
  }

  private setStatus(e: Entry, status: OutboundStatus): void {
    const v = e.view;
    if (v.status === status && v.history.length > 0 && status !== 'dialing') return;
    v.status = status;
    const atMs = Date.now();
    v.history.push({ status, atMs, attempt: v.attempts });
    this.persist(e);
    this.log.debug({ id: v.id, status, attempt: v.attempts }, 'outbound call status');
    this.d.onStatus?.(v, e.req);
    const url = e.req.statusUrl ?? this.d.config.outbound.statusUrl;
    if (url) void sendStatusWebhook(url, v, atMs, this.d.config.outbound, this.log);
  }

  private persist(e: Entry): void {
    // A callback is kept by the callback store (callbacks.ts), which alone decides whether it is dialled again.
    if (e.req.callback) return;
    this.d.journal?.write({ view: e.view, req: e.req, dueAtMs: e.dueAtMs, ...(e.key !== undefined ? { key: e.key } : {}) });
  }

  private prune(): void {
    if (this.calls.size <= KEEP_ENDED) return;
    for (const [id, e] of this.calls) {
      if (this.calls.size <= KEEP_ENDED) break;
      if (e.view.status !== 'ended') continue;
      this.calls.delete(id);
      for (const [k, v] of this.byKey) if (v === id) this.byKey.delete(k);
    }
  }
}
