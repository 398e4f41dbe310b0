/**
 * Hang-up → slot freed (issue 21, item 15): calls at a steady rate through one real replica
 * (`src/app/main.ts` under tsx, its own workers) and the Daily emulator in this process, with
 * Daily's realistic latencies and its REST rate limits (DELETE /rooms: 50 per 30 s, domain-wide).
 * Each caller waits for the bot's first words, stays `--call-ms`, and hangs up. Placing stops after
 * `--duration` s and the replica gets SIGTERM at once (live calls drain, `DRAIN_TIMEOUT_MS`).
 *
 *   npx tsx bench/hangup-slots.ts [--rates 2,5] [--duration 30] [--root /work/rh --root .] [--compiled]
 *
 * Per root and rate: calls placed / admitted / refused (503) / connected; hang-up → the call's
 * `call ended` line (the call is over, its bot slot free) p50/p99; outcomes (queue timeouts);
 * rooms still at the emulator when the last call ended and when the replica exited, DELETE 429s;
 * SIGTERM → exit, and its exit code. `--root` takes another checkout (a baseline) and may be
 * repeated: each root runs at each rate, one after the other, in this one run.
 * `--burst N` instead places N calls at once on N pre-started workers (`IDLE_WORKERS=N`, every call
 * admitted: `HOLD_BUDGET_MS=60000`), so their hang-ups come together whatever the machine's worker
 * start rate, and sends SIGTERM once every caller has hung up.
 * `--compiled` runs each root's build (`npm run build` there first): the workers then start from
 * compiled JavaScript, without tsx's transform, as in production.
 * One JSON line per run goes to bench/results/hangup-slots.jsonl.
 */
import { randomBytes } from 'node:crypto';
import { execFileSync, spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Command } from 'commander';
import { createEmulator, realisticLatencies } from '../src/emulator/server.js';
import type { EmulatedCall } from '../src/emulator/types.js';
import { createLogger } from '../src/core/logger.js';
import { levelList, record, REPO, summarize } from './lib/common.js';

const opts = new Command()
  .option('--rates <list>', 'calls per second, comma-separated', '2,5')
  .option('--duration <s>', 'seconds of placing calls', Number, 30)
  .option('--call-ms <ms>', 'how long a caller stays after the greeting', Number, 2_000)
  .option('--root <dir>', 'run the server from this checkout (repeatable; default this one)', (v: string, a: string[]) => [...a, v], [])
  .option('--env <k=v>', 'extra server environment (repeatable)', (v: string, a: string[]) => [...a, v], [] as string[])
  .option('--burst <n>', 'instead of a rate: n calls at once on n pre-started workers, SIGTERM once all callers hung up', Number, 0)
  .option('--compiled', "run each root's compiled service (dist/src/app/main.js: `npm run build` first) instead of tsx", false)
  .parse()
  .opts<{ rates: string; duration: number; callMs: number; root: string[]; env: string[]; burst: number; compiled: boolean }>();

const NUMBER = '+15550009000';
/** The replica's settings: enough bots for 5 calls/s of ~7 s calls, the rest at their defaults. */
const SERVER_ENV: Record<string, string> = {
  MAX_CONCURRENT_BOTS: '40',
  MAX_QUEUED_CALLS: '40',
  IDLE_WORKERS: '4',
  DRAIN_TIMEOUT_MS: '10000',
  WORKER_CLOSE_TIMEOUT_MS: '3000',
  WARM_ROOMS: '0',
};

interface LogLine {
  msg?: string;
  time?: number | string;
  callId?: string;
  outcome?: string;
}

function rev(root: string): string {
  try {
    return execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return '?';
  }
}

async function waitIdleWorkers(url: string, n: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const st = (await fetch(`${url}/status`)
      .then((r) => r.json())
      .catch(() => ({}))) as { workers?: { idle?: number } };
    if ((st.workers?.idle ?? 0) >= n) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${n} idle workers not ready within ${timeoutMs} ms`);
}

async function run(root: string, rate: number): Promise<Record<string, unknown>> {
  const secret = randomBytes(32).toString('base64');
  const apiKey = `bench_${randomBytes(8).toString('hex')}`;
  const emulator = await createEmulator({
    host: '127.0.0.1',
    port: 0,
    apiKey,
    holdTimeoutMs: 30_000,
    logger: createLogger({ level: 'silent' }),
    latencies: realisticLatencies,
  });
  const extra = Object.fromEntries(opts.env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const burst: Record<string, string> =
    opts.burst > 0
      ? { IDLE_WORKERS: String(opts.burst), MAX_CONCURRENT_BOTS: String(Math.max(40, opts.burst)), HOLD_BUDGET_MS: '60000' }
      : {};
  const env: Record<string, string> = { ...SERVER_ENV, ...burst, ...extra };
  const proc = spawn(process.execPath, opts.compiled ? ['dist/src/app/main.js'] : ['--import', 'tsx', 'src/app/main.ts'], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'info',
      DAILY_API_KEY: apiKey,
      DAILY_API_URL: emulator.apiUrl,
      CALL_CLIENT: 'emulator',
      DAILY_PINLESS_HMAC: secret,
      CALL_RECORDS_PATH: ':memory:',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const kill = () => proc.exitCode === null && proc.kill('SIGKILL');
  process.once('exit', kill);
  const ended = new Map<string, { atMs: number; outcome: string }>();
  let exitCode: number | null = null;
  const exited = new Promise<number>((r) => proc.once('exit', (code) => r((exitCode = code ?? -1))));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: proc.stdout }).on('line', (line) => {
      let l: LogLine & { url?: string };
      try {
        l = JSON.parse(line) as LogLine & { url?: string };
      } catch {
        return;
      }
      if (l.msg === 'patchbay listening' && l.url) resolve(l.url);
      if (l.msg === 'call ended' && l.callId)
        ended.set(l.callId, { atMs: typeof l.time === 'number' ? l.time : Date.parse(String(l.time)), outcome: l.outcome ?? '?' });
    });
    proc.once('exit', () => reject(new Error('server exited before listening')));
  });
  emulator.setPinlessDialin([{ phone_number: NUMBER, room_creation_api: `${url}/dialin`, hmac: secret }]);
  if (opts.burst > 0) await waitIdleWorkers(url, opts.burst, 180_000);
  else await new Promise((r) => setTimeout(r, 5_000)); // idle workers warm up

  const calls: Array<{ call: EmulatedCall; hungUpAtMs?: number; connected?: boolean }> = [];
  const script = [{ waitFor: 'say' as const, timeoutMs: 30_000 }, { wait: opts.callMs }, { hangup: true as const }];
  const total = opts.burst > 0 ? opts.burst : Math.round(rate * opts.duration);
  const t0 = Date.now();
  for (let i = 0; i < total; i++) {
    const wait = opts.burst > 0 ? 0 : t0 + (i * 1000) / rate - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const entry: (typeof calls)[number] = { call: emulator.placeCall({ to: NUMBER, script }) };
    entry.call.on('state', (s) => {
      if (s === 'connected') entry.connected = true;
      if (s === 'ended' && entry.connected && entry.call.reason === 'caller_hangup') entry.hungUpAtMs = Date.now();
    });
    calls.push(entry);
  }
  // Placing stops: SIGTERM now, with calls live (they drain); a burst: once every caller has hung up.
  const allDone = Date.now() + 60_000;
  if (opts.burst > 0)
    while (Date.now() < allDone && calls.some((c) => c.call.state !== 'ended')) await new Promise((r) => setTimeout(r, 50));
  const termAtMs = Date.now();
  const roomsAtTerm = emulator.snapshot().rooms.length;
  proc.kill('SIGTERM');
  const grace = Number(env.DRAIN_TIMEOUT_MS) + 3 * Number(env.WORKER_CLOSE_TIMEOUT_MS) + 5_000;
  const code = await Promise.race([exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), grace + 30_000))]);
  const exitMs = code === undefined ? undefined : Date.now() - termAtMs;
  kill();
  const roomsAtExit = emulator.snapshot().rooms.length;
  const deadline = Date.now() + 40_000;
  while (Date.now() < deadline && calls.some((c) => c.call.state !== 'ended')) await new Promise((r) => setTimeout(r, 250));

  const admitted = calls.filter((c) => c.call.webhook?.status === 200);
  const hangups = calls.filter((c) => c.hungUpAtMs !== undefined && ended.has(c.call.callId));
  const lag = hangups.map((c) => ended.get(c.call.callId)!.atMs - c.hungUpAtMs!);
  const outcomes: Record<string, number> = {};
  for (const e of ended.values()) outcomes[e.outcome] = (outcomes[e.outcome] ?? 0) + 1;
  const deletes = emulator.requestLog.filter((r) => r.method === 'DELETE' && r.path.startsWith('/rooms/') && r.atMs >= t0);
  const result = {
    root,
    rev: rev(root),
    rate: opts.burst > 0 ? `burst ${opts.burst}` : rate,
    durationS: opts.burst > 0 ? undefined : opts.duration,
    callMs: opts.callMs,
    env,
    load: os.loadavg().map((x) => Math.round(x * 10) / 10),
    placed: calls.length,
    admitted: admitted.length,
    refused503: calls.filter((c) => c.call.webhook?.status === 503).length,
    connected: calls.filter((c) => c.connected).length,
    hangupToEndedMs: summarize(lag),
    endedOver1s: lag.filter((x) => x > 1_000).length,
    outcomes,
    queueTimeouts: outcomes.queue_timeout ?? 0,
    callEndedLines: ended.size,
    admittedWithoutEnd: admitted.filter((c) => !ended.has(c.call.callId)).length,
    deletes: deletes.length,
    deletes429: deletes.filter((r) => r.status === 429).length,
    roomsAtTerm,
    roomsAtExit,
    shutdownMs: exitMs ?? `> ${grace + 30_000}`,
    graceMs: grace,
    exitCode,
    compiled: opts.compiled,
  };
  process.off('exit', kill);
  await emulator.close();
  return result;
}

const roots = (opts.root.length > 0 ? opts.root : [REPO]).map((r) => path.resolve(r));
const results: Array<Record<string, unknown>> = [];
for (const rate of opts.burst > 0 ? [0] : levelList(opts.rates))
  for (const root of roots) {
    const r = await run(root, rate);
    console.log(JSON.stringify(r));
    record('hangup-slots', r);
    results.push(r);
  }
console.log(
  '\nroot (rev)        rate      placed adm/503 conn  hang-up→ended p50/p99 ms  >1s  queue_timeout  rooms@TERM/exit  SIGTERM→exit (code)',
);
for (const r of results) {
  const h = r.hangupToEndedMs as { p50: number; p99: number };
  console.log(
    [
      `${path.basename(String(r.root))} (${String(r.rev)})`.padEnd(18),
      String(r.rate).padEnd(9),
      String(r.placed).padEnd(6),
      `${String(r.admitted)}/${String(r.refused503)}`.padEnd(7),
      String(r.connected).padEnd(5),
      `${h.p50} / ${h.p99}`.padEnd(25),
      String(r.endedOver1s).padEnd(4),
      String(r.queueTimeouts).padEnd(14),
      `${String(r.roomsAtTerm)}/${String(r.roomsAtExit)}`.padEnd(15),
      `${String(r.shutdownMs)} ms (${String(r.exitCode)})`,
    ].join(' '),
  );
}
process.exit(0);
