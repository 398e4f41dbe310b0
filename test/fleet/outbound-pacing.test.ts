/**
 * Outbound pacing across a fleet (issue 26): Daily's `start` rate class (1/s, up to 5 per 5 s) is per
 * domain, so two replicas dialling out must share it. With REDIS_URL their limiter is one window in
 * Redis (src/fleet/rate-limit-redis.ts): 8 calls asked for at 5 per second, half at each replica, are
 * all answered with no 429 from the emulator (which enforces the class on startDialOut). The
 * control — the same replicas without Redis, each pacing alone — meets the emulator's 429s, so the
 * first run can fail.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FIXTURE_BOTS } from '../helpers/ops.js';
import { until } from '../helpers/invariants.js';
import { startFleetOfReplicas, type FleetOfReplicas } from '../helpers/fleet-replicas.js';

const TOKEN = 'fleet-pacing-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

interface View {
  status: string;
  result: string | null;
  detail: string | null;
  history: Array<{ status: string; atMs: number }>;
}

/** The most outbound calls dialling or talking at once (from each call's `dialing` to its `ended`). */
function maxAtOnce(views: View[]): number {
  const at = (v: View, status: string) => v.history.find((h) => h.status === status)?.atMs ?? 0;
  const edges = views.flatMap((v) => [
    { at: at(v, 'dialing'), d: 1 },
    { at: at(v, 'ended'), d: -1 },
  ]);
  let now = 0;
  let max = 0;
  for (const e of edges.sort((a, b) => a.at - b.at || a.d - b.d)) max = Math.max(max, (now += e.d));
  return max;
}

async function burst(f: FleetOfReplicas, n: number, perSecond: number, answerAfterMs = 0): Promise<View[]> {
  for (let i = 0; i < n; i++)
    f.emulator.setDialOutTarget(`+1555887${String(i).padStart(4, '0')}`, { answer: 'answer', answerAfterMs, script: [{ hangup: true }] });
  const placed: Array<{ url: string; id: string }> = [];
  for (let i = 0; i < n; i++) {
    const url = f.replicas[i % f.replicas.length]!.url;
    const r = await fetch(`${url}/calls`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ to: `+1555887${String(i).padStart(4, '0')}`, bot: 'outbound' }),
    });
    expect(r.status).toBe(202);
    placed.push({ url, id: ((await r.json()) as { call: { id: string } }).call.id });
    await new Promise((r) => setTimeout(r, 1000 / perSecond));
  }
  const views: View[] = [];
  await until(
    async () => {
      views.length = 0;
      for (const p of placed)
        views.push(((await (await fetch(`${p.url}/calls/${p.id}`, { headers: auth })).json()) as { call: (typeof views)[number] }).call);
      return views.every((v) => v.status === 'ended');
    },
    120_000,
    'every outbound call to end',
  );
  return views;
}

const env = {
  BOTS_DIR: FIXTURE_BOTS,
  DEFAULT_BOT: 'outbound',
  CALLS_API_TOKEN: TOKEN,
  MAX_CONCURRENT_BOTS: '4',
  // Every worker warm before the burst: the dial-outs, not worker start-ups, set the pace.
  IDLE_WORKERS: '4',
  OUTBOUND_MAX_CONCURRENT: '4',
  OUTBOUND_MAX_ATTEMPTS: '1',
  VOICEMAIL_DETECT: 'false',
  DAILY_RATE_LIMITS: 'delete=300/30000',
};

async function warm(f: FleetOfReplicas): Promise<void> {
  await until(async () => (await Promise.all([0, 1].map((i) => f.status(i)))).every((s) => s.workers.idle >= 4), 120_000, 'warm workers');
}

describe('outbound pacing in a fleet', () => {
  let f: FleetOfReplicas | undefined;
  afterEach(async () => {
    await f?.stop();
    f = undefined;
  }, 60_000);

  it('two replicas, 8 calls at 5 per second (5× the start class): all answered, no 429 (one window in Redis)', async () => {
    f = await startFleetOfReplicas(2, env);
    await warm(f);
    const views = await burst(f, 8, 5, 1_500);
    expect(views.filter((v) => /429|rate/i.test(v.detail ?? ''))).toEqual([]);
    expect(views.map((v) => v.result)).toEqual(Array(8).fill('answered'));
    // Without a fleet-wide cap, the replicas' calls overlap (the control of the next test).
    expect(maxAtOnce(views)).toBeGreaterThanOrEqual(2);
  }, 240_000);

  it('OUTBOUND_FLEET_MAX_CONCURRENT=1: the two replicas run one outbound call at a time between them', async () => {
    f = await startFleetOfReplicas(2, { ...env, OUTBOUND_FLEET_MAX_CONCURRENT: '1' });
    await warm(f);
    const views = await burst(f, 4, 5, 1_500);
    expect(views.map((v) => v.result)).toEqual(Array(4).fill('answered'));
    expect(maxAtOnce(views)).toBe(1);
  }, 240_000);

  it('control: the same replicas without Redis, each pacing alone, meet the emulator’s 429s', async () => {
    f = await startFleetOfReplicas(2, env, { fleet: false });
    await warm(f);
    const views = await burst(f, 8, 5);
    expect(views.filter((v) => v.result === 'failed' && /429/.test(v.detail ?? '')).length).toBeGreaterThan(0);
  }, 240_000);
});
