/**
 * The fleet's ceiling on one Daily domain (issue 27, item 3): three real replica processes
 * (REDIS_URL, one redis-server; test/helpers/fleet-replicas.ts) against one emulator with Daily's
 * REST rate limits as documented (`default` 100 per 5 s, `DELETE /rooms` 50 per 30 s, `start`
 * 5 per 5 s — src/emulator/rate-limits.ts) and Daily's realistic latencies. The call rate is stepped
 * up; each step places calls round robin over the replicas for `--step-s` seconds (each caller waits
 * until connected, stays `--call-ms`, hangs up), then waits for every call to end.
 *
 *   npx tsx bench/fleet-ceiling.ts [--rates 0.5,1,1.5,2,3] [--step-s 40] [--call-ms 2000] [--compiled] [--scale 8]
 *
 * `--scale k` divides every request count of Daily's limits by k, windows unchanged (`default`
 * 100/k per 5 s, `DELETE /rooms` 50/k per 30 s, the same in the emulator and in DAILY_RATE_LIMITS),
 * and the deletion backlog bound with them (DAILY_ROOM_DELETE_BACKLOG_MAX = 100/k): the domain then
 * binds at 1/k of the call rate, so a machine that cannot start workers for Daily's own ceilings
 * still shows where each class binds and what happens above it. Rates are reported as placed and
 * × k ("Daily-equivalent").
 *
 * Sampled every second during a step: the fleet queue (every replica's /status `queuedCalls`, the
 * fleet's `fleet.queued`), rooms pending deletion (`roomDeletions.backlog`, summed), rooms at the
 * emulator, the replica main processes' RSS. Per step: placed / admitted / 503 / connected, outcomes,
 * 429s by Daily's class (the emulator's request log), queue depth max and at the step's end, deletion
 * backlog max and at the end, rooms left to their `exp` (`roomDeletions.leftToExpire`, summed),
 * rooms deleted, RSS. A step is **served** with 0 × 429, every admitted call connected, no queue
 * timeout and the queue empty at its end; **every room deleted** when, besides, no room was left to
 * its `exp`, the backlog was not growing (≤ 2 when placing stopped) and is empty again within 30 s of
 * the step's end.
 * One JSON line per run goes to bench/results/fleet-ceiling.jsonl.
 */
import os from 'node:os';
import { Command } from 'commander';
import { realisticLatencies } from '../src/emulator/server.js';
import { rateClassOf } from '../src/daily/rate-limit.js';
import type { CallerStep, EmulatedCall } from '../src/emulator/types.js';
import { waitUntil } from '../test/cluster/procs.js';
import { FLEET_NUMBER, startFleetOfReplicas, type FleetOfReplicas, type ReplicaStatusBody } from '../test/helpers/fleet-replicas.js';
import { machine, record, REPO, rssMb } from './lib/common.js';

const opts = new Command()
  .option('--rates <list>', 'calls per second, comma-separated (decimals allowed)', '0.5,1,1.5,2,3')
  .option('--step-s <s>', 'seconds of placing calls per step', Number, 40)
  .option('--call-ms <ms>', 'how long a caller stays once connected', Number, 2_000)
  .option('--bots <n>', 'MAX_CONCURRENT_BOTS per replica', Number, 12)
  .option('--warm <n>', 'WARM_ROOMS per replica', Number, 0)
  .option('--compiled', 'run the replicas from dist/ (`npm run build` first)', false)
  .option('--scale <k>', "divide Daily's request counts (and the deletion backlog bound) by k", Number, 1)
  .parse()
  .opts<{ rates: string; stepS: number; callMs: number; bots: number; warm: number; compiled: boolean; scale: number }>();

const rates = opts.rates
  .split(',')
  .map(Number)
  .filter((r) => r > 0);
if (rates.length === 0) throw new Error('--rates: no positive rate');

type Deletions = ReplicaStatusBody & {
  roomDeletions: { backlog: number; backlogPeak: number; deleted: number; leftToExpire: number; givenUp: number; rateLimited: number };
};

interface Sample {
  atMs: number;
  queued: number;
  fleetQueued: number;
  backlog: number;
  leftToExpire: number;
  deleted: number;
  rooms: number;
  rssMb: number[];
}

async function sample(f: FleetOfReplicas): Promise<Sample> {
  const st = (await Promise.all(f.replicas.map((_, i) => f.status(i)))) as Deletions[];
  return {
    atMs: Date.now(),
    queued: st.reduce((a, s) => a + s.queuedCalls, 0),
    fleetQueued: st[0]?.fleet?.queued ?? 0,
    backlog: st.reduce((a, s) => a + s.roomDeletions.backlog, 0),
    leftToExpire: st.reduce((a, s) => a + s.roomDeletions.leftToExpire, 0),
    deleted: st.reduce((a, s) => a + s.roomDeletions.deleted, 0),
    rooms: f.emulator.snapshot().rooms.length,
    rssMb: f.replicas.map((r) => rssMb(r.pid) ?? 0),
  };
}

const SCRIPT = (callMs: number): CallerStep[] => [{ waitFor: 'connected', timeoutMs: 30_000 }, { wait: callMs }, { hangup: true }];

/** The emulator's requests since `t0`, by Daily's class, the 429s among them, and the first 429s. */
function requestsSince(f: FleetOfReplicas, t0: number) {
  const log = f.emulator.requestLog.filter((r) => r.atMs >= t0);
  const by429: Record<string, number> = { default: 0, delete: 0, start: 0 };
  const byClass: Record<string, number> = { default: 0, delete: 0, start: 0 };
  for (const r of log) {
    const c = rateClassOf(r.method, `/v1${r.path}`);
    byClass[c] = (byClass[c] ?? 0) + 1;
    if (r.status === 429) by429[c] = (by429[c] ?? 0) + 1;
  }
  const refused429 = log
    .filter((r) => r.status === 429)
    .slice(0, 10)
    .map((r) => `${r.method} ${r.path.replace(/^\/rooms\/[^/]+/, '/rooms/:name')} +${r.atMs - t0} ms`);
  return { byClass, by429, refused429 };
}

async function step(f: FleetOfReplicas, rate: number): Promise<Record<string, unknown>> {
  const before = await sample(f);
  const samples: Sample[] = [before];
  const sampler = setInterval(() => void sample(f).then((s) => samples.push(s)), 1_000);
  const t0 = Date.now();
  const total = Math.round(rate * opts.stepS);
  const calls: Array<{ call: EmulatedCall; connected: boolean }> = [];
  for (let i = 0; i < total; i++) {
    const wait = t0 + (i * 1000) / rate - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const entry = { call: f.emulator.placeCall({ to: FLEET_NUMBER, script: SCRIPT(opts.callMs) }), connected: false };
    entry.call.on('state', (s) => s === 'connected' && (entry.connected = true));
    calls.push(entry);
  }
  const placedMs = Date.now();
  const placedSample = await sample(f);
  await Promise.all(calls.map((c) => c.call.ended));
  const ids = new Set(calls.map((c) => c.call.callId));
  const admittedIds = () => calls.filter((c) => c.call.webhook?.status === 200).length;
  // Every admitted call's `call ended` line (the replica's side is over: slot free, room released).
  await waitUntil(
    () => f.lines().filter((l) => l.msg === 'call ended' && ids.has(String(l.callId))).length >= admittedIds(),
    'call ended lines',
    30_000,
    200,
  ).catch(() => undefined);
  const endedMs = Date.now();
  const atEnd = await sample(f);
  // Does the deletion backlog empty again (the rooms queued during the step)?
  const drained = await waitUntil(async () => (await sample(f)).backlog === 0, 'backlog empty', 30_000, 500).then(
    () => Date.now() - endedMs,
    () => undefined,
  );
  clearInterval(sampler);
  const after = await sample(f);
  const ended = f.lines().filter((l) => l.msg === 'call ended' && ids.has(String(l.callId)));
  const outcomes: Record<string, number> = {};
  for (const l of ended) outcomes[String(l.outcome)] = (outcomes[String(l.outcome)] ?? 0) + 1;
  const { byClass, by429, refused429 } = requestsSince(f, t0);
  const admitted = calls.filter((c) => c.call.webhook?.status === 200).length;
  const connected = calls.filter((c) => c.connected).length;
  const queueMax = Math.max(...samples.map((s) => Math.max(s.queued, s.fleetQueued)));
  const backlogMax = Math.max(...samples.map((s) => s.backlog));
  const leftToExpire = after.leftToExpire - before.leftToExpire;
  const status429 = by429.default! + by429.delete! + by429.start!;
  const served = status429 === 0 && connected === admitted && admitted === total && !outcomes.queue_timeout && atEnd.queued === 0;
  return {
    rate,
    dailyEquivalentRate: Math.round(rate * opts.scale * 100) / 100,
    stepS: opts.stepS,
    placed: total,
    placedInMs: placedMs - t0,
    admitted,
    refused503: calls.filter((c) => c.call.webhook?.status === 503).length,
    connected,
    outcomes,
    requestsByClass: byClass,
    status429: by429,
    refused429,
    queueMax,
    queueAtPlacedEnd: placedSample.queued,
    queueAtEnd: atEnd.queued,
    backlogMax,
    backlogAtPlacedEnd: placedSample.backlog,
    backlogDrainedInMs: drained ?? '> 30000',
    leftToExpire,
    deleted: after.deleted - before.deleted,
    roomsAtEmulator: { before: before.rooms, atEnd: atEnd.rooms, after: after.rooms },
    rssMb: {
      before: before.rssMb.map(Math.round),
      max: f.replicas.map((_, i) => Math.round(Math.max(...samples.map((s) => s.rssMb[i] ?? 0)))),
      after: after.rssMb.map(Math.round),
    },
    served,
    // Deletion kept up: nothing left to `exp`, the backlog not growing (≤ 2 when placing stopped), and empty again soon.
    everyRoomDeleted: served && leftToExpire === 0 && placedSample.backlog <= 2 && drained !== undefined,
    loadAvg: os.loadavg().map((x) => Math.round(x * 10) / 10),
  };
}

const k = Math.max(1, opts.scale);
const defaultLimit = Math.max(1, Math.round(100 / k));
const deleteLimit = Math.max(1, Math.round(50 / k));
const env: Record<string, string> = {
  LOG_LEVEL: 'info',
  ...(k > 1
    ? {
        DAILY_RATE_LIMITS: `default=${defaultLimit}/5000,delete=${deleteLimit}/30000`,
        DAILY_ROOM_DELETE_BACKLOG_MAX: String(Math.max(1, Math.round(100 / k))),
      }
    : {}),
  MAX_CONCURRENT_BOTS: String(opts.bots),
  MAX_QUEUED_CALLS: String(opts.bots * 2),
  IDLE_WORKERS: String(Math.min(opts.bots, 6)),
  WARM_ROOMS: String(opts.warm),
};
const f = await startFleetOfReplicas(3, env, {
  // Daily's documented limits, DELETE /rooms included (50 per 30 s, domain-wide), or 1/k of them.
  rateLimits:
    k > 1
      ? {
          classes: {
            default: [{ requests: defaultLimit, windowMs: 5_000 }],
            'room-delete': [{ requests: deleteLimit, windowMs: 30_000 }],
          },
        }
      : {},
  latencies: realisticLatencies,
  holdTimeoutMs: 30_000,
  ...(opts.compiled ? { entry: `${REPO}dist/src/app/main.js` } : {}),
});
const steps: Array<Record<string, unknown>> = [];
try {
  f.mode = { kind: 'roundRobin' };
  await waitUntil(
    async () => (await Promise.all(f.replicas.map((_, i) => f.status(i)))).every((s) => s.workers.idle >= Math.min(opts.bots, 6)),
    'idle workers',
    180_000,
    500,
  );
  for (const rate of rates) {
    const r = await step(f, rate);
    console.log(JSON.stringify(r));
    steps.push(r);
  }
} finally {
  await f.stop();
}
const servedRates = steps.filter((s) => s.served).map((s) => Number(s.rate));
const deletedRates = steps.filter((s) => s.everyRoomDeleted).map((s) => Number(s.rate));
const result = {
  ...machine(),
  compiled: opts.compiled,
  scale: k,
  env,
  callMs: opts.callMs,
  steps,
  ceilingServed: servedRates.length > 0 ? Math.max(...servedRates) : 0,
  ceilingEveryRoomDeleted: deletedRates.length > 0 ? Math.max(...deletedRates) : 0,
};
record('fleet-ceiling', result);
console.log(
  '\nrate  placed adm/503 conn  429 d/del/s  queue max/end  backlog max/drained  left-to-exp deleted  RSS max MB     served  all deleted',
);
for (const s of steps) {
  const q = s.status429 as Record<string, number>;
  const rss = s.rssMb as { max: number[] };
  console.log(
    [
      String(s.rate).padEnd(5),
      String(s.placed).padEnd(6),
      `${String(s.admitted)}/${String(s.refused503)}`.padEnd(7),
      String(s.connected).padEnd(5),
      `${q.default}/${q.delete}/${q.start}`.padEnd(11),
      `${String(s.queueMax)}/${String(s.queueAtEnd)}`.padEnd(14),
      `${String(s.backlogMax)}/${String(s.backlogDrainedInMs)}`.padEnd(20),
      String(s.leftToExpire).padEnd(12),
      String(s.deleted).padEnd(7),
      rss.max.join(',').padEnd(14),
      String(s.served).padEnd(7),
      String(s.everyRoomDeleted),
    ].join(' '),
  );
}
console.log(
  `ceiling: served ${result.ceilingServed}/s, every room deleted ${result.ceilingEveryRoomDeleted}/s` +
    (k > 1 ? ` (Daily-equivalent ×${k}: ${result.ceilingServed * k}/s, ${result.ceilingEveryRoomDeleted * k}/s)` : ''),
);
process.exit(0);
