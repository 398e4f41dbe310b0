/**
 * The shipped Prometheus alert rules (deploy/prometheus/patchbay-fleet.rules.yml) are valid
 * (`promtool check rules`, Debian package `prometheus`) and name metrics the service exports.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { Registry } from 'prom-client';
import { registerFleetMetrics } from '../../src/fleet/index.js';

const RULES = 'deploy/prometheus/patchbay-fleet.rules.yml';
const PROMTOOL = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p));

interface Rule {
  alert: string;
  expr: string;
}

describe('fleet alert rules', () => {
  it.skipIf(!PROMTOOL)('pass promtool check rules', () => {
    const out = execFileSync(PROMTOOL!, ['check', 'rules', RULES], { encoding: 'utf8' });
    expect(out).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('alert on the degraded fleet, eviction, lost state, held callers, queue timeouts and lost replicas, with fleet metrics that exist', async () => {
    const doc = parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ name: string; rules: Rule[] }> };
    const rules = doc.groups.flatMap((g) => g.rules);
    expect(rules.map((r) => r.alert).sort()).toEqual(
      [
        'PatchbayCallersHeldPastBudget',
        'PatchbayFleetDegraded',
        'PatchbayFleetRedisEvicts',
        'PatchbayFleetShrunk',
        'PatchbayFleetStateLost',
        'PatchbayQueueTimeouts',
        'PatchbayReplicaLost',
      ].sort(),
    );
    const registry = new Registry();
    registerFleetMetrics(registry, { degraded: false, replicaId: 'r', evictionPolicy: 'allkeys-lru', stateLosses: 0 });
    const exported = (await registry.getMetricsAsJSON()).map((m) => m.name);
    for (const r of rules)
      for (const name of r.expr.match(/patchbay_fleet_[a-z_]+/g) ?? []) expect(exported, `${r.alert}: ${name}`).toContain(name);
  });
});
