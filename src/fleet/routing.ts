/**
 * Small Redis reads and writes of the fleet that need no script: the room index (who to tell about
 * a room), fleet-wide event dedupe, and the marks survivors leave for a replica they presumed lost.
 */
import type { Redis } from 'ioredis';

/** What these need of a Fleet. */
export interface FleetKeys {
  readonly prefix: string;
  readonly replicaId: string;
  readonly redis: Redis;
  readonly opts: { claimTtlMs: number };
  op<T>(what: string, f: () => Promise<T>): Promise<T>;
}

/**
 * Who to tell about `room`: the replica running its bot, or — while the call still waits in the
 * queue — the replica that queued it; with the call's id. Undefined for a room the fleet does not know.
 */
export async function ownerOfRoom(f: FleetKeys, room: string): Promise<{ replicaId: string; callId: string } | undefined> {
  const v = await f.op('ownerOfRoom', () => f.redis.get(`${f.prefix}room:${room}`));
  if (!v) return undefined;
  const i = v.indexOf('|');
  return { replicaId: v.slice(0, i), callId: v.slice(i + 1) };
}

/** Fleet-wide dedupe: true the first time `eventId` is seen (within `ttlMs`). */
export async function firstSeen(f: FleetKeys, eventId: string, ttlMs: number): Promise<boolean> {
  return (await f.op('firstSeen', () => f.redis.set(`${f.prefix}evt:${eventId}`, f.replicaId, 'PX', ttlMs, 'NX'))) === 'OK';
}

/** A survivor recorded `callId` of `owner` as replica_lost: the owner learns it if it comes back. */
export async function noteRecordedLost(f: FleetKeys, owner: string, callId: string): Promise<void> {
  const k = `${f.prefix}lostrec:${owner}`;
  await f.op('lostrec', () => f.redis.multi().hset(k, callId, f.replicaId).pexpire(k, f.opts.claimTtlMs).exec());
}

/**
 * The fleet-wide right to write the one record of a lost replica's call: a survivor recording it
 * `replica_lost`, or the restarted replica recording what its orphaned worker left (issue 21,
 * item 5). False when someone else has it. Redis unreachable: true (a record rather than none).
 */
export async function claimRecord(f: FleetKeys, callId: string): Promise<boolean> {
  try {
    const r = await f.op('lostrec', () => f.redis.set(`${f.prefix}recorded:${callId}`, f.replicaId, 'PX', f.opts.claimTtlMs, 'NX'));
    return r === 'OK';
  } catch {
    return true;
  }
}

/** This replica was presumed lost: the calls survivors recorded `replica_lost` (marks cleared, with the reaped marker). */
export async function takeLostMarks(f: FleetKeys): Promise<string[]> {
  const rec = `${f.prefix}lostrec:${f.replicaId}`;
  const recorded = await f.op('reaped', () => f.redis.hkeys(rec));
  await f.op('reaped', () => f.redis.del(`${f.prefix}reaped:${f.replicaId}`, rec));
  return recorded;
}
