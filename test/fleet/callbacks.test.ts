/**
 * Callbacks in a three-replica fleet (issue 26, item 2): real replica processes, a real Redis, the
 * emulator as their Daily (test/helpers/fleet-replicas.ts). The fleet is full; three callers take a
 * callback (stored in the fleet queue); the replica that frees first claims the oldest and dials it;
 * it is SIGKILLed while dialling. Nothing is lost (the others are placed by the survivors) and nothing
 * twice (the one in flight ends `interrupted`, never dialled again).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallerStep, EmulatedCall } from '../../src/emulator/types.js';
import { FIXTURE_BOTS } from '../helpers/ops.js';
import { until } from '../helpers/invariants.js';
import { FLEET_NUMBER, startFleetOfReplicas, type FleetOfReplicas } from '../helpers/fleet-replicas.js';

let f: FleetOfReplicas;
let redis: Redis;
let failed = false;

beforeAll(async () => {
  f = await startFleetOfReplicas(3, {
    BOTS_DIR: FIXTURE_BOTS,
    DEFAULT_BOT: 'callback',
    CALLBACK_OFFER: 'true',
    MAX_CONCURRENT_BOTS: '1',
    MAX_QUEUED_CALLS: '0',
    IDLE_WORKERS: '1',
    VOICEMAIL_DETECT: 'false',
    OUTBOUND_RING_TIMEOUT_MS: '30000',
    FLEET_HEARTBEAT_MS: '300',
    FLEET_REPLICA_LOST_MS: '1500',
    WORKER_CLOSE_TIMEOUT_MS: '2000',
  });
  redis = new Redis(f.redis.url, { lazyConnect: false });
}, 120_000);
afterAll(async () => {
  redis?.disconnect();
  await f?.stop(failed);
}, 60_000);

interface Row {
  number: string;
  state: string;
  owner?: string;
  result?: string;
}

/** The fleet queue's callbacks, read straight from Redis (src/fleet/callbacks.ts). */
async function rows(): Promise<Map<string, Row>> {
  const p = `pb:{${f.env.FLEET_NAMESPACE}}:`;
  const out = new Map<string, Row>();
  for (const id of await redis.zrange(`${p}cb:all`, 0, -1)) {
    const h = (await redis.hgetall(`${p}cb:${id}`)) as unknown as Row;
    out.set(h.number, h);
  }
  return out;
}

const said = (c: EmulatedCall) => c.transcript.filter((t) => t.who === 'bot').map((t) => t.text);
const callOn = (i: number, from?: string, script: CallerStep[] = [{ waitFor: 'say', timeoutMs: 30_000 }, { wait: 90_000 }]) => {
  f.mode = { kind: 'only', index: i };
  return f.emulator.placeCall({ to: FLEET_NUMBER, ...(from ? { from } : {}), script });
};

describe('callbacks in a fleet', () => {
  it('replica SIGKILLed while dialling a callback: nothing lost, nothing placed twice', async () => {
    try {
      // Every bot slot of the fleet taken, one per replica.
      const holders = [0, 1, 2].map((i) => callOn(i));
      await until(() => holders.every((h) => said(h).length > 0), 60_000, 'every slot taken');
      // Three callers, one after the other (their order is the callbacks' order), all offered a callback.
      const [A, B, C] = ['+15550007101', '+15550007102', '+15550007103'];
      for (const n of [A, B, C]) {
        const c = callOn(1, n, [
          { waitFor: 'say', match: 'Press 1', timeoutMs: 30_000 },
          { press: '1' },
          { waitFor: 'say', match: 'call you back' },
        ]);
        await c.ended;
        expect(said(c).at(-1)).toMatch(/We will call you back/);
        await until(async () => (await rows()).has(n), 10_000, `callback ${n} stored`);
      }
      expect([...(await rows()).values()].map((r) => r.state)).toEqual(['pending', 'pending', 'pending']);
      // A rings on and on; B and C answer.
      f.emulator.setDialOutTarget(A, { answer: 'no-answer', ringMs: 60_000 });
      for (const n of [B, C])
        f.emulator.setDialOutTarget(n, { answer: 'answer', script: [{ waitFor: 'say', match: 'callback', timeoutMs: 20_000 }] });
      // The replica that frees first (the one running the first caller) claims the oldest (A) and dials it.
      holders[0]!.hangup();
      await until(async () => (await rows()).get(A)?.state === 'dialing', 30_000, 'A dialling');
      const victimId = (await rows()).get(A)!.owner!;
      const ids = await Promise.all([0, 1, 2].map(async (i) => (await f.status(i)).fleet!.replicaId));
      const victim = ids.indexOf(victimId);
      expect(victim).toBeGreaterThanOrEqual(0);
      await until(() => f.emulator.dialOutsTo(A).length === 1, 10_000, 'A rang');
      f.replicas[victim]!.proc.kill('SIGKILL');
      // A survivor takes the lost replica's callbacks back: A was in flight, so it ends, never dialled again.
      await until(async () => (await rows()).get(A)?.state === 'done', 20_000, 'A settled by a survivor');
      expect((await rows()).get(A)?.result).toBe('interrupted');
      // Capacity frees on the survivors: B and C are placed, once each.
      holders[1]!.hangup();
      holders[2]!.hangup();
      await until(
        async () => {
          const r = await rows();
          return r.get(B)?.state === 'done' && r.get(C)?.state === 'done';
        },
        60_000,
        'B and C placed by the survivors',
      );
      const r = await rows();
      expect([r.get(B)?.result, r.get(C)?.result]).toEqual(['answered', 'answered']);
      expect([r.get(B)?.owner, r.get(C)?.owner].every((o) => o !== undefined && o !== victimId)).toBe(true);
      await new Promise((res) => setTimeout(res, 500));
      expect([A, B, C].map((n) => f.emulator.dialOutsTo(n).length)).toEqual([1, 1, 1]);
      for (const n of [B, C]) expect(said(f.emulator.dialOutsTo(n)[0]!).join(' ')).toMatch(/^This is your callback \(queue_full\)/);
    } catch (err) {
      failed = true;
      throw err;
    }
  }, 240_000);
});
