/**
 * Pacing of outbound calls (issue 26): dial-out starts are in Daily's `start` rate class (1/s, up
 * to 5 per 5 s per domain), which the emulator enforces on startDialOut as Daily does on
 * `POST /rooms/:name/dialOut/start`. Asked for 5× that rate, every call is placed and answered with
 * no 429: the workers wait for grants of the parent's limiter. The control: with our limiter
 * loosened (DAILY_RATE_LIMITS start=100/5000) the same burst meets the emulator's 429s, so the
 * first test can fail.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FIXTURE_BOTS } from '../helpers/ops.js';
import { startStack, type Stack } from '../helpers/stack.js';
import { until } from '../helpers/invariants.js';

const TOKEN = 'pacing-test-token-0123456789';

async function burst(s: Stack, n: number, perSecond: number): Promise<Array<{ result: string | null; detail: string | null }>> {
  await until(() => s.rt.pool.stats().idle >= n, 120_000, `${n} warm workers`);
  for (let i = 0; i < n; i++)
    s.emulator.setDialOutTarget(`+1555888${String(i).padStart(4, '0')}`, { answer: 'answer', script: [{ hangup: true }] });
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await fetch(`${s.url}/calls`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ to: `+1555888${String(i).padStart(4, '0')}`, bot: 'outbound' }),
    });
    expect(r.status).toBe(202);
    ids.push(((await r.json()) as { call: { id: string } }).call.id);
    await new Promise((r) => setTimeout(r, 1000 / perSecond));
  }
  const views: Array<{ status: string; result: string | null; detail: string | null }> = [];
  await until(
    async () => {
      views.length = 0;
      for (const id of ids) {
        const r = await fetch(`${s.url}/calls/${id}`, { headers: { authorization: `Bearer ${TOKEN}` } });
        views.push(((await r.json()) as { call: (typeof views)[number] }).call);
      }
      return views.every((v) => v.status === 'ended');
    },
    120_000,
    'every outbound call to end',
  );
  return views;
}

const env = (extra: Record<string, string> = {}) => ({
  BOTS_DIR: FIXTURE_BOTS,
  DEFAULT_BOT: 'outbound',
  CALLS_API_TOKEN: TOKEN,
  MAX_CONCURRENT_BOTS: '8',
  // Every worker warm before the burst: the dial-outs, not worker start-ups, set the pace.
  IDLE_WORKERS: '8',
  OUTBOUND_MAX_CONCURRENT: '8',
  OUTBOUND_MAX_ATTEMPTS: '1',
  VOICEMAIL_DETECT: 'false',
  ...extra,
});

describe('outbound pacing under Daily’s start rate class', () => {
  let s: Stack | undefined;
  afterEach(async () => {
    await s?.close();
    s = undefined;
  });

  it('8 calls asked for at 5 per second (5× the start class): all answered, no 429', async () => {
    s = await startStack({ env: env() });
    await until(() => s!.rt.pool.stats().idle >= 8, 120_000, '8 warm workers');
    const t0 = Date.now();
    const views = await burst(s, 8, 5);
    const seconds = (Date.now() - t0) / 1000;
    console.log(
      `dial-out throughput: 8 outbound calls answered in ${seconds.toFixed(1)} s (${(8 / seconds).toFixed(2)}/s; start class 1/s, burst 5)`,
    );
    expect(views.filter((v) => /429|rate/i.test(v.detail ?? ''))).toEqual([]);
    expect(views.map((v) => v.result)).toEqual(Array(8).fill('answered'));
  }, 180_000);

  it('control: with our limiter loosened, the same burst meets the emulator’s 429s', async () => {
    s = await startStack({ env: env({ DAILY_RATE_LIMITS: 'start=100/5000' }) });
    const views = await burst(s, 8, 5);
    expect(views.filter((v) => v.result === 'failed' && /429/.test(v.detail ?? '')).length).toBeGreaterThan(0);
  }, 180_000);
});
