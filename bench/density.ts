/**
 * Density: how many concurrent emulated bots one replica holds on this machine before the p99
 * added hold time of new calls exceeds a limit (100 ms), and the RSS of each worker.
 *
 * Bots are added in small simultaneous batches (served by warm workers) and stay connected
 * (bench/bots/hold.ts). At every `--step` bots held, `--probes` probe calls are placed one after
 * the other (warm worker each, caller hangs up once connected): their added hold time is the
 * figure for that level. The run goes on to `--max` (or until memory runs low) and reports the
 * highest level whose probe p99 stays within `--limit-ms`.
 *
 *   npm run bench:density -- [--max 150] [--step 25] [--batch 5] [--probes 20] [--limit-ms 100] [--min-free-mb 3000]
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import type { CallRecord } from '../src/admission/dispatcher.js';
import type { EmulatedCall } from '../src/emulator/types.js';
import { zeroLatencies } from '../src/emulator/types.js';
import { fmt, machine, NUMBER, record, rssMb, startBenchStack, summarize, warmPool } from './lib/common.js';

const opts = new Command()
  .option('--max <n>', 'stop at this many concurrent calls', (v) => Number.parseInt(v, 10), 120)
  .option('--step <n>', 'calls per reported band', (v) => Number.parseInt(v, 10), 20)
  .option('--batch <n>', 'held calls placed at once', (v) => Number.parseInt(v, 10), 5)
  .option('--probes <n>', 'probe calls per level, one at a time', (v) => Number.parseInt(v, 10), 20)
  .option('--limit-ms <n>', 'p99 added hold time that ends the run', (v) => Number.parseInt(v, 10), 100)
  .option('--min-free-mb <n>', 'stop when MemAvailable drops below this', (v) => Number.parseInt(v, 10), 3000)
  .parse()
  .opts<{ max: number; step: number; batch: number; probes: number; limitMs: number; minFreeMb: number }>();

const memAvailableMb = () => Math.round(Number(/MemAvailable:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) / 1024);

console.log(JSON.stringify(machine()));
const stack = await startBenchStack({
  env: {
    IDLE_WORKERS: String(opts.batch * 2),
    MAX_CONCURRENT_BOTS: String(opts.max + opts.batch),
    MAX_QUEUED_CALLS: String(opts.batch * 4),
  },
});
const connected = new Map<string, CallRecord>();
stack.rt.dispatcher.on('call-updated', (r) => {
  if (r.timeline.connected !== undefined) connected.set(r.callId, r);
});
const held: EmulatedCall[] = [];
const bands: Array<Record<string, unknown>> = [];
let stopReason = `reached --max ${opts.max}`;
const t0 = Date.now();
try {
  const probeAt = async (level: number): Promise<boolean> => {
    const probes: CallRecord[] = [];
    for (let i = 0; i < opts.probes; i++) {
      await warmPool(stack.rt, 1, 180_000);
      const before = stack.ended.length;
      const c = stack.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'connected', timeoutMs: 120_000 }, { hangup: true }] });
      await stack.endedCount(1, 180_000);
      await c.ended;
      const r = stack.ended.slice(before).find((x) => x.callId === c.callId);
      if (r?.timeline.forward_sent !== undefined) probes.push(r);
    }
    const hold = summarize(probes.map((r) => r.timeline.forward_sent! - r.timeline.received!));
    const live = stack.rt.dispatcher.liveCalls();
    const rss = live.map((r) => (r.workerPid ? rssMb(r.workerPid) : undefined)).filter((x): x is number => x !== undefined);
    const rssSum = rss.reduce((a, b) => a + b, 0);
    const b = {
      concurrent: level,
      probeHoldAddedMs: hold,
      workerRssMb: {
        n: rss.length,
        mean: Math.round((rssSum / (rss.length || 1)) * 10) / 10,
        max: rss.length ? Math.max(...rss) : 0,
        total: Math.round(rssSum),
      },
      parentRssMb: rssMb(process.pid),
      memAvailableMb: memAvailableMb(),
      loadAvg1m: machine().loadAvg1m,
    };
    bands.push(b);
    console.log(
      `${String(level).padStart(4)} bots held: probe hold p50=${fmt(hold.p50)} p90=${fmt(hold.p90)} p99=${fmt(hold.p99)} ms (n=${hold.n}) | worker RSS mean ${b.workerRssMb.mean} MB (sum ${b.workerRssMb.total} MB) | parent+emulator RSS ${b.parentRssMb} MB | MemAvailable ${b.memAvailableMb} MB | load ${b.loadAvg1m}`,
    );
    if (b.memAvailableMb < opts.minFreeMb) {
      stopReason = `MemAvailable ${b.memAvailableMb} MB < ${opts.minFreeMb} MB`;
      return false;
    }
    return true;
  };
  let nextProbe = 0;
  while (held.length <= opts.max) {
    if (held.length >= nextProbe) {
      if (!(await probeAt(held.length))) break;
      nextProbe += opts.step;
    }
    if (held.length >= opts.max) break;
    await warmPool(stack.rt, opts.batch, 180_000);
    const batch = Array.from({ length: Math.min(opts.batch, opts.max - held.length) }, () =>
      stack.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'connected', timeoutMs: 120_000 }, { wait: 3_600_000 }] }),
    );
    held.push(...batch);
    const deadline = Date.now() + 120_000;
    while (!batch.every((c) => connected.has(c.callId) || c.state === 'ended')) {
      if (Date.now() > deadline) throw new Error('a batch did not connect within 120 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    const lost = batch.filter((c) => c.state === 'ended');
    if (lost.length) {
      stopReason = `${lost.length} held call(s) ended before connecting (${lost.map((c) => c.reason).join(', ')})`;
      break;
    }
  }
} finally {
  const n = held.filter((c) => c.state !== 'ended').length;
  for (const c of held) if (c.state !== 'ended') c.hangup();
  await Promise.race([Promise.all(held.map((c) => c.ended)), new Promise((r) => setTimeout(r, 60_000))]);
  await stack.close();
  console.log(`stopped: ${stopReason}; hung up ${n} calls; ${Math.round((Date.now() - t0) / 1000)} s`);
}
const within = bands.filter((b) => (b.probeHoldAddedMs as { p99: number }).p99 <= opts.limitMs);
record('density', {
  latencies: zeroLatencies,
  limitMs: opts.limitMs,
  stopReason,
  maxConcurrentWithinLimit: within.length ? within[within.length - 1]!.concurrent : 0,
  bands,
});
process.exit(0);
