/**
 * Overload run (issue 11): calls placed at a steady rate for a while against one real replica
 * (`src/app/main.ts` under tsx, its own worker children) and the Daily emulator in this process.
 * Every pinless webhook passes through a tiny proxy here that measures its ack latency as Daily
 * would see it. Per run: placed, admitted (200), refused (503 + Retry-After), connected, admitted
 * callers never connected (left on hold), time to connect, webhook ack p50/p99.
 *
 *   npx tsx bench/overload.ts --rate 2 --duration 60 [--call-ms 3000] [--zero-latency] [--env HOLD_BUDGET_MS=600000 --env WORKER_NICE=0]
 *
 * The emulator runs with Daily's realistic latencies (webhook, room, join, dialin-ready, update,
 * connect: ≈4 s from placing to connected) unless --zero-latency.
 *
 * One JSON line per run goes to bench/results/overload.jsonl.
 */
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Command } from 'commander';
import { createEmulator, realisticLatencies } from '../src/emulator/server.js';
import type { EmulatedCall } from '../src/emulator/types.js';
import { createLogger } from '../src/core/logger.js';
import { record, REPO, summarize } from './lib/common.js';

const opts = new Command()
  .option('--rate <n>', 'calls per second', Number, 2)
  .option('--duration <s>', 'seconds of placing calls', Number, 60)
  .option('--call-ms <ms>', 'how long a caller stays after the greeting', Number, 3_000)
  .option('--repo <dir>', 'run the server from this checkout (a baseline), default this one')
  .option('--zero-latency', "the emulator without Daily's realistic latencies")
  .option('--env <k=v>', 'extra server environment (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
  .parse()
  .opts<{ rate: number; duration: number; callMs: number; env: string[]; zeroLatency?: boolean; repo?: string }>();

const NUMBER = '+15550009000';
const SECRET = randomBytes(32).toString('base64');
const API_KEY = `bench_${randomBytes(8).toString('hex')}`;
const dir = mkdtempSync(path.join(os.tmpdir(), 'patchbay-overload-'));

const emulator = await createEmulator({
  host: '127.0.0.1',
  port: 0,
  apiKey: API_KEY,
  holdTimeoutMs: 60_000,
  logger: createLogger({ level: 'silent' }),
  ...(opts.zeroLatency ? {} : { latencies: realisticLatencies }),
});

// The replica.
const extraEnv = Object.fromEntries(opts.env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
const proc = spawn(process.execPath, ['--import', 'tsx', 'src/app/main.ts'], {
  cwd: opts.repo ?? REPO,
  env: {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'info',
    DAILY_API_KEY: API_KEY,
    DAILY_API_URL: emulator.apiUrl,
    CALL_CLIENT: 'emulator',
    DAILY_PINLESS_HMAC: SECRET,
    CALL_RECORDS_PATH: ':memory:',
    ...extraEnv,
  },
  stdio: ['ignore', 'pipe', 'inherit'],
});
process.on('exit', () => proc.exitCode === null && proc.kill('SIGKILL'));
const logFile = createWriteStream(path.join(dir, 'server.log'));
const url = await new Promise<string>((resolve, reject) => {
  const rl = createInterface({ input: proc.stdout });
  rl.on('line', (line) => {
    logFile.write(`${line}\n`);
    try {
      const l = JSON.parse(line) as { msg?: string; url?: string };
      if (l.msg === 'patchbay listening' && l.url) resolve(l.url);
    } catch {
      /* not JSON */
    }
  });
  proc.once('exit', () => reject(new Error('server exited before listening')));
});

// The proxy that times each webhook answer.
const acks: number[] = [];
const proxy = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const t0 = performance.now();
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers))
      if (typeof v === 'string' && (k.startsWith('x-') || k === 'content-type')) headers[k] = v;
    fetch(`${url}/dialin`, { method: 'POST', headers, body: Buffer.concat(chunks) })
      .then(async (r) => {
        const body = await r.text();
        acks.push(performance.now() - t0);
        res.writeHead(r.status, {
          'content-type': 'application/json',
          ...(r.headers.get('retry-after') ? { 'retry-after': r.headers.get('retry-after')! } : {}),
        });
        res.end(body);
      })
      .catch(() => {
        res.writeHead(502);
        res.end();
      });
  });
});
await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
emulator.setPinlessDialin([
  { phone_number: NUMBER, room_creation_api: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/dialin`, hmac: SECRET },
]);
// Let the idle workers warm up.
await new Promise((r) => setTimeout(r, 5_000));

const calls: Array<{ call: EmulatedCall; placedAt: number; connectedAt?: number }> = [];
const script = [{ waitFor: 'say' as const, timeoutMs: 60_000 }, { wait: opts.callMs }, { hangup: true as const }];
const t0 = Date.now();
const total = Math.round(opts.rate * opts.duration);
await new Promise<void>((resolve) => {
  const timer = setInterval(() => {
    if (calls.length >= total) {
      clearInterval(timer);
      resolve();
      return;
    }
    const entry: (typeof calls)[number] = { call: emulator.placeCall({ to: NUMBER, script }), placedAt: Date.now() };
    entry.call.on('state', (s) => s === 'connected' && (entry.connectedAt ??= Date.now()));
    calls.push(entry);
  }, 1000 / opts.rate);
});
// Every caller ends: connected and hung up, refused and timed out on hold, or given up.
const deadline = Date.now() + 90_000;
while (Date.now() < deadline && calls.some((c) => c.call.state !== 'ended')) await new Promise((r) => setTimeout(r, 500));

const admitted = calls.filter((c) => c.call.webhook?.status === 200);
const refused = calls.filter((c) => c.call.webhook?.status === 503);
const connected = calls.filter((c) => c.connectedAt !== undefined);
const leftOnHold = admitted.filter((c) => c.connectedAt === undefined);
const reasons: Record<string, number> = {};
for (const c of leftOnHold) reasons[c.call.reason ?? c.call.state] = (reasons[c.call.reason ?? c.call.state] ?? 0) + 1;
const result = {
  rate: opts.rate,
  durationS: opts.duration,
  callMs: opts.callMs,
  latencies: opts.zeroLatency ? 'zero' : 'realistic',
  ...(opts.repo ? { repo: opts.repo } : {}),
  env: extraEnv,
  placed: calls.length,
  admitted: admitted.length,
  refused503: refused.length,
  otherStatus: calls.length - admitted.length - refused.length,
  connected: connected.length,
  admittedLeftOnHold: leftOnHold.length,
  leftOnHoldReasons: reasons,
  connectMs: summarize(connected.map((c) => c.connectedAt! - c.placedAt)),
  ackMs: summarize(acks.map((a) => Math.round(a * 10) / 10)),
  wallS: Math.round((Date.now() - t0) / 1000),
};
console.log(JSON.stringify(result, null, 2));
record('overload', result);
proc.kill('SIGTERM');
await new Promise((r) => setTimeout(r, 3_000));
if (proc.exitCode === null) proc.kill('SIGKILL');
proxy.close();
await emulator.close();
process.exit(0);
