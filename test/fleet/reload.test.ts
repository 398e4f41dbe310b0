/**
 * A reload in a fleet (issue 25, item 4): three real replica processes (src/app/main.ts with
 * REDIS_URL), one real redis-server, one emulator (test/helpers/fleet-replicas.ts), sharing one
 * BOTS_DIR under test-output/. POST /admin/reload to one replica reloads all three through Redis
 * (pub/sub); each replica's /status shows its own versions, and every replica's /status shows the
 * whole fleet's (in the heartbeat's meta). SIGHUP reloads the replica that gets it.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../cluster/procs.js';
import { startFleetOfReplicas, type FleetOfReplicas } from '../helpers/fleet-replicas.js';

const ROOT = path.resolve(import.meta.dirname, '../../test-output', `fleet-reload-${process.pid}`);
const BOTS = path.join(ROOT, 'bots');
const bot = (version: string) => `import { defineBot } from '../../../src/sdk/index.js';
export default defineBot({
  name: 'menu',
  version: '${version}',
  async onCall(call) {
    await call.hangup('done');
  },
});
`;

interface BotsStatus {
  bots?: { generation: number; bots: Record<string, string> };
  fleet?: { replicas: Array<{ id: string; alive: boolean; meta: Record<string, unknown> }> };
}

let f: FleetOfReplicas;
const status = async (i: number) => (await (await fetch(`${f.replicas[i]!.url}/status`)).json()) as BotsStatus;
/** The versions every replica shows for the whole fleet (its heartbeat's meta): one map per replica. */
const fleetView = async (i: number) =>
  ((await status(i)).fleet?.replicas ?? [])
    .filter((r) => r.alive)
    .map((r) => JSON.parse(String(r.meta.bots ?? '{}')) as Record<string, string>);

describe('reload in a three-replica fleet', () => {
  beforeAll(async () => {
    rmSync(ROOT, { recursive: true, force: true });
    mkdirSync(BOTS, { recursive: true });
    writeFileSync(path.join(BOTS, 'menu.ts'), bot('v1'));
    writeFileSync(path.join(BOTS, 'routes.json'), JSON.stringify({ default: 'menu' }));
    f = await startFleetOfReplicas(3, { BOTS_DIR: BOTS, IDLE_WORKERS: '1', WARM_ROOMS: '0', FLEET_HEARTBEAT_MS: '300' });
  }, 120_000);

  afterAll(async () => {
    await f?.stop();
    rmSync(ROOT, { recursive: true, force: true });
  }, 60_000);

  it('POST /admin/reload to one replica reaches all three; SIGHUP reloads one', async () => {
    await waitUntil(
      async () => {
        const view = await fleetView(0);
        return view.length === 3 && view.every((v) => v.menu === 'v1');
      },
      'every replica publishing menu v1',
      30_000,
      200,
    );

    writeFileSync(path.join(BOTS, 'menu.ts'), bot('v2'));
    const res = await fetch(`${f.replicas[0]!.url}/admin/reload`, { method: 'POST' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { generation: number; bots: Record<string, string>; published: number };
    expect(body).toMatchObject({ generation: 1, bots: { menu: 'v2' } });
    expect(body.published).toBeGreaterThanOrEqual(2);

    await waitUntil(
      async () => (await Promise.all([0, 1, 2].map(status))).every((s) => s.bots?.generation === 1 && s.bots.bots.menu === 'v2'),
      'all three replicas on menu v2',
      60_000,
      200,
    );
    for (const i of [0, 1, 2]) {
      expect(f.replicas[i]!.lines.some((l) => l.msg === 'bots reloaded')).toBe(true);
    }
    await waitUntil(async () => (await fleetView(2)).every((v) => v.menu === 'v2'), 'the fleet view on v2', 10_000, 200);

    // SIGHUP: this replica alone, again.
    f.replicas[1]!.proc.kill('SIGHUP');
    await waitUntil(async () => (await status(1)).bots?.generation === 2, 'replica 1 reloaded by SIGHUP', 60_000, 200);
    expect((await status(0)).bots?.generation).toBe(1);
  }, 150_000);
});
