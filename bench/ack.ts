/**
 * Webhook ack latency and throughput under a burst (autocannon), next to a bare Fastify hello-world
 * on the same machine. Three processes besides this one (which runs autocannon): the emulator
 * (`src/emulator/main.ts`), one replica (`src/app/main.ts`, LOG_LEVEL=info, logs to a file),
 * and the hello-world. Every request is a fresh, signed pinless webhook (unique callId).
 *
 * Scenarios:
 *   accepted  each webhook is admitted: signature, validation, room + meeting token on the emulator
 *             (REST), queued; the one bot slot is held by a real call, so queued calls time out at
 *             once (QUEUE_TIMEOUT_MS=0) and their rooms are deleted — the admission path without bots.
 *   busy      MAX_QUEUED_CALLS=0 with the slot held: every webhook is answered 503 + Retry-After.
 *   hello     bare Fastify, POST with the same body.
 *
 *   npm run bench:ack -- [--duration 10] [--connections 20] [--scenarios accepted,busy,hello]
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import { Command } from 'commander';
import { freePort, startReplica, waitUntil, type Replica } from '../test/cluster/procs.js';
import { machine, record, REPO, NUMBER, BENCH_BOTS } from './lib/common.js';

const opts = new Command()
  .option('--duration <s>', 'seconds per scenario', (v) => Number.parseInt(v, 10), 10)
  .option('--connections <n>', 'concurrent connections', (v) => Number.parseInt(v, 10), 20)
  .option('--scenarios <list>', 'accepted,busy,hello', 'accepted,busy,hello')
  .parse()
  .opts<{ duration: number; connections: number; scenarios: string }>();

const dir = mkdtempSync(path.join(os.tmpdir(), 'patchbay-ack-'));
const children: ChildProcess[] = [];
process.on('exit', () => children.forEach((c) => c.exitCode === null && c.kill('SIGKILL')));

function startChild(args: string[], ready: RegExp, env: Record<string, string> = {}): Promise<ChildProcess> {
  const proc = spawn(process.execPath, args, { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(proc);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${args.join(' ')} did not start`)), 60_000);
    proc.once('exit', (c) => reject(new Error(`${args.join(' ')} exited (${c})`)));
    createInterface({ input: proc.stdout }).on('line', (l) => {
      if (ready.test(l)) {
        clearTimeout(t);
        resolve(proc);
      }
    });
  });
}

async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(t);
}

function signedRequests(secret: string | undefined): autocannon.Request[] {
  return [
    {
      method: 'POST',
      path: '/dialin',
      setupRequest: (req) => {
        const body = JSON.stringify({
          To: NUMBER,
          From: `+1555${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`,
          callId: randomUUID(),
          callDomain: randomUUID(),
        });
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (secret) {
          const ts = String(Math.floor(Date.now() / 1000));
          headers['x-pinless-timestamp'] = ts;
          headers['x-pinless-signature'] = createHmac('sha256', Buffer.from(secret, 'base64')).update(`${ts}.${body}`).digest('base64');
        }
        return { ...req, body, headers };
      },
    },
  ];
}

async function cannon(url: string, secret: string | undefined): Promise<autocannon.Result> {
  return autocannon({ url, connections: opts.connections, duration: opts.duration, requests: signedRequests(secret) });
}

function pick(r: autocannon.Result) {
  return {
    reqPerSec: Math.round(r.requests.average),
    latencyMs: {
      p50: r.latency.p50,
      p90: r.latency.p90,
      p99: r.latency.p99,
      max: r.latency.max,
      mean: Math.round(r.latency.average * 100) / 100,
    },
    requests: r.requests.total,
    non2xx: r.non2xx,
    statuses: { '2xx': r['2xx'], '4xx': r['4xx'], '5xx': r['5xx'] },
    errors: r.errors,
    timeouts: r.timeouts,
  };
}

const apiKey = `bench_${randomBytes(8).toString('hex')}`;
const secret = randomBytes(32).toString('base64');
const emuPort = await freePort();
console.log(JSON.stringify(machine()));
const emu = await startChild(
  [
    '--import',
    'tsx',
    'src/emulator/main.ts',
    '--port',
    String(emuPort),
    '--api-key',
    apiKey,
    '--log-level',
    'warn',
    '--hold-timeout-ms',
    '600000',
  ],
  /Daily emulator listening/,
);
const emuUrl = `http://127.0.0.1:${emuPort}`;

async function replica(name: string, env: Record<string, string>): Promise<Replica> {
  const port = await freePort();
  const r = await startReplica({
    name,
    port,
    logFile: path.join(dir, `${name}.log`),
    readyTimeoutMs: 60_000,
    env: {
      NODE_ENV: 'development',
      LOG_LEVEL: 'info',
      DAILY_API_KEY: apiKey,
      DAILY_API_URL: `${emuUrl}/v1`,
      CALL_CLIENT: 'emulator',
      DAILY_PINLESS_HMAC: secret,
      TTS_PROVIDER: 'text',
      BOTS_DIR: BENCH_BOTS,
      DEFAULT_BOT: 'hold',
      IDLE_WORKERS: '1',
      MAX_CONCURRENT_BOTS: '1',
      ...env,
    },
  });
  // Hold the one bot slot with a real call, so webhooks in the benchmark start no bots.
  await fetch(`${emuUrl}/_emulator/pinless-dialin`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ pinless_dialin: [{ phone_number: NUMBER, room_creation_api: `${r.url}/dialin`, hmac: secret }] }),
  });
  await fetch(`${emuUrl}/_emulator/calls`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ to: NUMBER, script: [{ waitFor: 'connected', timeoutMs: 60_000 }, { wait: 600_000 }] }),
  });
  await waitUntil(
    async () => ((await (await fetch(`${r.url}/status`)).json()) as { activeCalls: number }).activeCalls === 1,
    'the slot-holding call',
    60_000,
    100,
  );
  return r;
}

const results: Record<string, unknown> = {};
const scenarios = opts.scenarios.split(',');
try {
  if (scenarios.includes('accepted')) {
    const r = await replica('accepted', { MAX_QUEUED_CALLS: '100000', QUEUE_TIMEOUT_MS: '0' });
    await cannon(`${r.url}`, secret).then(() => undefined); // warm-up round (JIT, connections), not recorded
    const res = pick(await cannon(r.url, secret));
    results.accepted = res;
    console.log(`accepted: ${JSON.stringify(res)}`);
    await stop(r.proc);
  }
  if (scenarios.includes('busy')) {
    const r = await replica('busy', { MAX_QUEUED_CALLS: '0' });
    await cannon(r.url, secret);
    const res = pick(await cannon(r.url, secret));
    results.busy = res;
    console.log(`busy: ${JSON.stringify(res)}`);
    await stop(r.proc);
  }
  if (scenarios.includes('hello')) {
    const port = await freePort();
    const hello = await startChild(['--import', 'tsx', 'bench/lib/hello.ts', String(port)], /hello listening/);
    const url = `http://127.0.0.1:${port}`;
    await cannon(url, undefined);
    const res = pick(await cannon(url, undefined));
    results.hello = res;
    console.log(`hello: ${JSON.stringify(res)}`);
    await stop(hello);
  }
} finally {
  await stop(emu);
}
const ratio = (a?: unknown) => {
  const h = results.hello as { reqPerSec: number } | undefined;
  const x = a as { reqPerSec: number } | undefined;
  return h && x ? Math.round((x.reqPerSec / h.reqPerSec) * 1000) / 1000 : undefined;
};
const ratios = { acceptedVsHello: ratio(results.accepted), busyVsHello: ratio(results.busy) };
console.log(`throughput ratios vs bare Fastify: ${JSON.stringify(ratios)}  (logs: ${dir})`);
record('ack', { duration: opts.duration, connections: opts.connections, results, ratios });
process.exit(0);
