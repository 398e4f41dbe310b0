/**
 * GET /metrics and the health routes on a real stack: the series after a call match the call's
 * record, readiness turns 503 when admission is full, and two apps in one process keep separate
 * registries.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { signPinless } from '../../src/daily/signature.js';
import { OUTCOMES } from '../../src/core/outcome.js';
import { FIXTURE_BOTS, getJson, waitFor, waitRecord } from '../helpers/ops.js';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';

/** `name{labels} value` lines of the exposition format → map keyed by `name{labels}`. */
function parseMetrics(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

async function scrape(stack: Stack): Promise<{ text: string; m: Map<string, number>; contentType: string | null }> {
  const res = await fetch(`${stack.url}/metrics`);
  expect(res.status).toBe(200);
  const text = await res.text();
  return { text, m: parseMetrics(text), contentType: res.headers.get('content-type') };
}

function signed(stack: Stack, body: unknown) {
  const raw = JSON.stringify(body);
  const ts = String(Date.now());
  return fetch(`${stack.url}/dialin`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-pinless-timestamp': ts, 'x-pinless-signature': signPinless(raw, stack.secret, ts) },
    body: raw,
  });
}

let a: Stack;
let b: Stack;

beforeAll(async () => {
  const env = { BOTS_DIR: FIXTURE_BOTS, DEFAULT_BOT: 'linger', IDLE_WORKERS: '1', MAX_CONCURRENT_BOTS: '1', MAX_QUEUED_CALLS: '0' };
  [a, b] = await Promise.all([startStack({ env }), startStack({ env: { ...env, IDLE_WORKERS: '0' } })]);
  await waitFor('a warm worker', () => a.rt.pool.stats().idle === 1, 30_000);
});
afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
});

describe('metrics and health', () => {
  test('before any call: every outcome at 0, gauges, worker start time, default process metrics', async () => {
    const { text, m, contentType } = await scrape(a);
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    for (const o of OUTCOMES) expect(m.get(`patchbay_calls_total{outcome="${o}"}`)).toBe(0);
    expect(m.get('patchbay_active_bots')).toBe(0);
    expect(m.get('patchbay_queued_calls')).toBe(0);
    expect(m.get('patchbay_idle_workers')).toBe(1);
    expect(m.get('patchbay_draining')).toBe(0);
    expect(m.get('patchbay_worker_start_seconds_count')).toBeGreaterThanOrEqual(1);
    const w = a.rt.pool.all()[0]!;
    expect(m.get('patchbay_worker_start_seconds_sum')).toBeGreaterThanOrEqual((w.readyAtMs! - w.startedAtMs) / 1000 - 0.001);
    for (const name of [
      'process_cpu_user_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_seconds',
      'nodejs_heap_size_used_bytes',
    ]) {
      expect(text).toMatch(new RegExp(`^${name} `, 'm'));
    }
    expect(text).toMatch(/^# TYPE patchbay_webhook_ack_seconds histogram$/m);
    expect(text).toMatch(/^patchbay_info\{version="\d+\.\d+\.\d+[^"]*"\} 1$/m);
  });

  test('during a call: active bot, readiness 503 when admission is full, refused webhooks timed by status', async () => {
    const emulated = a.emulator.placeCall({ to: NUMBER });
    const ended = a.waitEnded(emulated.callId, 30_000);
    const live = await waitRecord(a, emulated.callId, (r) => r.timeline.bot_started !== undefined);

    let { m } = await scrape(a);
    expect(m.get('patchbay_active_bots')).toBe(1);
    const ready = await getJson<{ status: string; reason: string }>(`${a.url}/health/ready`);
    expect(ready).toMatchObject({ status: 503, body: { status: 'unavailable', reason: 'full' } });
    expect((await getJson(`${a.url}/health/live`)).status).toBe(200);

    const busy = await signed(a, { To: NUMBER, From: '+15550009999', callId: randomUUID(), callDomain: randomUUID() });
    expect(busy.status).toBe(503);
    expect(busy.headers.get('retry-after')).toBe('1');
    expect(await busy.json()).toMatchObject({ error: 'busy', reason: 'queue_full' });
    const unsigned = await fetch(`${a.url}/dialin`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"To":"x","From":"y","callId":"z","callDomain":"w"}',
    });
    expect(unsigned.status).toBe(401);

    await emulated.press('3');
    const record = await ended;
    expect(record.id).toBe(live.id);
    expect(record.outcome).toBe('completed');
    await waitFor('the slot to be freed', () => a.rt.dispatcher.stats().active === 0, 10_000);
    expect((await getJson(`${a.url}/health/ready`)).status).toBe(200);

    ({ m } = await scrape(a));
    expect(m.get('patchbay_calls_total{outcome="completed"}')).toBe(1);
    expect([...m].filter(([k, v]) => k.startsWith('patchbay_calls_total{') && v > 0)).toHaveLength(1);
    // The busy webhook is counted by its reason (the unsigned one is refused before admission: not counted here).
    expect(m.get('patchbay_dialin_refused_total{reason="queue_full"}')).toBe(1);
    expect([...m].filter(([k, v]) => k.startsWith('patchbay_dialin_refused_total{') && v > 0)).toHaveLength(1);
    expect(m.get('patchbay_call_starts_total{start="warm"}')).toBe(1);
    expect(m.get('patchbay_call_starts_total{start="cold"}')).toBe(0);
    expect(m.get('patchbay_active_bots')).toBe(0);
    expect(m.get('patchbay_webhook_ack_seconds_count{status="200"}')).toBe(1);
    expect(m.get('patchbay_webhook_ack_seconds_count{status="503"}')).toBe(1);
    expect(m.get('patchbay_webhook_ack_seconds_count{status="401"}')).toBe(1);
    expect(m.get('patchbay_webhook_ack_seconds_sum{status="200"}')).toBeLessThan(5);
    // The histograms carry exactly this call's timeline.
    const t = record.timeline;
    const close = (key: string, ms: number) => expect(m.get(key)).toBeCloseTo(ms / 1000, 3);
    expect(m.get('patchbay_time_to_dialin_ready_seconds_count')).toBe(1);
    close('patchbay_time_to_dialin_ready_seconds_sum', t.dialin_ready! - t.received!);
    expect(m.get('patchbay_time_to_pinless_update_seconds_count')).toBe(1);
    close('patchbay_time_to_pinless_update_seconds_sum', t.forwarded! - t.received!);
    expect(m.get('patchbay_hold_added_seconds_count')).toBe(1);
    close('patchbay_hold_added_seconds_sum', t.forward_sent! - t.received!);
    // Buckets are cumulative and end with +Inf = count.
    expect(m.get('patchbay_hold_added_seconds_bucket{le="+Inf"}')).toBe(1);
  });

  test('each app has its own registry', async () => {
    expect(a.rt.app.metrics).not.toBe(b.rt.app.metrics);
    const { m } = await scrape(b);
    expect(m.get('patchbay_calls_total{outcome="completed"}')).toBe(0);
    expect(m.get('patchbay_webhook_ack_seconds_count{status="200"}')).toBeUndefined();
    expect(m.get('patchbay_idle_workers')).toBe(0);
  });
});
