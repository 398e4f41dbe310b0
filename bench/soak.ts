/**
 * Soak: the real server process (`node --import tsx src/app/main.ts`, embedded emulator) under
 * a steady call rate with random caller behaviour, for `--minutes` (default 60).
 *
 *   npx tsx bench/soak.ts --minutes 2 [--rate 0.5] [--max-bots 4] [--out bench/results/soak-2m.json]
 *
 * Callers (driven through the emulator's control API, docs/emulator.md) pick at random: a normal
 * call (greeting, digits, #, goodbye), a hang-up on hold, a hang-up right after the greeting, a
 * silent caller (the bot gives up), a long call, a caller who talks, a burst of digits.
 *
 * Measured: calls placed, emulator end reasons, webhook answers, `call ended` lines by outcome
 * (exactly one per admitted call), RSS / heap-ish / open file descriptors of the server sampled every
 * 10 s, zombie and stray child processes, and the clean exit on SIGTERM. Exit code 0 when every
 * invariant holds, 1 otherwise; a JSON report is written to `--out`.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const NUMBER = '+15550009000';

const program = new Command()
  .name('soak')
  .option('--minutes <n>', 'how long to place calls', '60')
  .option('--rate <n>', 'calls placed per second (Poisson arrivals)', '0.5')
  .option('--max-bots <n>', 'MAX_CONCURRENT_BOTS of the server', '4')
  .option('--sample-ms <n>', 'resource sampling interval', '10000')
  .option('--seed <n>', 'random seed (caller behaviour and arrivals)', String(Date.now() % 2 ** 31))
  .option('--out <file>', 'JSON report');
program.parse();
const o = program.opts<{ minutes: string; rate: string; maxBots: string; sampleMs: string; seed: string; out?: string }>();
const minutes = Number(o.minutes);
const rate = Number(o.rate);
const sampleMs = Number(o.sampleMs);
if (!(minutes > 0) || !(rate > 0) || !(sampleMs >= 500)) {
  console.error('soak: --minutes and --rate must be positive, --sample-ms ≥ 500');
  process.exit(2);
}
const out = o.out ?? path.join(ROOT, 'bench', 'results', `soak-${minutes}m.json`);

// Deterministic PRNG (mulberry32) so a run can be repeated.
let seed = Number(o.seed) >>> 0;
const rand = () => {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

type Step =
  | { wait: number }
  | { press: string }
  | { say: string }
  | { waitFor: 'connected' | 'say'; match?: string; timeoutMs?: number }
  | { hangup: true };
const BEHAVIOURS: ReadonlyArray<{ name: string; weight: number; script: () => Step[] }> = [
  {
    name: 'normal',
    weight: 30,
    script: () => [
      { waitFor: 'say', match: 'Hello', timeoutMs: 60_000 },
      { press: '12#' },
      { waitFor: 'say', match: 'Goodbye', timeoutMs: 60_000 },
    ],
  },
  { name: 'hangup_on_hold', weight: 12, script: () => [{ wait: Math.floor(rand() * 1_500) }, { hangup: true }] },
  {
    name: 'hangup_after_greeting',
    weight: 15,
    script: () => [{ waitFor: 'say', timeoutMs: 60_000 }, { wait: Math.floor(rand() * 800) }, { hangup: true }],
  },
  { name: 'silent', weight: 8, script: () => [{ waitFor: 'say', timeoutMs: 60_000 }, { wait: 60_000 }] },
  {
    name: 'long',
    weight: 10,
    script: () => [
      { waitFor: 'say', timeoutMs: 60_000 },
      { press: '1#' },
      { waitFor: 'say', match: 'You pressed', timeoutMs: 30_000 },
      { press: '2#' },
      { wait: 2_000 + Math.floor(rand() * 4_000) },
      { hangup: true },
    ],
  },
  {
    name: 'talker',
    weight: 10,
    script: () => [
      { waitFor: 'say', timeoutMs: 60_000 },
      { say: 'hello is anybody there' },
      { press: '#' },
      { wait: 1_000 },
      { hangup: true },
    ],
  },
  {
    name: 'digit_burst',
    weight: 15,
    script: () => [
      { waitFor: 'connected', timeoutMs: 60_000 },
      { press: '0123456789*#' },
      { wait: Math.floor(rand() * 3_000) },
      { hangup: true },
    ],
  },
];
const totalWeight = BEHAVIOURS.reduce((a, b) => a + b.weight, 0);
const chooseBehaviour = () => {
  let r = rand() * totalWeight;
  for (const b of BEHAVIOURS) if ((r -= b.weight) < 0) return b;
  return BEHAVIOURS[0]!;
};

interface LogLine {
  msg?: string;
  level?: number;
  outcome?: string;
  callId?: string;
  [k: string]: unknown;
}

// ---- the server ----
const secret = randomBytes(32).toString('base64');
const server = spawn(process.execPath, ['--import', 'tsx', 'src/app/main.ts'], {
  cwd: ROOT,
  env: {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    HOST: '127.0.0.1',
    PORT: '0',
    EMULATOR_PORT: '0',
    LOG_LEVEL: 'info',
    DAILY_PINLESS_HMAC: secret,
    EMULATOR_NUMBERS: NUMBER,
    MAX_CONCURRENT_BOTS: o.maxBots,
    MAX_QUEUED_CALLS: o.maxBots,
    IDLE_WORKERS: '2',
    CALL_RECORDS_PATH: ':memory:',
    DRAIN_TIMEOUT_MS: '90000',
  },
  stdio: ['ignore', 'pipe', 'pipe'],
});
const lines: LogLine[] = [];
let errors = 0;
let stderr = '';
let buf = '';
let resolveUrls!: (v: { url: string; emulator: string }) => void;
const urls = new Promise<{ url: string; emulator: string }>((r) => (resolveUrls = r));
let emulatorOrigin: string | undefined;
server.stdout.setEncoding('utf8').on('data', (chunk: string) => {
  buf += chunk;
  let i: number;
  while ((i = buf.indexOf('\n')) >= 0) {
    const raw = buf.slice(0, i);
    buf = buf.slice(i + 1);
    let l: LogLine;
    try {
      l = JSON.parse(raw) as LogLine;
    } catch {
      continue;
    }
    if ((l.level ?? 0) >= 50) errors++;
    if (l.msg === 'call ended' || (l.level ?? 0) >= 40) lines.push(l);
    if (typeof l.emulator === 'string' && l.msg?.startsWith('no DAILY_API_KEY')) emulatorOrigin = l.emulator;
    if (l.msg === 'patchbay listening' && typeof l.url === 'string') resolveUrls({ url: l.url, emulator: emulatorOrigin ?? '' });
  }
});
server.stderr.setEncoding('utf8').on('data', (c: string) => {
  stderr = (stderr + c).slice(-20_000);
});
const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
  server.on('exit', (code, signal) => r({ code, signal })),
);

// ---- /proc ----
function procStatus(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}
function children(ppid: number): Array<{ pid: number; state: string }> {
  const res: Array<{ pid: number; state: string }> = [];
  for (const n of readdirSync('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    try {
      const stat = readFileSync(`/proc/${n}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[1]) === ppid) res.push({ pid: Number(n), state: f[0]! });
    } catch {
      /* gone */
    }
  }
  return res;
}
function fdCount(pid: number): { total: number; sockets: number } {
  let total = 0;
  let sockets = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    total++;
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) sockets++;
    } catch {
      /* closed meanwhile */
    }
  }
  return { total, sockets };
}

interface Sample {
  atS: number;
  rssMb: number;
  fds: number;
  sockets: number;
  threads: number;
  children: number;
  zombies: number;
  zombiePids?: number[];
  live: number;
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url} → ${res.status}`);
  return (await res.json()) as T;
}

interface EmuCall {
  id: string;
  callId: string;
  state: string;
  reason?: string;
  webhook?: { status?: number; error?: string };
}

async function main(): Promise<number> {
  const { url, emulator } = await Promise.race([
    urls,
    exited.then((e) => {
      throw new Error(`server exited at start (${JSON.stringify(e)}): ${stderr}`);
    }),
    new Promise<never>((_, rej) => setTimeout(() => rej(new Error('server did not start within 60 s')), 60_000)),
  ]);
  console.error(`soak: server pid ${server.pid} at ${url}, emulator ${emulator}; ${minutes} min at ${rate} calls/s, seed ${o.seed}`);
  const pid = server.pid!;
  const t0 = Date.now();
  const samples: Sample[] = [];
  const sample = async () => {
    const st = procStatus(pid);
    const kids = children(pid);
    const fds = fdCount(pid);
    let live = 0;
    try {
      live = (await getJson<{ activeCalls?: number }>(`${url}/status`)).activeCalls ?? 0;
    } catch {
      /* draining at the end */
    }
    samples.push({
      atS: Math.round((Date.now() - t0) / 1000),
      rssMb: Math.round(Number.parseInt(st.VmRSS ?? '0', 10) / 102.4) / 10,
      fds: fds.total,
      sockets: fds.sockets,
      threads: Number(st.Threads ?? 0),
      children: kids.length,
      zombies: kids.filter((k) => k.state === 'Z').length,
      zombiePids: kids.filter((k) => k.state === 'Z').map((k) => k.pid),
      live,
    });
  };
  await sample();
  const sampler = setInterval(() => void sample().catch(() => undefined), sampleMs);

  // Place calls: Poisson arrivals at `rate`.
  const placed = new Map<string, { behaviour: string; callId: string; final?: EmuCall }>();
  const byBehaviour: Record<string, number> = {};
  const endAt = t0 + minutes * 60_000;
  let placeErrors = 0;
  while (Date.now() < endAt) {
    const b = chooseBehaviour();
    try {
      const res = await fetch(`${emulator}/_emulator/calls`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ to: NUMBER, from: `+1555${String(Math.floor(rand() * 1e7)).padStart(7, '0')}`, script: b.script() }),
      });
      const c = (await res.json()) as EmuCall;
      if (res.ok) {
        placed.set(c.id, { behaviour: b.name, callId: c.callId });
        byBehaviour[b.name] = (byBehaviour[b.name] ?? 0) + 1;
      } else placeErrors++;
    } catch {
      placeErrors++;
    }
    await pollEnded(emulator, placed);
    const gapMs = -Math.log(1 - rand()) * (1000 / rate);
    await new Promise((r) => setTimeout(r, gapMs));
  }
  // Let every call end (silent callers: the bot gives up; held ones: Daily's hold timeout).
  const settleDeadline = Date.now() + 180_000;
  while ([...placed.values()].some((p) => !p.final) && Date.now() < settleDeadline) {
    await pollEnded(emulator, placed);
    await new Promise((r) => setTimeout(r, 1_000));
  }
  await new Promise((r) => setTimeout(r, 3_000));
  await sample();
  clearInterval(sampler);
  const emulatorState = await getJson<{ rooms: unknown[]; clients: number; webhooksInFlight: number }>(`${emulator}/_emulator/state`);
  const statusBefore = await getJson<Record<string, unknown>>(`${url}/status`);

  // SIGTERM: must drain at once (nothing live) and exit 0, leaving no child.
  const kidsBefore = children(pid).map((k) => k.pid);
  const tTerm = Date.now();
  server.kill('SIGTERM');
  const exit = await exited;
  const exitMs = Date.now() - tTerm;
  await new Promise((r) => setTimeout(r, 1_000));
  const survivors = kidsBefore.filter((p) => {
    try {
      process.kill(p, 0);
      return true;
    } catch {
      return false;
    }
  });

  // ---- accounting ----
  const ended = lines.filter((l) => l.msg === 'call ended');
  const endedByCallId = new Map<string, LogLine[]>();
  for (const l of ended) endedByCallId.set(String(l.callId), [...(endedByCallId.get(String(l.callId)) ?? []), l]);
  const outcomes: Record<string, number> = {};
  for (const l of ended) outcomes[String(l.outcome)] = (outcomes[String(l.outcome)] ?? 0) + 1;
  const reasons: Record<string, number> = {};
  const webhook: Record<string, number> = {};
  const problems: string[] = [];
  let admitted = 0;
  let refused = 0;
  let unanswered = 0;
  for (const [id, p] of placed) {
    if (!p.final) {
      problems.push(`call ${id} (${p.behaviour}) never ended on the emulator`);
      continue;
    }
    reasons[p.final.reason ?? 'none'] = (reasons[p.final.reason ?? 'none'] ?? 0) + 1;
    const ws = p.final.webhook?.status === undefined ? (p.final.webhook ? 'error' : 'none') : String(p.final.webhook.status);
    webhook[ws] = (webhook[ws] ?? 0) + 1;
    const recs = (endedByCallId.get(p.callId) ?? []).filter((l) => l.outcome !== 'room_failed');
    if (p.final.webhook?.status === 200) {
      admitted++;
      if (recs.length !== 1) problems.push(`admitted call ${p.callId} (${p.behaviour}) has ${recs.length} outcomes`);
    } else if (p.final.webhook?.status === undefined && p.final.webhook) {
      // The emulator gave up waiting for the answer (webhookTimeoutMs): patchbay may still have taken it on.
      unanswered++;
      if (recs.length > 1) problems.push(`unanswered call ${p.callId} has ${recs.length} outcomes`);
      if (recs.length === 1) admitted++;
    } else {
      refused++;
      if (recs.length > 0) problems.push(`refused call ${p.callId} has an outcome`);
    }
  }
  for (const [cid, ls] of endedByCallId) if (ls.length > 1) problems.push(`call ${cid} ended ${ls.length} times`);
  const unknown = ended.filter((l) => ![...placed.values()].some((p) => p.callId === l.callId));
  if (unknown.length > 0) problems.push(`${unknown.length} outcomes for calls not placed by the soak`);
  if (emulatorState.rooms.length > 0) problems.push(`emulator rooms left: ${emulatorState.rooms.length}`);
  if (emulatorState.clients > 0) problems.push(`emulator call clients left: ${emulatorState.clients}`);
  if (exit.code !== 0) problems.push(`server exit ${JSON.stringify(exit)}`);
  if (survivors.length > 0) problems.push(`children alive after exit: ${survivors.join(', ')}`);
  // A worker that just exited is a zombie until Node reaps it (SIGCHLD): only one seen in two samples in a row is a leak.
  const zombieSightings = samples.filter((s) => s.zombies > 0).length;
  const persistent = samples.slice(1).flatMap((s, i) => (s.zombiePids ?? []).filter((pid) => (samples[i]!.zombiePids ?? []).includes(pid)));
  if (persistent.length > 0) problems.push(`zombie children not reaped for ${sampleMs} ms: ${[...new Set(persistent)].join(', ')}`);
  if (placeErrors > 0) problems.push(`${placeErrors} calls could not be placed`);
  if (errors > 0) problems.push(`${errors} error-level log lines`);
  const callerNumbersLogged = lines.some((l) => /\+1555\d{7}/.test(JSON.stringify(l)));
  if (callerNumbersLogged) problems.push('a full caller number appeared in a log line');

  // Flatness: compare the second quarter with the last quarter of samples taken while calls ran.
  const running = samples.slice(0, -1);
  const q = (a: number, b: number) =>
    running.slice(Math.floor(running.length * a), Math.max(Math.floor(running.length * a) + 1, Math.floor(running.length * b)));
  const avg = (xs: Sample[], k: keyof Sample) => (xs.length ? xs.reduce((s, x) => s + (x[k] as number), 0) / xs.length : 0);
  const early = q(0.25, 0.5);
  const late = q(0.75, 1);
  const flat = {
    rssMbEarly: Math.round(avg(early, 'rssMb') * 10) / 10,
    rssMbLate: Math.round(avg(late, 'rssMb') * 10) / 10,
    rssMbMax: Math.max(...samples.map((s) => s.rssMb)),
    fdsEarly: Math.round(avg(early, 'fds')),
    fdsLate: Math.round(avg(late, 'fds')),
    fdsFirst: samples[0]!.fds,
    fdsAtRest: samples[samples.length - 1]!.fds,
    socketsFirst: samples[0]!.sockets,
    socketsAtRest: samples[samples.length - 1]!.sockets,
    childrenAtRest: samples[samples.length - 1]!.children,
  };
  // At rest the server must be back near where it started. Idle HTTP keep-alive connections (the
  // embedded emulator's webhook client ↔ the app, the app's Daily REST client ↔ the emulator; both
  // ends are in this process, kept up to Fastify's 72 s keepAliveTimeout) are a pool bounded by the
  // concurrency, not by the number of calls: a per-call leak over hundreds of calls would be far above this bound.
  const restBound = 8 + 4 * Number(o.maxBots);
  if (flat.socketsAtRest > flat.socketsFirst + restBound)
    problems.push(`sockets at rest ${flat.socketsAtRest} > at start ${flat.socketsFirst} + ${restBound}`);
  if (flat.fdsAtRest > flat.fdsFirst + restBound) problems.push(`fds at rest ${flat.fdsAtRest} > at start ${flat.fdsFirst} + ${restBound}`);
  if (flat.fdsLate > flat.fdsEarly + restBound) problems.push(`fds grew under load: ${flat.fdsEarly} → ${flat.fdsLate}`);
  if (minutes >= 10 && flat.rssMbLate > flat.rssMbEarly * 1.25 + 10) problems.push(`RSS grew: ${flat.rssMbEarly} → ${flat.rssMbLate} MB`);

  const report = {
    startedAt: new Date(t0).toISOString(),
    minutes,
    rate,
    maxBots: Number(o.maxBots),
    seed: Number(o.seed),
    node: process.version,
    placed: placed.size,
    byBehaviour,
    emulatorEndReasons: reasons,
    webhookAnswers: webhook,
    admitted,
    refused,
    unanswered,
    zombieSightings,
    outcomes,
    outcomesTotal: ended.length,
    addsUp: admitted === ended.filter((l) => l.outcome !== 'room_failed').length,
    resources: flat,
    statusAtRest: statusBefore,
    exit: { ...exit, afterSigtermMs: exitMs },
    warnLines: lines.filter((l) => (l.level ?? 0) === 40).length,
    errorLines: errors,
    samples,
    problems,
  };
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
  const { samples: _s, statusAtRest: _st, ...short } = report;
  console.log(JSON.stringify(short, null, 2));
  console.error(problems.length === 0 ? `soak: OK (${out})` : `soak: ${problems.length} problem(s) (${out})`);
  return problems.length === 0 ? 0 : 1;
}

async function pollEnded(emulator: string, placed: Map<string, { behaviour: string; callId: string; final?: EmuCall }>): Promise<void> {
  for (const [id, p] of placed) {
    if (p.final) continue;
    try {
      const c = await getJson<EmuCall>(`${emulator}/_emulator/calls/${id}`);
      if (c.state === 'ended') p.final = c;
    } catch {
      /* transient */
    }
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error('soak failed:', err);
    server.kill('SIGKILL');
    process.exit(1);
  },
);
