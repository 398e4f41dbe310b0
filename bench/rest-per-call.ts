/**
 * Daily REST requests per call, by Daily's rate class (issue 27, item 3): what one call costs the
 * domain's rate limits on the warm path (WARM_ROOMS) and on the per-call path, counted from the
 * emulator's request log (every request the service and its workers sent), after the calls ended
 * and their rooms were deleted.
 *
 *   npx tsx bench/rest-per-call.ts [--calls 20]
 *
 * Each caller waits until connected, stays 300 ms and hangs up; calls one after the other, so the
 * counts are the steady state per call (warm: the slot's refill and its used room's deletion count
 * for the call that used it). One JSON line per mode goes to bench/results/rest-per-call.jsonl.
 */
import { Command } from 'commander';
import { rateClassOf } from '../src/daily/rate-limit.js';
import { machine, NUMBER, record, startBenchStack } from './lib/common.js';

const opts = new Command()
  .option('--calls <n>', 'calls per mode', (v) => Number.parseInt(v, 10), 20)
  .parse()
  .opts<{ calls: number }>();

/** `POST /rooms/pb-…-123` → `POST /rooms/:name` (one line per endpoint). */
function endpoint(method: string, path: string): string {
  const p = (path.split('?')[0] ?? path)
    .replace(/^\/v1(?=\/)/, '')
    .replace(/^\/rooms\/[^/]+/, '/rooms/:name')
    .replace(/^\/recordings\/[^/]+/, '/recordings/:id');
  return `${method} ${p}`;
}

async function run(mode: 'warm' | 'cold'): Promise<Record<string, unknown>> {
  const env: Record<string, string> = mode === 'warm' ? { WARM_ROOMS: '1', IDLE_WORKERS: '2' } : { WARM_ROOMS: '0', IDLE_WORKERS: '2' };
  const s = await startBenchStack({ env: { ...env, DEFAULT_BOT: 'greet', DAILY_ROOM_DELETE_INTERVAL_MS: '100' } });
  try {
    if (mode === 'warm') await until(() => s.rt.warm!.stats().ready === 1, 30_000);
    await until(() => s.rt.pool.stats().idle >= 1, 60_000);
    const from = s.emulator.requestLog.length;
    for (let i = 0; i < opts.calls; i++) {
      const call = s.emulator.placeCall({
        to: NUMBER,
        script: [{ waitFor: 'connected', timeoutMs: 30_000 }, { wait: 300 }, { hangup: true }],
      });
      await call.ended;
      await until(() => s.rt.dispatcher.liveCalls().length === 0, 30_000);
      if (mode === 'warm') await until(() => s.rt.warm!.stats().ready === 1, 30_000);
    }
    // Every room of these calls deleted (the paced queue), the warm slot's own room aside.
    await until(() => s.emulator.snapshot().rooms.length <= (mode === 'warm' ? 1 : 0), 60_000);
    const log = s.emulator.requestLog.slice(from);
    const byEndpoint: Record<string, number> = {};
    const byClass: Record<string, number> = { default: 0, delete: 0, start: 0 };
    for (const r of log) {
      byEndpoint[endpoint(r.method, r.path)] = (byEndpoint[endpoint(r.method, r.path)] ?? 0) + 1;
      byClass[rateClassOf(r.method, r.path)] = (byClass[rateClassOf(r.method, r.path)] ?? 0) + 1;
    }
    const per = (n: number) => Math.round((n / opts.calls) * 100) / 100;
    return {
      mode,
      calls: opts.calls,
      perCallByClass: Object.fromEntries(Object.entries(byClass).map(([k, v]) => [k, per(v)])),
      perCallByEndpoint: Object.fromEntries(Object.entries(byEndpoint).map(([k, v]) => [k, per(v)])),
      status429: log.filter((r) => r.status === 429).length,
      ...machine(),
    };
  } finally {
    await s.close();
  }
}

async function until(f: () => boolean, timeoutMs: number): Promise<void> {
  const t0 = Date.now();
  while (!f()) {
    if (Date.now() - t0 > timeoutMs) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

for (const mode of ['warm', 'cold'] as const) {
  const r = await run(mode);
  console.log(JSON.stringify(r));
  record('rest-per-call', r);
}
process.exit(0);
