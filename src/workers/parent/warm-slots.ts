/**
 * Warm slots (WARM_ROOMS per replica): a SIP dial-in room, its bot token, and a worker joined to it
 * as the bot with the room's `dialin-ready` endpoint already received — so a call needs only one
 * pinlessCallUpdate. `take()` hands a ready slot to admission and refills in the background.
 *
 *   fill: room + token (RoomService.provision) → a pool worker → `warm` → `warm-ready` → ready
 *   ready → taken (the call owns room and worker from then on; the dispatcher releases the room)
 *   ready → recycled at WARM_ROOM_MAX_AGE_MS, or lost (the bot left or was ejected, the worker
 *           died): worker closed, room released, a new slot filled
 *
 * The room's `exp` (with `eject_at_room_exp`) covers the slot's maximum age plus the longest call.
 * Draining closes idle slots and deletes their rooms. An idle warm bot is a participant in a Daily
 * room and billed as such: `idleMs()` feeds patchbay_warm_slot_idle_seconds_total.
 */
import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import type { Config } from '../../core/config.js';
import type { CallRoom, RoomService } from '../../daily/room-service.js';
import type { ChildMessage } from '../protocol.js';
import type { WorkerPool } from './pool.js';
import { roomNameFor } from '../../daily/leftovers.js';
import type { WorkerHandle } from './handle.js';
import { PatchbayError, errorMessage } from '../../core/errors.js';

export interface WarmSlot {
  room: CallRoom;
  worker: WorkerHandle;
  sipEndpoint: string;
  /** Date.now() when the bot joined the room (billed from then) and when the slot became ready. */
  joinedAtMs: number;
  readyAtMs: number;
}

export interface WarmSlotStats {
  target: number;
  ready: number;
  inUse: number;
  refilling: number;
  /** Slots taken by calls, recycled at max age, and lost (bot left, worker died, warming failed). */
  taken: number;
  recycled: number;
  lost: number;
}

const FAILURE_BACKOFF_MAX_MS = 30_000;

export class WarmSlots {
  private readonly ready: WarmSlot[] = [];
  private readonly inUse = new Set<WorkerHandle>();
  private refilling = 0;
  private closed = false;
  private failures = 0;
  private readonly stop = new AbortController();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly counts = { taken: 0, recycled: 0, lost: 0 };
  /** Idle (billed, unused) time of slots no longer idle. */
  private idleDoneMs = 0;
  private readonly log: Logger;
  private readonly closing: Array<Promise<void>> = [];
  /** Bumped by a reload's `swap`: a slot that began filling before it is retired, not handed out. */
  private generation = 0;

  constructor(private readonly deps: { config: Config; logger: Logger; rooms: RoomService; pool: WorkerPool }) {
    this.log = deps.logger.child({ component: 'warm' });
    // One listener per slot being filled (room request, pool wait, warm-up): up to WARM_ROOMS × 3.
    setMaxListeners(Math.max(10, deps.config.warm.rooms * 4), this.stop.signal);
  }

  get target(): number {
    return this.deps.config.warm.rooms;
  }

  start(): void {
    this.topUp();
  }

  stats(): WarmSlotStats {
    return { target: this.target, ready: this.ready.length, inUse: this.inUse.size, refilling: this.refilling, ...this.counts };
  }

  /** The ready slots (status, tests): room, worker pid, when ready. */
  slots(): Array<{ roomName: string; pid: number; sipEndpoint: string; readyAtMs: number }> {
    return this.ready.map((s) => ({ roomName: s.room.roomName, pid: s.worker.pid, sipEndpoint: s.sipEndpoint, readyAtMs: s.readyAtMs }));
  }

  /** Idle time so far, ms: every slot's time from its bot's join to its call (or its end), live slots included. */
  idleMs(now = Date.now()): number {
    return this.idleDoneMs + this.ready.reduce((a, s) => a + (now - s.joinedAtMs), 0);
  }

  /** The room of the slot `take()` would hand out now (fleet mode registers it first), or undefined. */
  nextRoom(): string | undefined {
    if (this.closed) return undefined;
    return this.ready.find((s) => s.worker.state === 'idle')?.room.roomName;
  }

  /** A ready slot for a call (its worker and room now belong to the call), or undefined. */
  take(): WarmSlot | undefined {
    if (this.closed) return undefined;
    while (this.ready.length > 0) {
      const slot = this.ready.shift()!;
      if (slot.worker.state !== 'idle') continue; // died a moment ago; its exit handler refills
      this.idleDoneMs += Date.now() - slot.joinedAtMs;
      this.counts.taken++;
      this.inUse.add(slot.worker);
      void slot.worker.exited.then(() => this.inUse.delete(slot.worker));
      this.topUp();
      return slot;
    }
    return undefined;
  }

  /** Drain: no more slots; idle ones are closed and their rooms deleted. Resolves when done. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.stop.abort();
      for (const t of this.timers) clearTimeout(t);
      this.timers.clear();
      for (const slot of this.ready.splice(0)) this.closing.push(this.retire(slot, 'drain'));
    }
    await Promise.all(this.closing);
  }

  private topUp(): void {
    if (this.closed) return;
    while (this.ready.length + this.refilling < this.target) {
      this.refilling++;
      void this.fill().finally(() => this.refilling--);
    }
  }

  private later(ms: number, f: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      f();
    }, ms);
    t.unref();
    this.timers.add(t);
  }

  /** A new room for a slot: it outlives the slot's maximum age plus the longest call on it; then Daily ejects everyone. */
  private newRoom(): Promise<CallRoom> {
    const { config, rooms } = this.deps;
    const c = config.call;
    const roomName = roomNameFor(config.resilience.replicaId);
    const expSec =
      Math.ceil((Date.now() + config.warm.roomMaxAgeMs + c.maxCallMs + c.joinTimeoutMs + c.dialinReadyTimeoutMs * 2) / 1000) + 60;
    return rooms.provision({ roomName, displayName: 'patchbay', expSec, numEndpoints: c.sipEndpoints, signal: this.stop.signal });
  }

  private async fill(): Promise<void> {
    const { rooms, pool } = this.deps;
    const generation = this.generation;
    let room: CallRoom | undefined;
    let worker: WorkerHandle | undefined;
    try {
      room = await this.newRoom();
      // An idle pool worker when one is on its way: a slot must not make calls wait for a cold start behind it.
      while (pool.stats().idle === 0 && pool.stats().starting > 0 && !this.closed) await new Promise((r) => setTimeout(r, 50));
      if (this.closed) throw new Error('closed');
      worker = await pool.acquire(this.stop.signal);
      const joinedAtMs = Date.now();
      const sipEndpoint = await this.warmUp(worker, room);
      if (this.closed) throw new Error('closed');
      const slot: WarmSlot = { room, worker, sipEndpoint, joinedAtMs, readyAtMs: Date.now() };
      this.failures = 0;
      if (generation !== this.generation) {
        // A reload swapped the slots while this one warmed with the older bots: not handed out.
        this.retireLater(slot, 'reloaded while warming');
        return;
      }
      this.ready.push(slot);
      this.watch(slot);
      this.log.debug({ room: room.roomName, pid: worker.pid, warmMs: slot.readyAtMs - joinedAtMs }, 'warm slot ready');
    } catch (err) {
      if (worker) void worker.close('shutdown');
      if (room) void rooms.release(room.roomName);
      if (this.closed) return;
      this.failures++;
      this.counts.lost++;
      const delay = Math.min(FAILURE_BACKOFF_MAX_MS, 250 * 2 ** Math.min(this.failures, 7));
      this.log.warn(
        { err: errorMessage(err), room: room?.roomName, failures: this.failures, retryInMs: delay },
        'warm slot could not be filled; retrying',
      );
      this.refilling++;
      this.later(delay, () => {
        this.refilling--;
        this.topUp();
      });
    }
  }

  /**
   * A reload's warm slots: each of `workers` (started with the new bots, not from the pool) warmed
   * in a new room. Not yet handed out (see `swap`). On any failure every one is closed and it throws.
   */
  async prepare(workers: WorkerHandle[]): Promise<WarmSlot[]> {
    const made = await Promise.allSettled(
      workers.map(async (worker) => {
        const room = await this.newRoom();
        try {
          const joinedAtMs = Date.now();
          const sipEndpoint = await this.warmUp(worker, room);
          return { room, worker, sipEndpoint, joinedAtMs, readyAtMs: Date.now() };
        } catch (err) {
          void this.deps.rooms.release(room.roomName);
          throw err;
        }
      }),
    );
    const slots = made.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = made.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (!failed && !this.closed) return slots;
    await Promise.all([...slots.map((s) => this.retire(s, 'reload failed')), ...workers.map((w) => w.close('shutdown'))]);
    throw new PatchbayError(
      'warm_reload_failed',
      `warm slots of the new bots could not be made: ${errorMessage(failed?.reason ?? 'closed')}`,
      {
        retryable: true,
      },
    );
  }

  /** A reload's switch: `slots` become the ready ones, then the older ready slots are retired (no gap). */
  swap(slots: WarmSlot[]): void {
    this.generation++;
    const old = this.ready.splice(0, this.ready.length, ...slots);
    for (const s of slots) this.watch(s);
    for (const s of old) {
      this.counts.recycled++;
      this.retireLater(s, 'reload');
    }
    this.topUp();
  }

  private retireLater(slot: WarmSlot, why: string): void {
    const p = this.retire(slot, why);
    this.closing.push(p);
    void p.then(() => this.closing.splice(this.closing.indexOf(p), 1));
  }

  /** `warm` → `warm-ready` (or fails: `warm-lost`, the worker's exit, a timeout, close). */
  private warmUp(worker: WorkerHandle, room: CallRoom): Promise<string> {
    const c = this.deps.config.call;
    const timeoutMs = c.joinTimeoutMs + c.dialinReadyTimeoutMs + c.joinTimeoutMs;
    return new Promise<string>((resolve, reject) => {
      const done = (f: () => void) => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('exit', onExit);
        this.stop.signal.removeEventListener('abort', onAbort);
        f();
      };
      const onMessage = (m: ChildMessage) => {
        if (m.type === 'warm-ready') done(() => resolve(m.sipEndpoint));
        else if (m.type === 'warm-lost' || m.type === 'fatal') done(() => reject(new Error(m.type === 'fatal' ? m.error : m.reason)));
      };
      const onExit = () => done(() => reject(new Error('worker exited while warming')));
      const onAbort = () => done(() => reject(new Error('closed')));
      const timer = setTimeout(() => done(() => reject(new Error(`not warm within ${timeoutMs} ms`))), timeoutMs);
      worker.on('message', onMessage);
      worker.once('exit', onExit);
      this.stop.signal.addEventListener('abort', onAbort, { once: true });
      if (!worker.send({ type: 'warm', room })) done(() => reject(new Error('worker gone')));
    });
  }

  /** A ready slot: recycled at max age; replaced when its bot leaves (`warm-lost`) or its worker dies. */
  private watch(slot: WarmSlot): void {
    const isIdle = () => this.ready.includes(slot);
    const onMessage = (m: ChildMessage) => {
      if (m.type === 'warm-lost' && isIdle()) this.replace(slot, `lost: ${m.reason}`);
    };
    slot.worker.on('message', onMessage);
    void slot.worker.exited.then(() => {
      slot.worker.off('message', onMessage);
      if (isIdle()) this.replace(slot, 'worker exited');
    });
    this.later(this.deps.config.warm.roomMaxAgeMs, () => {
      if (!isIdle()) return;
      this.counts.recycled++;
      this.replace(slot, 'max age', true);
    });
  }

  private replace(slot: WarmSlot, why: string, recycled = false): void {
    const i = this.ready.indexOf(slot);
    if (i < 0) return;
    this.ready.splice(i, 1);
    if (!recycled) this.counts.lost++;
    this.log[recycled ? 'info' : 'warn']({ room: slot.room.roomName, pid: slot.worker.pid, why }, 'warm slot replaced');
    this.topUp();
    this.retireLater(slot, why);
  }

  private async retire(slot: WarmSlot, why: string): Promise<void> {
    this.idleDoneMs += Date.now() - slot.joinedAtMs;
    this.log.debug({ room: slot.room.roomName, why }, 'warm slot closing');
    await slot.worker.close('shutdown');
    await this.deps.rooms.release(slot.room.roomName);
  }
}
