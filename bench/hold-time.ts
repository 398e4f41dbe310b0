/**
 * Added hold time: webhook received → pinlessCallUpdate sent (CallRecord.timeline), minus the
 * emulator's configured latencies on that path. Simultaneous calls at each level, warm pool
 * (IDLE_WORKERS = level) vs cold fork (IDLE_WORKERS = 0).
 *
 *   npm run bench:hold -- [--levels 1,10,50] [--samples 100] [--modes warm,cold] [--realistic]
 *
 * Bounded: each (mode, level) places `samples` calls (rounded up to whole rounds of `level`).
 */
import { Command } from 'commander';
import { realisticLatencies, zeroLatencies, type Latencies } from '../src/emulator/types.js';
import type { CallRecord } from '../src/admission/dispatcher.js';
import { fmt, holdAddedMs, levelList, machine, NUMBER, record, startBenchStack, summarize, warmPool } from './lib/common.js';

const opts = new Command()
  .option('--levels <list>', 'simultaneous calls per round', '1,10,50')
  .option('--samples <n>', 'calls per (mode, level)', (v) => Number.parseInt(v, 10), 100)
  .option('--modes <list>', 'warm and/or cold', 'warm,cold')
  .option('--realistic', "the emulator's realistic latencies (subtracted from the figure)")
  .parse()
  .opts<{ levels: string; samples: number; modes: string; realistic?: boolean }>();

const levels = levelList(opts.levels);
const modes = opts.modes.split(',').filter((m): m is 'warm' | 'cold' => m === 'warm' || m === 'cold');
const latencies: Latencies = { ...(opts.realistic ? realisticLatencies : zeroLatencies) };

const stage = (r: CallRecord, a: keyof CallRecord['timeline'], b: keyof CallRecord['timeline']) =>
  r.timeline[a] !== undefined && r.timeline[b] !== undefined ? r.timeline[b] - r.timeline[a] : undefined;

console.log(JSON.stringify(machine()));
const results: Array<Record<string, unknown>> = [];
for (const mode of modes) {
  for (const level of levels) {
    const stack = await startBenchStack({
      latencies,
      env: {
        IDLE_WORKERS: mode === 'warm' ? String(level) : '0',
        MAX_CONCURRENT_BOTS: String(Math.max(level, 8)),
        MAX_QUEUED_CALLS: String(Math.max(level, 8)),
      },
    });
    const rounds = Math.ceil(opts.samples / level);
    const records: CallRecord[] = [];
    const t0 = Date.now();
    try {
      for (let round = 0; round < rounds; round++) {
        if (mode === 'warm') await warmPool(stack.rt, level);
        const before = stack.ended.length;
        const calls = Array.from({ length: level }, () =>
          stack.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'connected', timeoutMs: 120_000 }, { hangup: true }] }),
        );
        await stack.endedCount(level, 180_000);
        await Promise.all(calls.map((c) => c.ended));
        records.push(...stack.ended.slice(before));
      }
    } finally {
      await stack.close();
    }
    const forwarded = records.filter((r) => r.timeline.forward_sent !== undefined);
    const hold = summarize(forwarded.map((r) => holdAddedMs(r, latencies)!));
    const stages = Object.fromEntries(
      (
        [
          ['room', 'received', 'room_created'],
          ['waitWorker', 'queued', 'worker_assigned'],
          ['join', 'worker_assigned', 'joined'],
          ['dialinReady', 'joined', 'dialin_ready'],
          ['forward', 'dialin_ready', 'forward_sent'],
        ] as const
      ).map(([name, a, b]) => [name, summarize(forwarded.map((r) => stage(r, a, b)).filter((x): x is number => x !== undefined)).p50]),
    );
    const outcomes = records.reduce<Record<string, number>>(
      (acc, r) => ((acc[r.outcome ?? '?'] = (acc[r.outcome ?? '?'] ?? 0) + 1), acc),
      {},
    );
    const warmShare = records.filter((r) => r.warmStart).length / (records.length || 1);
    const res = {
      mode,
      level,
      rounds,
      calls: records.length,
      forwarded: forwarded.length,
      holdAddedMs: hold,
      stageP50Ms: stages,
      outcomes,
      warmShare,
      wallMs: Date.now() - t0,
    };
    results.push(res);
    console.log(
      `${mode.padEnd(4)} level ${String(level).padStart(3)}: n=${hold.n} p50=${fmt(hold.p50)} ms p90=${fmt(hold.p90)} ms p99=${fmt(hold.p99)} ms max=${fmt(hold.max)} ms  warm=${Math.round(warmShare * 100)}%  stages p50 ${JSON.stringify(stages)}  outcomes ${JSON.stringify(outcomes)}`,
    );
  }
}
const ratios: Record<string, number> = {};
for (const level of levels) {
  const w = results.find((r) => r.mode === 'warm' && r.level === level)?.holdAddedMs as { p50: number; p99: number } | undefined;
  const c = results.find((r) => r.mode === 'cold' && r.level === level)?.holdAddedMs as { p50: number; p99: number } | undefined;
  if (w && c) {
    ratios[`p50@${level}`] = Math.round((w.p50 / c.p50) * 1000) / 1000;
    ratios[`p99@${level}`] = Math.round((w.p99 / c.p99) * 1000) / 1000;
  }
}
if (Object.keys(ratios).length) console.log(`warm/cold ratios: ${JSON.stringify(ratios)}`);
record('hold-time', { latencies: opts.realistic ? 'realistic' : 'zero', results, warmColdRatios: ratios });
process.exit(0);
