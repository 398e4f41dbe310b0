/**
 * Fleet gauges for the replica's prom-client registry. Read at scrape time from what the Fleet
 * already knows (no Redis round trip during a scrape).
 */
import { Gauge, type Registry } from 'prom-client';

export interface FleetGaugeSource {
  readonly degraded: boolean;
  readonly replicaId: string;
  /** Last fleet view (from the last fleetStatus()), if any. */
  lastSeen?: { replicas: number; queued: number } | undefined;
  /** Redis's maxmemory-policy, when known. */
  readonly evictionPolicy?: string | undefined;
  /** Times Redis was found to have lost the fleet's state. */
  readonly stateLosses?: number;
}

export function registerFleetMetrics(registry: Registry, fleet: FleetGaugeSource): void {
  new Gauge({
    name: 'patchbay_fleet_degraded',
    help: '1 while this replica cannot reach Redis and runs on its own (per-replica dedupe, local queue)',
    labelNames: ['replica'],
    registers: [registry],
    collect() {
      this.set({ replica: fleet.replicaId }, fleet.degraded ? 1 : 0);
    },
  });
  new Gauge({
    name: 'patchbay_fleet_redis_evicts',
    help: "1 when Redis's maxmemory-policy may evict fleet keys (anything but noeviction): duplicates and forgotten callers under memory pressure",
    labelNames: ['policy'],
    registers: [registry],
    collect() {
      this.reset();
      const p = fleet.evictionPolicy;
      if (p !== undefined) this.set({ policy: p }, p === 'noeviction' ? 0 : 1);
    },
  });
  new Gauge({
    name: 'patchbay_fleet_state_lost_total',
    help: "Times this replica found that Redis had lost the fleet's state (restart, FLUSHALL, eviction, empty primary) and published its own again",
    registers: [registry],
    collect() {
      this.set(fleet.stateLosses ?? 0);
    },
  });
  new Gauge({
    name: 'patchbay_fleet_replicas',
    help: 'Live replicas in the fleet, as last seen by this replica',
    registers: [registry],
    collect() {
      if (fleet.lastSeen) this.set(fleet.lastSeen.replicas);
    },
  });
  new Gauge({
    name: 'patchbay_fleet_queued_calls',
    help: 'Calls waiting for a bot in the fleet-wide queue, as last seen by this replica',
    registers: [registry],
    collect() {
      if (fleet.lastSeen) this.set(fleet.lastSeen.queued);
    },
  });
}
