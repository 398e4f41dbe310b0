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
import { realisticLatencies } from '../src/emulator/types.js';
import { startVoiceStandIns } from '../src/testing/voice-standins.js';
import { fmt, levelList, machine, NUMBER, record, stageStats, startBenchStack, warmPool } from './lib/common.js';

const opts = new Command()
  .option('--levels <list>', 'simultaneous calls per round', '1,10,50')
  .option('--samples <n>', 'calls per (mode, level)', (v) => Number.parseInt(v, 10), 50)
  .option('--modes <list>', 'warm and/or cold', 'warm,cold')
  .option('--tts-ms <n>', "speech stand-in's time to first audio", (v) => Number.parseInt(v, 10), 200)
  .parse()
  .opts<{ levels: string; samples: number; modes: string; ttsMs: number }>();

const levels = levelList(opts.levels);
const modes = opts.modes.split(',').filter((m): m is 'warm' | 'cold' => m === 'warm' || m === 'cold');
const latencies = { ...realisticLatencies };
type Stage = keyof CallRecord['timeline'];
const stat = (rs: CallRecord[], a: Stage, b: Stage) =>
  stageStats(
    rs.map((r) => r.timeline),
    a,
    b,
  );

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
  for (const [a, b, floorMs] of STEPS) {
    if (mode === 'warm' && (b === 'room_created' || b === 'joined' || b === 'dialin_ready')) continue;
    const s = stat(rs, a, b);
    if (s.n > 0) out[`${a}→${b}`] = { p50: s.p50, p99: s.p99, floorMs };
  }
  return out;
}

const voice = await startVoiceStandIns({ firstChunkMs: opts.ttsMs });
console.log(JSON.stringify({ ...machine(), loadavgBefore: os.loadavg(), latencies, ttsFirstAudioMs: opts.ttsMs }));
const results: Array<Record<string, unknown>> = [];
for (const level of levels) {
  for (const mode of modes) {
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
      },
    });
    const rounds = Math.ceil(opts.samples / level);
    const records: CallRecord[] = [];
    const t0 = Date.now();
    const load: number[] = [];
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
        records.push(...stack.ended.slice(before));
      }
    } finally {
      await stack.close();
      rmSync(cacheDir, { recursive: true, force: true });
    }
    const ok = records.filter((r) => r.timeline.connected !== undefined);
    const res = {
      mode,
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
      loadavg1: Math.round((load.reduce((a, b) => a + b, 0) / (load.length || 1)) * 100) / 100,
      wallMs: Date.now() - t0,
    };
    results.push(res);
    const p = (s: { p50: number; p99: number }) => `p50 ${fmt(s.p50)} / p99 ${fmt(s.p99)}`;
    console.log(
      `${mode} ×${level}: n=${ok.length}/${records.length} update-sent ${p(res.webhookToUpdateSentMs)}  connected ${p(res.webhookToConnectedMs)}  first-audio ${p(res.connectedToFirstAudioMs)}  load ${res.loadavg1}  paths ${JSON.stringify(res.paths)} outcomes ${JSON.stringify(res.outcomes)}`,
    );
    for (const [k, v] of Object.entries(res.stages)) console.log(`   ${k}: p50 ${fmt(v.p50)} / p99 ${fmt(v.p99)} (Daily ${v.floorMs})`);
  }
}
await voice.close();
record('warm-rooms', { latencies: 'realistic', ttsFirstAudioMs: opts.ttsMs, results });
process.exit(0);
