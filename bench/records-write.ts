/**
 * Write cost of call records per call, SQLite (file, writer thread) and PostgreSQL (a throw-away
 * server started here, test/helpers/postgres.ts). Each simulated call goes through what the
 * dispatcher adapter does for a real one: open at admission, 8 stage updates and 6 event-log
 * entries over ~1 s, close. Calls start at --rate per second, --calls in all.
 *
 *   npx tsx bench/records-write.ts [--calls 400] [--rate 40] [--only sqlite|postgres]
 *
 * Reports per call: CPU ms of this process (all threads, minus a baseline run with the store
 * calls left out), of the PostgreSQL server processes, the synchronous time spent in the store's
 * methods on the call path (µs), round trips to the database and rows written.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../src/core/logger.js';
import { openRecordStore } from '../src/records/open.js';
import type { RecordStore } from '../src/records/store.js';
import { startPostgres } from '../test/helpers/postgres.js';
import { record } from './lib/common.js';

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
};
const CALLS = Number(arg('calls', '400'));
const RATE = Number(arg('rate', '40'));
const ONLY = arg('only', '');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const logger = createLogger({ level: 'warn' });

const STAGES = ['room_created', 'queued', 'worker_assigned', 'joined', 'dialin_ready', 'forward_sent', 'connected', 'bot_started'];
const EVENTS = [
  'Thanks for calling.',
  'Press 1 for sales, 2 for support.',
  '1',
  'Connecting you to sales.',
  'sip:sales@pbx.example.com',
  'done',
];
const KINDS = ['say', 'say', 'digits', 'say', 'transfer', 'hangup'];

/** CPU seconds (user+system) of a process and its children by /proc (the PostgreSQL server and its backends). */
function treeCpuMs(rootPid: number): number {
  const tick = 100; // USER_HZ on Linux
  let total = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(f[1]);
      if (Number(d) === rootPid || ppid === rootPid) total += ((Number(f[11]) + Number(f[12])) * 1000) / tick;
    } catch {
      /* gone */
    }
  }
  return total;
}

/** One run: CALLS calls at RATE/s, each ~1 s long. `store` undefined → the same schedule without store calls (baseline). */
async function traffic(store: RecordStore | undefined, tag: string): Promise<{ syncUs: number }> {
  let syncMs = 0;
  const timed = (f: () => void) => {
    const t = performance.now();
    f();
    syncMs += performance.now() - t;
  };
  const calls: Promise<void>[] = [];
  for (let i = 0; i < CALLS; i++) {
    const id = `${tag}-${i}`;
    calls.push(
      (async () => {
        const t0 = Date.now();
        if (store)
          timed(() =>
            store.open({
              id,
              callId: `d-${id}`,
              callDomain: 'dom',
              from: '+15557654321',
              to: '+15550001000',
              bot: 'ivr-menu',
              roomName: `r-${id}`,
              state: 'admitting',
              timeline: { received: t0 },
            }),
          );
        for (let s = 0; s < STAGES.length; s++) {
          await sleep(60);
          if (store) timed(() => store.update(id, { state: s < 2 ? 'queued' : 'active', timeline: { [STAGES[s]!]: Date.now() } }));
          if (s >= 2 && store) timed(() => store.appendEvents(id, [{ kind: KINDS[s - 2]!, value: EVENTS[s - 2]!, atMs: Date.now() }]));
        }
        await sleep(400);
        if (store)
          timed(() =>
            store.close({
              id,
              callId: `d-${id}`,
              callDomain: 'dom',
              from: '+15557654321',
              to: '+15550001000',
              bot: 'ivr-menu',
              roomName: `r-${id}`,
              state: 'ended',
              outcome: 'completed',
              timeline: { ended: Date.now() },
            }),
          );
      })(),
    );
    await sleep(1000 / RATE);
  }
  await Promise.all(calls);
  if (store) await store.flush();
  return { syncUs: (syncMs * 1000) / CALLS };
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

async function main() {
  const load0 = os.loadavg();
  // Baseline: the same schedule, no store: what the bench itself costs.
  let c = cpuMs();
  await traffic(undefined, 'base');
  const baseMs = cpuMs() - c;
  const results: Record<string, unknown>[] = [];

  for (const kind of ['sqlite', 'postgres'] as const) {
    if (ONLY && ONLY !== kind) continue;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'patchbay-bench-records-'));
    const pg = kind === 'postgres' ? await startPostgres() : undefined;
    try {
      const store = await openRecordStore({
        ...(pg ? { databaseUrl: pg.url } : { path: path.join(dir, 'calls.db') }),
        storePii: false,
        logger,
        replicaId: 'bench',
      });
      await traffic(store, 'warm'); // JIT, connections, pages
      const rt0 = store.stats().roundTrips;
      const w0 = store.stats().written;
      const pg0 = pg ? treeCpuMs(pgPid(pg.dir)) : 0;
      c = cpuMs();
      const { syncUs } = await traffic(store, 'run');
      const procMs = cpuMs() - c;
      const pgMs = pg ? treeCpuMs(pgPid(pg.dir)) - pg0 : 0;
      const s = store.stats();
      const r = {
        store: kind,
        calls: CALLS,
        ratePerSec: RATE,
        cpuMsPerCall: round((procMs - baseMs) / CALLS),
        serverCpuMsPerCall: pg ? round(pgMs / CALLS) : undefined,
        callPathSyncUsPerCall: round(syncUs),
        roundTripsPerCall: round((s.roundTrips - rt0) / CALLS),
        rowsWrittenPerCall: round((s.written - w0) / CALLS),
        writeFailures: s.writeFailures,
        dropped: s.dropped,
      };
      results.push(r);
      console.log(JSON.stringify(r));
      await store.shutdown();
    } finally {
      await pg?.remove();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const load1 = os.loadavg();
  const out = { baselineCpuMsPerCall: round(baseMs / CALLS), loadAvgStart: load0.map(round), loadAvgEnd: load1.map(round), results };
  console.log(JSON.stringify(out));
  record('records-write', out);
}

/** The postmaster's pid, from its pid file (the server runs as another user through setpriv, which execs). */
function pgPid(dataDir: string): number {
  return Number(readFileSync(path.join(dataDir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
}

const round = (n: number) => Math.round(n * 100) / 100;

await main();
