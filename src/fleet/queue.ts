/**
 * The fleet-wide queue and this replica's inbox.
 *
 * Queue: one Redis Stream (`pb:{ns}:queue`) read by one consumer group (`replicas`); a consumer
 * is a replica. An entry is delivered to exactly one replica (XREADGROUP '>'), which then
 * `fleetAccept`s it atomically: dropped if cancelled or past its deadline (the `waiting` sorted
 * set is the source of truth for "still waiting"), otherwise registered as running there. It stays
 * in that replica's pending list until `ack` (the bot forwarded the call), so if the replica dies
 * first, the survivor that reaps it puts the call back in the queue.
 *
 * Inbox: a stream per replica (`pb:{ns}:inbox:<id>`), read with a blocking XREAD from the last
 * id seen: domain events routed here, "your call was taken by X", "your call expired".
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { closeConnection, pairs } from './connection.js';
import { num, replyList, str } from './claims.js';
import type { ScriptName } from './scripts.js';
import type { EnqueueResult, FleetEvents, TakenCall } from './types.js';
import { errorMessage } from '../core/errors.js';

const GROUP = 'replicas';

/** What the queue needs of its Fleet (an interface, so the two modules do not import each other). */
export interface FleetCore<P> {
  readonly replicaId: string;
  readonly prefix: string;
  readonly queueKey: string;
  readonly redis: Redis;
  readonly log: Logger | undefined;
  readonly opts: {
    maxQueued: number;
    claimTtlMs: number;
    requeueWaitMs: number;
    blockMs: number;
    opTimeoutMs: number;
    admitTimeoutMs: number;
  };
  readonly live: Map<string, string>;
  readonly degraded: boolean;
  readonly isDraining: boolean;
  readonly isClosed: boolean;
  run(name: ScriptName, ...args: (string | number)[]): Promise<unknown>;
  op<T>(what: string, f: () => Promise<T>, budgetMs?: number): Promise<T>;
  ensureGroup(): Promise<void>;
  blockingConnection(): Redis;
  emit<K extends keyof FleetEvents<P>>(event: K, ...args: FleetEvents<P>[K]): boolean;
}

type StreamReply = Array<[string, Array<[string, string[]]>]> | null;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

export class FleetQueue<P> {
  /** Calls this replica enqueued that nobody has confirmed taking yet. */
  private readonly unconfirmed = new Map<string, { room: string; payload: P }>();
  /** Given to the dispatcher while degraded: cancelled in Redis when it returns (unless it restarted empty). */
  private readonly abandoned = new Set<string>();
  /** Taken here and not yet acked. */
  private readonly taken = new Map<string, TakenCall<P>>();
  private inboxId = '0-0';
  private stopped = false;
  private readonly loops: Promise<void>[] = [];
  private readonly conns: Redis[] = [];
  private waiter: (() => void) | undefined;

  constructor(private readonly f: FleetCore<P>) {}

  get unconfirmedCount(): number {
    return this.unconfirmed.size;
  }

  async enqueue(call: { callId: string; room: string; payload: P }, waitMs: number): Promise<EnqueueResult> {
    const f = this.f;
    const r = replyList(
      await f.run(
        'fleetEnqueue',
        call.callId,
        f.replicaId,
        call.room,
        JSON.stringify(call.payload),
        Math.max(0, Math.round(waitMs)),
        f.opts.maxQueued,
        f.opts.claimTtlMs,
      ),
    );
    const [code, entryId, backlog, freeSlots] = [num(r[0]), str(r[1]), num(r[2]), num(r[3])];
    if (code === 0) return { kind: 'fleet_full', backlog, freeSlots };
    if (code === 2) return { kind: 'already_queued', backlog, freeSlots };
    this.unconfirmed.set(call.callId, { room: call.room, payload: call.payload });
    return { kind: 'queued', entryId, backlog, freeSlots };
  }

  /** Reads up to a few entries (blocking on `conn` when given) until one is accepted. */
  /** `hasCapacity`: checked when an entry arrives; without a free slot it goes back unaccepted (fleetUnread). */
  async take(block: Redis | false, hasCapacity?: () => boolean): Promise<TakenCall<P> | undefined> {
    const f = this.f;
    for (let i = 0; i < 16; i++) {
      let reply: StreamReply;
      const args: (string | number)[] = [
        'GROUP',
        GROUP,
        f.replicaId,
        'COUNT',
        1,
        ...(block ? ['BLOCK', f.opts.blockMs] : []),
        'STREAMS',
        f.queueKey,
        '>',
      ];
      const conn = block || f.redis;
      try {
        reply = (await f.op(
          'take',
          () => (conn.xreadgroup as (...a: (string | number)[]) => Promise<unknown>).apply(conn, args),
          (block ? f.opts.blockMs : 0) + f.opts.admitTimeoutMs,
        )) as StreamReply;
      } catch (err) {
        if (/NOGROUP/.test(errorMessage(err))) {
          await f.ensureGroup();
          continue;
        }
        throw err;
      }
      const entry = reply?.[0]?.[1]?.[0];
      if (!entry) return undefined;
      if (hasCapacity && !hasCapacity()) {
        await f.run('fleetUnread', GROUP, entry[0], ...entry[1]);
        return undefined;
      }
      const t = await this.accept(entry[0], pairs(entry[1]));
      if (t) return t;
      if (block) return undefined;
    }
    return undefined;
  }

  private async accept(entryId: string, e: Record<string, string>): Promise<TakenCall<P> | undefined> {
    const f = this.f;
    const callId = e.c ?? '';
    const r = replyList(await f.run('fleetAccept', GROUP, entryId, callId, e.o ?? '', f.replicaId, e.r ?? '', f.opts.claimTtlMs));
    if (num(r[0]) !== 1) {
      f.log?.info({ callId, entryId, why: r[1] }, 'fleet queue: dropped an entry instead of serving it');
      if (e.o === f.replicaId) this.unconfirmed.delete(callId);
      if (r[1] === 'orphaned') f.emit('call-orphaned', { callId, room: e.r ?? '', owner: e.o ?? '' });
      return undefined;
    }
    let payload: P;
    try {
      payload = JSON.parse(e.p ?? 'null') as P;
    } catch {
      payload = null as P;
    }
    const t: TakenCall<P> = {
      callId,
      entryId,
      owner: e.o ?? '',
      room: e.r ?? '',
      payload,
      deadlineAtMs: Number(r[1]),
      attempt: Number(e.a ?? 0),
    };
    this.taken.set(callId, t);
    f.live.set(callId, t.room);
    this.unconfirmed.delete(callId);
    return t;
  }

  /**
   * Runs a call on this replica at once, past the queue (a warm slot is ready here): true if nobody
   * waits in the fleet queue and this replica has a free slot; it is then registered as running here.
   */
  async runHere(callId: string, room: string): Promise<boolean> {
    const f = this.f;
    const ok = (await f.run('fleetRunHere', f.replicaId, callId, room, f.opts.claimTtlMs)) === 1;
    if (ok) f.live.set(callId, room);
    return ok;
  }

  /** A call running here moved to another room (a warm slot's): the registry and room owner follow. */
  async publishRoom(callId: string, room: string): Promise<void> {
    const f = this.f;
    if (!f.live.has(callId)) return;
    f.live.set(callId, room);
    await f.run('fleetPublishCalls', f.replicaId, f.opts.claimTtlMs, callId, room);
  }

  /**
   * Calls that run here without the fleet knowing (admitted while Redis was unreachable): registered
   * as running here, with their claims (so a duplicate webhook at any replica dedupes) unless
   * another replica claimed them meanwhile.
   */
  async adopt(calls: Array<{ callId: string; room: string; answer: string }>): Promise<void> {
    const f = this.f;
    const publish: string[] = [];
    const claims: (string | number)[] = [];
    for (const c of calls) {
      f.live.set(c.callId, c.room);
      publish.push(c.callId, c.room);
      claims.push(c.callId, c.answer, f.opts.claimTtlMs);
    }
    for (let i = 0; i < publish.length; i += 2 * 500)
      await f.run('fleetPublishCalls', f.replicaId, f.opts.claimTtlMs, ...publish.slice(i, i + 2 * 500));
    for (let i = 0; i < claims.length; i += 3 * 500) await f.run('fleetRestoreClaims', f.replicaId, ...claims.slice(i, i + 3 * 500));
  }

  async ack(callId: string): Promise<void> {
    const t = this.taken.get(callId);
    if (!t) return;
    const f = this.f;
    await f.op('ack', () => f.redis.multi().xack(f.queueKey, GROUP, t.entryId).xdel(f.queueKey, t.entryId).exec());
    this.taken.delete(callId);
  }

  async giveBack(callId: string): Promise<void> {
    const t = this.taken.get(callId);
    if (!t) return;
    const f = this.f;
    await f.run('fleetGiveBack', GROUP, t.entryId, f.replicaId, callId, f.opts.requeueWaitMs);
    this.taken.delete(callId);
    f.live.delete(callId);
  }

  forget(callId: string): void {
    this.unconfirmed.delete(callId);
  }

  takeOverUnconfirmed(): Array<{ callId: string; room: string; payload: P }> {
    const out = [...this.unconfirmed].map(([callId, v]) => ({ callId, ...v }));
    for (const c of out) this.abandoned.add(c.callId);
    this.unconfirmed.clear();
    return out;
  }

  /** After re-connecting. `restarted`: Redis came back empty (no persistence), so nothing of ours is in it. */
  async reformed(restarted: boolean): Promise<void> {
    const f = this.f;
    if (restarted) {
      this.inboxId = '0-0';
      this.abandoned.clear();
      this.taken.clear();
      // Nobody else can have these: Redis lost them. Queue them again (their callers still wait).
      for (const [callId, v] of [...this.unconfirmed]) {
        const r = await this.enqueue({ callId, ...v }, f.opts.requeueWaitMs);
        f.log?.warn({ callId, result: r.kind }, 'fleet: a call queued here was lost by Redis; queued again');
      }
      return;
    }
    for (const callId of [...this.abandoned]) {
      await f.run('fleetCancel', callId);
      this.abandoned.delete(callId);
    }
    for (const callId of [...this.taken.keys()]) if (!f.live.has(callId)) this.taken.delete(callId);
    // Entries delivered to us whose accept never completed: give them back.
    const pending = (await f.op('pending', () => f.redis.xpending(f.queueKey, GROUP, '-', '+', 100, f.replicaId))) as Array<
      [string, string, number, number]
    >;
    const mine = new Set([...this.taken.values()].map((t) => t.entryId));
    for (const [entryId] of pending) {
      if (mine.has(entryId)) continue;
      await f.run('fleetGiveBack', GROUP, entryId, f.replicaId, '', f.opts.requeueWaitMs);
    }
  }

  wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => this.wake(), ms);
      t.unref();
      this.waiter = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private connection(): Redis {
    const c = this.f.blockingConnection();
    this.conns.push(c);
    c.connect().catch(() => undefined);
    return c;
  }

  private consuming = false;

  startConsumer(hasCapacity: () => boolean, onCall: (c: TakenCall<P>) => boolean | void): void {
    if (this.consuming) throw new Error('fleet: one consumer per Fleet');
    this.consuming = true;
    const conn = this.connection();
    const f = this.f;
    const loop = async () => {
      while (!this.stopped) {
        if (f.isDraining || f.degraded || conn.status !== 'ready' || !hasCapacity()) {
          await this.idle(250);
          continue;
        }
        try {
          const t = await this.take(conn, hasCapacity);
          if (!t) continue;
          if (this.stopped || f.isDraining || !hasCapacity() || onCall(t) === false) {
            await this.giveBack(t.callId);
            // Let another replica have it rather than taking it straight back.
            await this.idle(100);
          }
        } catch (err) {
          if (!this.stopped) f.log?.debug({ err: errorMessage(err) }, 'fleet consumer: read failed');
          await sleep(100);
        }
      }
    };
    this.loops.push(loop());
  }

  startInbox(): void {
    const conn = this.connection();
    const f = this.f;
    const key = `${f.prefix}inbox:${f.replicaId}`;
    const loop = async () => {
      while (!this.stopped) {
        if (conn.status !== 'ready') {
          await sleep(100);
          continue;
        }
        let reply: StreamReply;
        try {
          reply = await conn.xread('COUNT', 100, 'BLOCK', f.opts.blockMs, 'STREAMS', key, this.inboxId);
        } catch {
          await sleep(100);
          continue;
        }
        for (const [id, fields] of reply?.[0]?.[1] ?? []) {
          this.inboxId = id;
          this.deliver(pairs(fields));
        }
      }
    };
    this.loops.push(loop());
  }

  private deliver(m: Record<string, string>): void {
    const f = this.f;
    try {
      if (m.t === 'event') f.emit('domain-event', JSON.parse(m.e ?? 'null'));
      else if (m.t === 'taken' && m.c) {
        this.unconfirmed.delete(m.c);
        f.emit('call-taken', { callId: m.c, by: m.r ?? '' });
      } else if (m.t === 'expired' && m.c) {
        this.unconfirmed.delete(m.c);
        f.emit('call-expired', { callId: m.c });
      }
    } catch (err) {
      f.log?.error({ err }, 'fleet inbox: a listener threw');
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    await Promise.all(this.conns.map((c) => closeConnection(c, 50)));
    await Promise.all(this.loops);
  }
}
