/**
 * Fleet mode: what the owner of a call stores with its claim, and the record of a lost replica's
 * calls (made once, by the survivor that won its clean-up).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../core/config.js';
import type { EndClaimer, Outcome } from '../core/outcome.js';
import type { CallIdentity } from '../core/call-identity.js';
import type { RoomService } from '../daily/room-service.js';
import type { Fleet, ReplicaLost } from './index.js';
import { claimRecord, noteRecordedLost } from './routing.js';
import type { CallAssignment } from '../workers/protocol.js';
import type { AdmitAnswer } from '../admission/types.js';
import type { Call } from '../call/call.js';
import type { Dispatcher } from '../admission/dispatcher.js';

/** What the owner stores with its claim: the answer for duplicates, and what a survivor records if it is lost. */
export interface StoredAnswer extends AdmitAnswer {
  callDomain?: string;
  from?: string;
  to?: string;
  receivedAtMs?: number;
}

export function answerOf(call: Call, receivedAtMs: number, state: StoredAnswer['state']): StoredAnswer {
  const r = call.record;
  return {
    id: r.id,
    callId: r.callId,
    roomUrl: r.roomUrl,
    bot: r.bot,
    state,
    callDomain: r.callDomain,
    from: r.from,
    to: r.to,
    receivedAtMs,
  };
}

/**
 * This replica won the clean-up of a lost replica: each call it was running is recorded
 * `replica_lost` here, once, and its room deleted — once Daily's presence data says its bot has
 * left. A replica is "lost" when its heartbeat stopped, which is also what a replica cut off from
 * Redis (or frozen for a while) looks like; its bots are then still serving their callers, and
 * deleting their rooms would cut them off. Presence trails the room by up to `presenceLagMs`, so:
 *
 *  - the bot is listed: the call is left to its owner, and looked at again every `presenceRecheckMs`
 *    until the owner is back in the fleet (it publishes its calls again), the bot has left, or the
 *    room is gone (the owner finished it);
 *  - someone else (the caller) is listed but no bot: the bot joined before the caller, so it would be
 *    listed if it were there — it has left: recorded and deleted now;
 *  - nobody is listed: a call too young to show yet, or an empty room — looked at again until the
 *    data has caught up with the first look (`presenceLagMs` after it), then recorded and deleted.
 */
export class LostCalls {
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(private readonly deps: RecordDeps & { rooms: RoomService; log: Logger }) {}

  settle(lost: ReplicaLost): void {
    for (const c of lost.calls)
      this.look({ ...c, owner: lost.replicaId, looks: 0, firstLookAtMs: Date.now(), botSeen: false, failures: 0 });
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private look(w: Watched, afterMs = 0): void {
    const run = () =>
      void this.check(w).catch((err: unknown) => this.deps.log.error({ err, callId: w.callId }, 'fleet: recording a lost call failed'));
    if (afterMs === 0) return run();
    const t = setTimeout(() => {
      this.timers.delete(t);
      run();
    }, afterMs);
    t.unref();
    this.timers.add(t);
  }

  private async check(w: Watched): Promise<void> {
    if (this.closed) return;
    const { fleet, config, rooms, log } = this.deps;
    const lostMs = config.fleet?.replicaLostMs ?? 0;
    const recheckMs = config.fleet?.presenceRecheckMs ?? 15_000;
    const lagMs = config.fleet?.presenceLagMs ?? 15_000;
    const ctx = { callId: w.callId, owner: w.owner, room: w.room };
    if (w.looks > 0 && (await this.ownerBack(w.callId, w.owner))) {
      log.info(ctx, 'fleet: the presumed-lost owner is back and runs its call again');
      return;
    }
    w.looks++;
    let seen: { bot: boolean; others: number } | undefined | 'unknown';
    try {
      seen = w.room ? await rooms.presence(w.room) : undefined;
    } catch (err) {
      log.warn({ ...ctx, err }, 'fleet: could not ask Daily who is in a lost call’s room');
      seen = 'unknown';
    }
    if (seen === 'unknown') {
      // Daily could not say: looked at again a few times, then treated as left (nobody may be serving the caller).
      if (++w.failures < UNKNOWN_LOOKS) return this.look(w, recheckMs);
    } else if (seen === undefined) {
      if (w.botSeen) {
        // The bot was there after its owner went quiet, and the room is gone since: the owner
        // finished the call (and recorded it), or the room expired under it.
        log.info(ctx, 'fleet: a presumed-lost call’s room is gone; its owner finished it');
        return;
      }
    } else if (seen.bot) {
      if (!w.botSeen)
        log.warn(ctx, 'fleet: replica presumed lost, but its bot is still in the room; the call is left to it and looked at again');
      w.botSeen = true;
      return this.look(w, recheckMs);
    } else if (seen.others === 0 && !w.botSeen) {
      // Nobody listed and the bot never seen: the data may not show a young call yet. (A bot seen
      // and now gone with nobody left: the call is over — settled now, not after the lag.)
      const behindMs = w.firstLookAtMs + lagMs - Date.now();
      if (behindMs > 0) return this.look(w, Math.min(recheckMs, behindMs + 100));
    }
    const detail =
      `replica ${w.owner} stopped (no heartbeat for ${lostMs} ms); recorded by ${fleet.replicaId}` +
      (w.botSeen ? `; its bot stayed in the room ${Date.now() - w.firstLookAtMs} ms more` : '');
    if (!(await claimRecord(fleet, w.callId))) {
      log.info(ctx, 'fleet: a presumed-lost call is already recorded (its restarted owner picked up its orphaned worker)');
      return;
    }
    await noteRecordedLost(fleet, w.owner, w.callId).catch(() => undefined);
    await recordElsewhere(w, w.owner, 'replica_lost', detail, 'fleet', this.deps);
  }

  /** The owner published its calls again (it got back to Redis and learnt it was presumed lost). */
  private async ownerBack(callId: string, owner: string): Promise<boolean> {
    const { fleet } = this.deps;
    try {
      const [listed, alive] = await Promise.all([
        fleet.op('lost', () => fleet.redis.hexists(`${fleet.prefix}calls:${owner}`, callId)),
        fleet.op('lost', () => fleet.redis.exists(`${fleet.prefix}hb:${owner}`)),
      ]);
      return listed === 1 && alive === 1;
    } catch {
      return false;
    }
  }
}

interface Watched {
  callId: string;
  room: string;
  owner: string;
  looks: number;
  firstLookAtMs: number;
  /** Daily listed its bot after its owner went quiet. */
  botSeen: boolean;
  failures: number;
}

/** Presence queries that failed before a lost call is treated as nobody's. */
const UNKNOWN_LOOKS = 3;

export interface RecordDeps {
  fleet: Fleet<CallAssignment>;
  dispatcher: Dispatcher;
  config: Config;
}

/**
 * Records a call another replica owned and can no longer record (it is gone), from what its owner
 * stored with the claim; its room goes through the paced deletion queue (background priority).
 */
export async function recordElsewhere(
  c: { callId: string; room: string },
  owner: string,
  outcome: Outcome,
  detail: string,
  by: EndClaimer,
  deps: RecordDeps,
): Promise<void> {
  const { fleet, dispatcher } = deps;
  let a: Partial<StoredAnswer> = {};
  try {
    const raw = await fleet.op('lost', () => fleet.redis.hget(`${fleet.prefix}claim:${c.callId}`, 'answer'));
    if (raw) a = JSON.parse(raw) as StoredAnswer;
  } catch {
    /* recorded with what the registry had */
  }
  const identity: CallIdentity = {
    id: a.id ?? randomUUID(),
    callId: c.callId,
    callDomain: a.callDomain ?? '',
    from: a.from ?? '',
    to: a.to ?? '',
    sipHeaders: {},
    bot: a.bot ?? '',
    roomName: c.room,
    roomUrl: a.roomUrl ?? '',
  };
  const call = dispatcher.createCall(identity, a.receivedAtMs ?? Date.now(), owner);
  call.end(outcome, detail, by);
  void dispatcher.finish(call);
}

/** The replica learns it was presumed lost: an error only if some of its calls were really recorded elsewhere. */
export function logPresumedLost(log: Pick<Logger, 'error' | 'warn'>, live: number, recorded: unknown[]): void {
  if (recorded.length > 0)
    log.error({ live, recorded }, 'fleet: this replica was presumed lost; some of its calls were recorded elsewhere');
  else log.warn({ live }, 'fleet: this replica was presumed lost; its calls were left to it');
}
