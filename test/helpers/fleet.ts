/** Fleets for tests: each test gets its own namespace on a shared redis-server. */
import { randomBytes } from 'node:crypto';
import { Fleet, type FleetOptions } from '../../src/fleet/index.js';

export function namespace(): string {
  return `t${randomBytes(4).toString('hex')}`;
}

export async function startFleet<P = unknown>(url: string, ns: string, opts: Partial<FleetOptions> = {}): Promise<Fleet<P>> {
  const f = new Fleet<P>({
    url,
    namespace: ns,
    capacity: 2,
    maxQueued: 4,
    claimTtlMs: 60_000,
    heartbeatMs: 200,
    replicaLostMs: 1_000,
    opTimeoutMs: 300,
    blockMs: 200,
    ...opts,
  });
  await f.start();
  return f;
}
