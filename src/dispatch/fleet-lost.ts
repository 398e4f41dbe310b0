/**
 * Fleet mode: what the owner of a call stores with its claim, and the record of a lost replica's
 * calls (made once, by the survivor that won its clean-up).
 */
import { randomUUID } from 'node:crypto';
import type { Config } from '../config.js';
import type { EndClaimer, Outcome } from '../core/outcome.js';
import type { CallIdentity } from '../core/call-identity.js';
import type { Fleet, ReplicaLost } from '../fleet/index.js';
import type { CallAssignment } from '../ipc/protocol.js';
import type { AdmitAnswer } from './admission-types.js';
import type { Call } from './call.js';
import type { Dispatcher } from './dispatcher.js';

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

/** This replica won the clean-up of a lost replica: each of its calls gets `replica_lost`, once, here. */
export async function recordLost(lost: ReplicaLost, deps: RecordDeps): Promise<void> {
  const { fleet, config } = deps;
  const detail = `replica ${lost.replicaId} stopped (no heartbeat for ${config.fleet?.replicaLostMs ?? 0} ms); recorded by ${fleet.replicaId}`;
  for (const c of lost.calls) await recordElsewhere(c, lost.replicaId, 'replica_lost', detail, 'fleet', deps);
}

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
