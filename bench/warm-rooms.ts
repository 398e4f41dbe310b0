/**
 * Warm rooms vs a room per call, side by side in one run, with the emulator's realistic Daily
 * latencies and a speech stand-in (OpenAI-compatible, first audio after `--tts-ms`):
 *
 *   webhook → pinlessCallUpdate sent, webhook → caller connected, dialin-connected → first bot audio
 *
 * at 1, 10 and 50 simultaneous calls. `warm`: WARM_ROOMS = level (every call finds a slot);
 * `cold`: WARM_ROOMS = 0 with IDLE_WORKERS = level (today's best per-call path: warm workers,
 * a room per call).
 *
 *   npx tsx bench/warm-rooms.ts [--levels 1,10,50] [--samples 50] [--modes warm,cold] [--tts-ms 200]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import type { CallRecord } from '../src/admission/dispatcher.js';
import { realisticLatencies, type RequestLogEntry } from '../src/emulator/types.js';
import { startVoiceStandIns } from '../src/testing/voice-standins.js';
import { fmt, levelList, machine, NUMBER, record, stageStats, startBenchStack, summarize, warmPool } from './lib/common.js';
import { sampleCpu, type CpuWindow } from './lib/proc-cpu.js';

const opts = new Command()
  .option('--levels <list>', 'simultaneous calls per round', '1,10,50')
  .option('--samples <n>', 'calls per (mode, level)', (v) => Number.parseInt(v, 10), 50)
  .option('--modes <list>', 'warm and/or cold', 'warm,cold')
  .option(
    '--refill <list>',
    "a handed-out worker's replacement: after-hold (WORKER_REFILL_DEFER_MAX_MS default) and/or at-once (0)",
    'after-hold',
  )
  .option('--tts-ms <n>', "speech stand-in's time to first audio", (v) => Number.parseInt(v, 10), 200)
  .parse()
  .opts<{ levels: string; samples: number; modes: string; refill: string; ttsMs: number }>();

const levels = levelList(opts.levels);
const modes = opts.modes.split(',').filter((m): m is 'warm' | 'cold' => m === 'warm' || m === 'cold');
const refills = opts.refill.split(',').filter((r) => r === 'after-hold' || r === 'at-once');
const latencies = { ...realisticLatencies };
type Stage = keyof CallRecord['timeline'];
const stat = (rs: CallRecord[], a: Stage, b: Stage) =>
  stageStats(
    rs.map((r) => r.timeline),
    a,
    b,
  );

/** The rounds' CPU, summed: per call, as a share of the cores over the rounds' wall time, and the machine's. */
function cpuShare(ws: CpuWindow[], level: number) {
  if (ws.length === 0) return undefined;
  const wall = ws.reduce((a, w) => a + w.wallMs, 0);
  const tree = ws.reduce((a, w) => a + w.treeCoreMs, 0);
  const newborn = ws.reduce((a, w) => a + w.newbornCoreMs, 0);
  const busy = ws.reduce((a, w) => a + w.machineBusyShare * w.wallMs, 0) / wall;
  const pct = (x: number) => `${Math.round(x * 100)} %`;
  return {
    wallMs: wall,
    coreMsPerCall: Math.round(tree / (ws.length * level)),
    newbornCoreMsPerCall: Math.round(newborn / (ws.length * level)),
    treeShareOfCores: pct(tree / (wall * os.cpus().length)),
    machineBusy: pct(busy),
  };
}

/**
 * The update step split at the emulator (its request log): patchbay's share before the request
 * reaches Daily (the rate grant, the send), Daily's answer (the configured latency plus the
 * emulator's own work, which shares this process), and patchbay's share after it (the answer
 * reaching the call's worker or the service).
 */
function updateSplit(rs: CallRecord[], log: readonly RequestLogEntry[]) {
  const byCall = new Map(log.filter((e) => e.path === '/dialin/pinlessCallUpdate' && e.callId).map((e) => [e.callId!, e]));
  const parts = { sentToArrived: [] as number[], arrivedToAnswered: [] as number[], answeredToForwarded: [] as number[] };
  for (const r of rs) {
    const e = byCall.get(r.callId);
    const { forward_sent: sent, forwarded } = r.timeline;
    if (!e?.answeredAtMs || sent === undefined || forwarded === undefined) continue;
    parts.sentToArrived.push(e.atMs - sent);
    parts.arrivedToAnswered.push(e.answeredAtMs - e.atMs);
    parts.answeredToForwarded.push(forwarded - e.answeredAtMs);
  }
  if (parts.sentToArrived.length === 0) return undefined;
  const s = (v: number[]) => {
    const x = summarize(v);
    return { p50: x.p50, p99: x.p99 };
  };
  return {
    sentToArrived: s(parts.sentToArrived),
    arrivedToAnswered: s(parts.arrivedToAnswered),
    answeredToForwarded: s(parts.answeredToForwarded),
  };
}

/** Consecutive steps of the path with the Daily latency the emulator puts in each. */
const STEPS: Array<[Stage, Stage, number]> = [
  ['received', 'room_created', latencies.roomCreateMs],
  ['room_created', 'queued', 0],
  ['queued', 'worker_assigned', 0],
  ['worker_assigned', 'joined', latencies.joinMs],
  ['joined', 'dialin_ready', latencies.dialinReadyMs],
  ['dialin_ready', 'forward_sent', 0],
  ['forward_sent', 'forwarded', latencies.pinlessUpdateMs],
  ['forwarded', 'connected', latencies.connectMs],
];
function breakdown(rs: CallRecord[], mode: 'warm' | 'cold'): Record<string, { p50: number; p99: number; floorMs: number }> {
  const out: Record<string, { p50: number; p99: number; floorMs: number }> = {};
  // Warm: the slot's room already exists and its bot has joined; the update follows the hand-over.
  const steps: Array<[Stage, Stage, number]> =
    mode === 'cold'
      ? STEPS
      : [['received', 'room_created', 0], ...STEPS.slice(1, 3), ['worker_assigned', 'forward_sent', 0], ...STEPS.slice(6)];
  for (const [a, b, floorMs] of steps) {
    const s = stat(rs, a, b);
    if (s.n > 0) out[`${a}→${b}`] = { p50: s.p50, p99: s.p99, floorMs };
  }
  return out;
}

const voice = await startVoiceStandIns({ firstChunkMs: opts.ttsMs });
console.log(JSON.stringify({ ...machine(), loadavgBefore: os.loadavg(), latencies, ttsFirstAudioMs: opts.ttsMs }));
const results: Array<Record<string, unknown>> = [];
for (const level of levels) {
  for (const mode of modes)
    for (const refill of refills) {
      const cacheDir = mkdtempSync(path.join(os.tmpdir(), 'pb-bench-tts-'));
      const stack = await startBenchStack({
        latencies,
        env: {
          DEFAULT_BOT: 'greet',
          WARM_ROOMS: mode === 'warm' ? String(level) : '0',
          IDLE_WORKERS: mode === 'warm' ? '2' : String(level),
          MAX_CONCURRENT_BOTS: String(Math.max(level, 8)),
          MAX_QUEUED_CALLS: String(Math.max(level, 8)),
          WORKER_INIT_TIMEOUT_MS: '120000',
          JOIN_TIMEOUT_MS: '60000',
          DIALIN_READY_TIMEOUT_MS: '60000',
          TTS_PROVIDER: 'openai',
          TTS_BASE_URL: voice.baseUrl,
          OPENAI_API_KEY: 'sk-bench-standin',
          TTS_CACHE_DIR: cacheDir,
          ...(refill === 'at-once' ? { WORKER_REFILL_DEFER_MAX_MS: '0' } : {}),
        },
      });
      const rounds = Math.ceil(opts.samples / level);
      const records: CallRecord[] = [];
      const t0 = Date.now();
      const load: number[] = [];
      // CPU from each round's first webhook to its last caller connected: the bench's process tree
      // (service, emulator, workers, replacements) and the whole machine (other tenants included).
      const cpu = sampleCpu();
      const windows: CpuWindow[] = [];
      try {
        for (let round = 0; round < rounds; round++) {
          if (mode === 'warm') {
            const deadline = Date.now() + 180_000;
            while (stack.rt.warm!.stats().ready < level) {
              if (Date.now() > deadline) throw new Error(`only ${stack.rt.warm!.stats().ready}/${level} warm slots`);
              await new Promise((r) => setTimeout(r, 50));
            }
          } else await warmPool(stack.rt, level, 180_000);
          await new Promise((r) => setTimeout(r, 300));
          load.push(os.loadavg()[0]!);
          const before = stack.ended.length;
          const calls = Array.from({ length: level }, () =>
            stack.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'say', timeoutMs: 120_000 }, { hangup: true }] }),
          );
          await stack.endedCount(level, 240_000);
          await Promise.all(calls.map((c) => c.ended));
          const round_ = stack.ended.slice(before);
          records.push(...round_);
          const first = Math.min(...round_.map((r) => r.timeline.received ?? Infinity));
          const last = Math.max(...round_.map((r) => r.timeline.connected ?? -Infinity));
          const w = Number.isFinite(first) && Number.isFinite(last) ? cpu.between(first, last) : undefined;
          if (w) windows.push(w);
        }
      } finally {
        cpu.stop();
        await stack.close();
        rmSync(cacheDir, { recursive: true, force: true });
      }
      const ok = records.filter((r) => r.timeline.connected !== undefined);
      const res = {
        mode,
        refill,
        level,
        calls: records.length,
        connected: ok.length,
        paths: records.reduce<Record<string, number>>((a, r) => ((a[r.path ?? '?'] = (a[r.path ?? '?'] ?? 0) + 1), a), {}),
        outcomes: records.reduce<Record<string, number>>((a, r) => ((a[r.outcome ?? '?'] = (a[r.outcome ?? '?'] ?? 0) + 1), a), {}),
        webhookToUpdateSentMs: stat(ok, 'received', 'forward_sent'),
        webhookToConnectedMs: stat(ok, 'received', 'connected'),
        updateSentToConnectedMs: stat(ok, 'forward_sent', 'connected'),
        connectedToFirstAudioMs: stat(ok, 'connected', 'first_audio'),
        // Each step of the path, and what it took beyond the emulator's configured Daily latency for
        // it (the serial floor): where patchbay's own share of the hold goes (issue 27 item 2).
        stages: breakdown(ok, mode),
        update: updateSplit(ok, stack.emulator.requestLog),
        cpu: cpuShare(windows, level),
        loadavg1: Math.round((load.reduce((a, b) => a + b, 0) / (load.length || 1)) * 100) / 100,
        wallMs: Date.now() - t0,
      };
      results.push(res);
      const p = (s: { p50: number; p99: number }) => `p50 ${fmt(s.p50)} / p99 ${fmt(s.p99)}`;
      console.log(
        `${mode}${refills.length > 1 ? `[${refill}]` : ''} ×${level}: n=${ok.length}/${records.length} update-sent ${p(res.webhookToUpdateSentMs)}  connected ${p(res.webhookToConnectedMs)}  first-audio ${p(res.connectedToFirstAudioMs)}  load ${res.loadavg1}  paths ${JSON.stringify(res.paths)} outcomes ${JSON.stringify(res.outcomes)}`,
      );
      if (res.cpu)
        console.log(
          `   CPU webhook → last connected: ${res.cpu.coreMsPerCall} core-ms per call (the bench's processes; ${res.cpu.newbornCoreMsPerCall} of it in processes started during the round); they used ${res.cpu.treeShareOfCores} of ${os.cpus().length} cores, the machine was ${res.cpu.machineBusy} busy`,
        );
      for (const [k, v] of Object.entries(res.stages)) console.log(`   ${k}: p50 ${fmt(v.p50)} / p99 ${fmt(v.p99)} (Daily ${v.floorMs})`);
      if (res.update)
        console.log(
          `   the update: sent → at Daily ${p(res.update.sentToArrived)}, Daily's answer ${p(res.update.arrivedToAnswered)} (Daily ${latencies.pinlessUpdateMs}), answer → forwarded ${p(res.update.answeredToForwarded)}`,
        );
    }
}
await voice.close();
record('warm-rooms', { latencies: 'realistic', ttsFirstAudioMs: opts.ttsMs, results });
process.exit(0);
