/**
 * The room + token stage of a call (RoomService.provision: POST /rooms and the bot's meeting token,
 * in parallel), with REST tokens (POST /meeting-tokens) vs self-signed tokens (no request), against
 * the emulator with its realistic latencies.
 *
 *   npx tsx bench/token-mode.ts [--samples 50] [--burst 40] [--limit 20]
 *
 * Scenarios: one call at a time (`samples` calls); a burst of `burst` calls at once; the same burst
 * under a rate limit of `limit` requests per second on the emulator's REST API (all routes together).
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { Command } from 'commander';
import { loadConfig } from '../src/core/config.js';
import { DailyRestClient } from '../src/daily/rest.js';
import { createRoomService } from '../src/daily/room-service.js';
import { createEmulator } from '../src/emulator/server.js';
import { realisticLatencies } from '../src/emulator/types.js';
import { createLogger } from '../src/core/logger.js';
import { fmt, machine, record, summarize } from './lib/common.js';

const opts = new Command()
  .option('--samples <n>', 'sequential calls per mode', (v) => Number.parseInt(v, 10), 50)
  .option('--burst <n>', 'calls at once', (v) => Number.parseInt(v, 10), 40)
  .option('--limit <n>', 'requests per second for the rate-limited burst', (v) => Number.parseInt(v, 10), 20)
  .parse()
  .opts<{ samples: number; burst: number; limit: number }>();

const logger = createLogger({ level: 'error', name: 'bench' });
const apiKey = `bench_${randomBytes(8).toString('hex')}`;
const emu = await createEmulator({ host: '127.0.0.1', port: 0, apiKey, logger, latencies: realisticLatencies });
const rest = new DailyRestClient({ apiUrl: emu.apiUrl, apiKey, timeoutMs: 5_000 });
const domainId = (await rest.getDomain()).domain_id!;
console.log(
  JSON.stringify({
    ...machine(),
    latencies: { roomCreateMs: realisticLatencies.roomCreateMs, tokenCreateMs: realisticLatencies.tokenCreateMs },
  }),
);

type Mode = 'rest' | 'self-signed';
const exp = () => Math.floor(Date.now() / 1000) + 600;

async function provisionAll(
  mode: Mode,
  n: number,
  parallel: boolean,
): Promise<{ ms: number[]; failed: number; requests: number; r429: number }> {
  const config = loadConfig({ LOG_LEVEL: 'error', DAILY_TOKEN_MODE: mode, DAILY_DOMAIN_ID: domainId, DAILY_ROOM_DELETE_INTERVAL_MS: '0' });
  const rooms = createRoomService({ rest, config, logger });
  const t0 = Date.now();
  const one = async (): Promise<number | undefined> => {
    const s = performance.now();
    try {
      const r = await rooms.provision({
        roomName: `b-${randomBytes(5).toString('hex')}`,
        displayName: '+15550001234',
        expSec: exp(),
        numEndpoints: 1,
      });
      names.push(r.roomName);
      return performance.now() - s;
    } catch {
      return undefined;
    }
  };
  const names: string[] = [];
  const results: Array<number | undefined> = [];
  if (parallel) results.push(...(await Promise.all(Array.from({ length: n }, one))));
  else for (let i = 0; i < n; i++) results.push(await one());
  const log = emu.requestLog.filter((r) => r.atMs >= t0 && (r.path === '/rooms' || r.path === '/meeting-tokens') && r.method === 'POST');
  emu.faults.rateLimit = null;
  await Promise.all(names.map((x) => rooms.release(x)));
  rooms.close();
  const ms = results.filter((x): x is number => x !== undefined);
  return { ms, failed: results.length - ms.length, requests: log.length, r429: log.filter((r) => r.status === 429).length };
}

const rows: Array<Record<string, unknown>> = [];
for (const [scenario, n, parallel, limited] of [
  ['sequential', opts.samples, false, false],
  [`burst ${opts.burst}`, opts.burst, true, false],
  [`burst ${opts.burst}, ${opts.limit} req/s`, opts.burst, true, true],
] as const) {
  const by: Partial<Record<Mode, ReturnType<typeof summarize>>> = {};
  for (const mode of ['rest', 'self-signed'] as const) {
    if (limited) {
      await new Promise((r) => setTimeout(r, 1_100)); // a fresh window
      emu.faults.rateLimit = { requests: opts.limit, windowMs: 1_000 };
    }
    const r = await provisionAll(mode, n, parallel);
    const s = summarize(r.ms);
    by[mode] = s;
    const row = {
      scenario,
      mode,
      n: s.n,
      failed: r.failed,
      p50: s.p50,
      p90: s.p90,
      max: s.max,
      mean: s.mean,
      postRequests: r.requests,
      r429: r.r429,
      load1: os.loadavg()[0],
    };
    rows.push(row);
    console.log(
      `${scenario.padEnd(22)} ${mode.padEnd(11)} n=${s.n} failed=${r.failed} p50=${fmt(s.p50)} p90=${fmt(s.p90)} max=${fmt(s.max)} mean=${fmt(s.mean)} ms  POSTs=${r.requests} 429s=${r.r429}  load1=${os.loadavg()[0]!.toFixed(2)}`,
    );
  }
  const a = by.rest!;
  const b = by['self-signed']!;
  console.log(
    `${scenario.padEnd(22)} self-signed/rest: p50 ${(b.p50 / a.p50).toFixed(2)}  p90 ${(b.p90 / a.p90).toFixed(2)}  mean ${(b.mean / a.mean).toFixed(2)}`,
  );
}
await emu.close();
record('token-mode', { args: opts, rows, loadAvgAfter: os.loadavg() });
console.log(JSON.stringify({ uptime: os.loadavg() }));
