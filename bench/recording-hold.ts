/**
 * Does recording add to the caller's hold? (issue 24, benchmarks: "0 ms added to the hold".)
 * Hold = webhook received → caller connected (CallRecord.timeline `received` → `connected`), with
 * recording off, local (a WAV under RECORDINGS_DIR) and daily (the emulator's cloud recording,
 * started through REST in the `start` rate class), side by side in one run: one service, the mode
 * chosen per call by its route (`config.recording`), rounds of `level` simultaneous calls rotating
 * through the modes so that load drift falls on all three alike. Each call stays 1.5 s after it is
 * connected (the recording starts, the bot speaks), then the caller hangs up.
 *
 *   npx tsx bench/recording-hold.ts [--levels 1,10] [--samples 30]
 *
 * Rooms are created with `enable_recording` for every mode (DAILY_RECORDING_ROOMS=true): a room
 * property, no request more.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import type { CallRecord } from '../src/admission/dispatcher.js';
import { fmt, levelList, machine, NUMBER, record, startBenchStack, summarize, warmPool } from './lib/common.js';

const opts = new Command()
  .option('--levels <list>', 'simultaneous calls per round', '1,10')
  .option('--samples <n>', 'calls per (mode, level)', (v) => Number.parseInt(v, 10), 30)
  .parse()
  .opts<{ levels: string; samples: number }>();

const MODES = ['off', 'local', 'daily'] as const;
type Mode = (typeof MODES)[number];
/** The caller's number names the mode (its last digit), the route reads it back. */
const FROM: Record<Mode, string> = { off: '+15557770000', local: '+15557770001', daily: '+15557770002' };
const modeOf = (from: string): Mode => MODES[Number(from.slice(-1))] ?? 'off';

const levels = levelList(opts.levels);
const maxLevel = Math.max(...levels);
const dir = mkdtempSync(path.join(os.tmpdir(), 'pb-bench-rec-hold-'));
const load0 = os.loadavg();
console.log(JSON.stringify(machine()));
const stack = await startBenchStack({
  env: {
    IDLE_WORKERS: String(maxLevel),
    MAX_CONCURRENT_BOTS: String(Math.max(maxLevel, 8)),
    MAX_QUEUED_CALLS: String(Math.max(maxLevel, 8)),
    RECORDINGS_DIR: dir,
    DAILY_RECORDING_ROOMS: 'true',
  },
  runtime: { route: (call) => ({ bot: 'hold', config: { recording: { mode: modeOf(call.from) } } }) },
});

const hold = (r: CallRecord) =>
  r.timeline.received !== undefined && r.timeline.connected !== undefined ? r.timeline.connected - r.timeline.received : undefined;
/** Where the hold goes: ours (webhook → pinlessCallUpdate sent) and the emulated Daily's (sent → connected). */
const span = (r: CallRecord, a: 'received' | 'forward_sent', b: 'forward_sent' | 'connected') =>
  r.timeline[a] !== undefined && r.timeline[b] !== undefined ? r.timeline[b] - r.timeline[a] : undefined;
const recorded = (r: CallRecord) => r.botEvents.some((e) => e.kind === 'recording' && e.value.startsWith('started'));

/** One round: `level` simultaneous calls of one mode, from a warm pool of `level` workers. */
async function round(mode: Mode, level: number): Promise<CallRecord[]> {
  await warmPool(stack.rt, level);
  const before = stack.ended.length;
  const calls = Array.from({ length: level }, () =>
    stack.emulator.placeCall({
      to: NUMBER,
      from: FROM[mode],
      script: [{ waitFor: 'connected', timeoutMs: 120_000 }, { wait: 1_500 }, { hangup: true }],
    }),
  );
  await stack.endedCount(level, 180_000);
  await Promise.all(calls.map((c) => c.ended));
  return stack.ended.slice(before);
}

const results: Array<Record<string, unknown>> = [];
const t0 = Date.now();
try {
  for (const level of levels) {
    const byMode: Record<Mode, CallRecord[]> = { off: [], local: [], daily: [] };
    const rounds = Math.ceil(opts.samples / level);
    for (let r = 0; r < rounds; r++) {
      // off, local, daily; local, daily, off; …
      for (let k = 0; k < MODES.length; k++) {
        const mode = MODES[(r + k) % MODES.length]!;
        byMode[mode].push(...(await round(mode, level)));
      }
    }
    for (const mode of MODES) {
      const recs = byMode[mode];
      const h = summarize(recs.map(hold).filter((x): x is number => x !== undefined));
      const part = (a: 'received' | 'forward_sent', b: 'forward_sent' | 'connected') =>
        summarize(recs.map((r) => span(r, a, b)).filter((x): x is number => x !== undefined));
      const ours = part('received', 'forward_sent');
      const theirs = part('forward_sent', 'connected');
      const res = { mode, level, calls: recs.length, recorded: recs.filter(recorded).length, holdMs: h, oursMs: ours, connectMs: theirs };
      results.push(res);
      console.log(
        `${mode.padEnd(5)} level ${String(level).padStart(2)}: n=${h.n} recorded=${res.recorded} hold p50=${fmt(h.p50)} p90=${fmt(h.p90)} p99=${fmt(h.p99)} mean=${fmt(h.mean)} ms; of which webhook→update sent p50=${fmt(ours.p50)} mean=${fmt(ours.mean)}, sent→connected p50=${fmt(theirs.p50)} mean=${fmt(theirs.mean)}`,
      );
    }
  }
} finally {
  await stack.close();
  rmSync(dir, { recursive: true, force: true });
}

/** local/off and daily/off, of p50 and of the mean, per level. */
const ratios: Record<string, number> = {};
for (const level of levels) {
  const off = results.find((r) => r.mode === 'off' && r.level === level)?.holdMs as { p50: number; mean: number } | undefined;
  for (const mode of ['local', 'daily'] as const) {
    const m = results.find((r) => r.mode === mode && r.level === level)?.holdMs as { p50: number; mean: number } | undefined;
    if (!off || !m) continue;
    ratios[`${mode}/off p50@${level}`] = Math.round((m.p50 / off.p50) * 1000) / 1000;
    ratios[`${mode}/off mean@${level}`] = Math.round((m.mean / off.mean) * 1000) / 1000;
  }
}
const loadAvg = { start: load0.map((x) => Math.round(x * 100) / 100), end: os.loadavg().map((x) => Math.round(x * 100) / 100) };
console.log(`ratios: ${JSON.stringify(ratios)}`);
console.log(
  `load average (1, 5, 15 min) at start ${loadAvg.start.join(' ')}, at end ${loadAvg.end.join(' ')}; wall ${Math.round((Date.now() - t0) / 1000)} s`,
);
record('recording-hold', { results, ratios, loadAvg });
process.exit(0);
