/** Types of the fleet layer (src/fleet): what the dispatcher passes in and gets back. */
import os from 'node:os';
import type { Logger } from 'pino';
import { PatchbayError, errorMessage } from '../core/errors.js';

export interface FleetOptions {
  /** redis://… (REDIS_URL). */
  url: string;
  /** Key namespace: every key is `pb:{<namespace>}:…` (one hash slot). Default `default`. */
  namespace?: string;
  /** This replica's id; random (host-pid-random) by default. Unique per process start. */
  replicaId?: string;
  /** Bots this replica runs at once (MAX_CONCURRENT_BOTS): its share of the fleet's free slots. */
  capacity: number;
  /** Fleet-wide queue bound (MAX_QUEUED_CALLS): calls waiting beyond every free slot of the fleet. */
  maxQueued: number;
  /** How long a claim (dedupe by callId) is kept: beyond MAX_CALL_MS. */
  claimTtlMs: number;
  /** Wait budget given to a call put back in the queue after its replica was lost. Default 10 s. */
  requeueWaitMs?: number;
  /** FLEET_HEARTBEAT_MS. Default 2000. */
  heartbeatMs?: number;
  /** FLEET_REPLICA_LOST_MS: no heartbeat this long → lost. Default 10000 (detected ≤ lost + heartbeat). */
  replicaLostMs?: number;
  /** FLEET_OP_TIMEOUT_MS: every Redis command fails after this. Default 500. */
  opTimeoutMs?: number;
  /**
   * FLEET_ADMIT_TIMEOUT_MS: budget of each Redis step of a webhook's answer (claim, reserve, enqueue,
   * answer) and of the heartbeat, for a slow Redis. Default 2000.
   */
  admitTimeoutMs?: number;
  /** FLEET_DEGRADE_AFTER_MS: a connected Redis that answered nothing this long counts as down. Default 3000. */
  degradeAfterMs?: number;
  /** Longest blocking read of the queue and inbox. Default 1000. */
  blockMs?: number;
  /** Shown in fleetStatus (host, url, version…). */
  meta?: Record<string, string | number>;
  logger?: Logger;
}

/** Outcome of `claim`. */
export type ClaimResult =
  /** Ours. `tookOverFrom`: the first claimant vanished (no heartbeat) before answering. */
  | { kind: 'won'; tookOverFrom?: string }
  | {
      kind: 'duplicate';
      /** The replica that received the call first. */
      owner: string;
      /** The first answer, once the owner stored it (`setAnswer`). */
      answer: unknown;
      /** The replica running the bot, once one took the call from the queue. */
      runner: string | undefined;
    };

export type EnqueueResult =
  | { kind: 'queued'; entryId: string; backlog: number; freeSlots: number }
  | { kind: 'already_queued'; backlog: number; freeSlots: number }
  /** The whole fleet is full: every slot busy and MAX_QUEUED_CALLS waiting. Answer 503. */
  | { kind: 'fleet_full'; backlog: number; freeSlots: number };

export type ReserveResult =
  | { kind: 'reserved'; backlog: number; freeSlots: number }
  | { kind: 'already_reserved'; backlog: number; freeSlots: number }
  /** The whole fleet is full: answer 503 without making a room. */
  | { kind: 'fleet_full'; backlog: number; freeSlots: number };

/** A queued call as the replica that took it sees it. */
export interface TakenCall<P = unknown> {
  callId: string;
  /** Stream entry id (ack it with `ack(callId)`). */
  entryId: string;
  /** The replica that admitted the call (answered its webhook). */
  owner: string;
  room: string;
  payload: P;
  /** Epoch ms (Redis clock) after which the entry would have been dropped. */
  deadlineAtMs: number;
  /** 0 first time; +1 each time it was put back after a replica was lost. */
  attempt: number;
}

/** A call the fleet registry shows running on a replica. */
export interface LiveCall {
  callId: string;
  room: string;
}

export interface ReplicaLost {
  replicaId: string;
  /** Calls it was running (forwarded, or at least not put back): record `replica_lost`, delete their rooms. */
  calls: LiveCall[];
  /** Calls it had taken but not acked: back in the queue for a survivor (the caller is still held). */
  requeued: string[];
}

/** A message in a replica's inbox. */
export type InboxMessage =
  { type: 'event'; event: unknown } | { type: 'taken'; callId: string; by: string } | { type: 'expired'; callId: string };

export interface ReplicaStatus {
  id: string;
  alive: boolean;
  capacity: number;
  active: number;
  /** Calls this replica admitted that are still waiting in the fleet queue. */
  queued: number;
  draining: boolean;
  startedAtMs: number | undefined;
  lastHeartbeatMs: number | undefined;
  meta: Record<string, string | number>;
  calls: LiveCall[];
}

export interface FleetStatus {
  replicaId: string;
  degraded: boolean;
  /** Calls waiting in the fleet queue (not yet taken by a replica). */
  queued: number;
  replicas: ReplicaStatus[];
}

export interface FleetEvents<P = unknown> {
  /** true: Redis unreachable, fall back to per-replica behaviour. false: re-formed. */
  degraded: [boolean];
  /** A domain event another replica routed here. */
  'domain-event': [unknown];
  /** A call this replica admitted was taken by another replica. */
  'call-taken': [{ callId: string; by: string }];
  /** A call this replica admitted expired in the queue (dropped unserved): record `queue_timeout`. */
  'call-expired': [{ callId: string }];
  /** A call whose owner is gone expired in the queue unserved: the replica that found it records it. */
  'call-orphaned': [{ callId: string; room: string; owner: string }];
  /** This replica won the cleanup of a lost replica. */
  'replica-lost': [ReplicaLost];
  /** The fleet presumed this replica lost (it was cut off longer than replicaLostMs) and cleaned it up; the calls a survivor recorded `replica_lost`. */
  'presumed-lost': [string[]];
  /** An entry the consumer loop took (see `startConsumer`). */
  taken: [TakenCall<P>];
}

/** Redis is unreachable or too slow: the operation did nothing (or its effect is unknown). */
export class FleetUnavailableError extends PatchbayError {
  override name = 'FleetUnavailableError';
  constructor(what: string, cause?: unknown) {
    super('fleet_unavailable', `fleet unavailable (${what}): ${errorMessage(cause)}`, { retryable: true, cause });
  }
}

export type ResolvedFleetOptions = Required<Omit<FleetOptions, 'logger' | 'meta' | 'replicaId' | 'namespace'>> & {
  meta: Record<string, string | number>;
};

/** FleetOptions with their defaults. */
export function resolveOptions(options: FleetOptions): ResolvedFleetOptions {
  return {
    url: options.url,
    capacity: options.capacity,
    maxQueued: options.maxQueued,
    claimTtlMs: options.claimTtlMs,
    requeueWaitMs: options.requeueWaitMs ?? 10_000,
    heartbeatMs: options.heartbeatMs ?? 2_000,
    replicaLostMs: options.replicaLostMs ?? 10_000,
    opTimeoutMs: options.opTimeoutMs ?? 500,
    admitTimeoutMs: options.admitTimeoutMs ?? 2_000,
    degradeAfterMs: options.degradeAfterMs ?? 3_000,
    blockMs: options.blockMs ?? 1_000,
    meta: { pid: process.pid, host: os.hostname(), ...options.meta },
  };
}
