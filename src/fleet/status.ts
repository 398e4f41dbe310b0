/** The fleet's replies, typed: the `fleetStatus` script's JSON and `fleetReap`'s list. */
import { pairs } from './connection.js';
import type { LiveCall, ReplicaLost, ReplicaStatus } from './types.js';

export function parseStatus(json: string): { queued: number; replicas: ReplicaStatus[] } {
  const raw = JSON.parse(json) as { queued: number; replicas: unknown };
  // cjson encodes an empty Lua table as {} rather than [].
  const list = (Array.isArray(raw.replicas) ? raw.replicas : []) as Array<{ id: string; alive: boolean; fields: unknown; calls: unknown }>;
  const replicas = list.map((r): ReplicaStatus => {
    const f = pairs(r.fields);
    const calls = Object.entries(pairs(r.calls)).map(([callId, room]) => ({ callId, room }));
    let meta: Record<string, string | number> = {};
    try {
      meta = JSON.parse(f.meta ?? '{}') as Record<string, string | number>;
    } catch {
      /* keep empty */
    }
    return {
      id: r.id,
      alive: r.alive,
      capacity: Number(f.capacity ?? 0),
      active: calls.length,
      queued: Number(f.queued ?? 0),
      draining: f.draining === '1',
      startedAtMs: f.startedAt ? Number(f.startedAt) : undefined,
      lastHeartbeatMs: f.seen ? Number(f.seen) : undefined,
      meta,
      calls,
    };
  });
  return { queued: Number(raw.queued) || 0, replicas };
}

/** fleetReap's reply `{1, nRequeued, requeuedCallId…, lostCallId, room, …}` → what the survivor records. */
export function parseReap(lostId: string, r: [number, number?, ...string[]]): ReplicaLost {
  const n = Number(r[1]);
  const rest = r.slice(2) as string[];
  const requeued = rest.slice(0, n);
  const calls: LiveCall[] = [];
  for (let i = n; i + 1 < rest.length; i += 2) calls.push({ callId: rest[i]!, room: rest[i + 1]! });
  return { replicaId: lostId, calls, requeued };
}
