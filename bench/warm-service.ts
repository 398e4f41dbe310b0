/**
 * The warm path where the service runs: the embedded stack (service, emulator and speech stand-in
 * in one process, as bench/warm-rooms.ts), one service process on its own (the emulator outside it,
 * as Daily is in production), and fleet mode (three replica processes and Redis, webhooks round
 * robin), side by side in one run, every call on a warm room, with the emulator's realistic Daily
 * latencies:
 *
 *   webhook → pinlessCallUpdate sent, webhook → caller connected, connected → first bot audio
 *
 * from each call's record (embedded) or its "call ended" line (processes).
 *
 *   npx tsx bench/warm-service.ts [--levels 1,10,50] [--samples 50] [--modes embedded,process,fleet]
 *   node dist/bench/warm-service.js …   (compiled: the replicas then run dist/src/app/main.js)
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { realisticLatencies } from '../src/emulator/types.js';
import { startVoiceStandIns } from '../src/testing/voice-standins.js';
import { waitUntil } from '../test/cluster/procs.js';
import { FLEET_NUMBER, startFleetOfReplicas } from '../test/helpers/fleet-replicas.js';
import { BENCH_BOTS, fmt, levelList, machine, NUMBER, record, stageStats, startBenchStack } from './lib/common.js';

type Mode = 'embedded' | 'process' | 'fleet';
const opts = new Command()
  .option('--levels <list>', 'simultaneous calls per round', '1,10,50')
  .option('--samples <n>', 'calls per (mode, level)', (v) => Number.parseInt(v, 10), 50)
  .option('--modes <list>', 'embedded, process and/or fleet', 'embedded,process,fleet')
  .option('--tts-ms <n>', "speech stand-in's time to first audio", (v) => Number.parseInt(v, 10), 200)
  .parse()
  .opts<{ levels: string; samples: number; modes: string; ttsMs: number }>();

const levels = levelList(opts.levels);
const modes = opts.modes.split(',').filter((m): m is Mode => m === 'embedded' || m === 'process' || m === 'fleet');
const latencies = { ...realisticLatencies };
// Compiled (dist/bench/warm-service.js): the replicas run the compiled server too.
const here = path.dirname(fileURLToPath(import.meta.url));
const compiledServer = path.join(here, '../src/app/main.js');
const entry = import.meta.url.endsWith('.js') && existsSync(compiledServer) ? compiledServer : undefined;

/** Stage times relative to `received`, as in a "call ended" line's `timelineMs`. */
type Timeline = Partial<Record<'received' | 'worker_assigned' | 'forward_sent' | 'connected' | 'first_audio', number>>;
const stat = (ts: Timeline[], a: keyof Timeline, b: keyof Timeline) => stageStats(ts, a, b);
const script = [{ waitFor: 'say' as const, timeoutMs: 120_000 }, { hangup: true as const }];

function env(level: number, replicas: number, cacheDir: string, ttsUrl: string): Record<string, string> {
  const slots = Math.ceil(level / replicas);
  return {
    BOTS_DIR: BENCH_BOTS,
    DEFAULT_BOT: 'greet',
    WARM_ROOMS: String(slots),
    IDLE_WORKERS: '2',
    MAX_CONCURRENT_BOTS: String(Math.max(slots, 8)),
    MAX_QUEUED_CALLS: String(Math.max(level, 8)),
    WORKER_INIT_TIMEOUT_MS: '120000',
    JOIN_TIMEOUT_MS: '60000',
    DIALIN_READY_TIMEOUT_MS: '60000',
    TTS_PROVIDER: 'openai',
    TTS_BASE_URL: ttsUrl,
    OPENAI_API_KEY: 'sk-bench-standin',
    TTS_CACHE_DIR: cacheDir,
  };
}

async function embedded(level: number, rounds: number, cacheDir: string, ttsUrl: string, load: number[]) {
  const stack = await startBenchStack({ latencies, env: env(level, 1, cacheDir, ttsUrl) });
  const out: Array<{ timeline: Timeline; path?: string; outcome?: string }> = [];
  try {
    for (let round = 0; round < rounds; round++) {
      await waitUntil(() => stack.rt.warm!.stats().ready >= level, 'warm slots', 180_000, 50);
      await new Promise((r) => setTimeout(r, 300));
      load.push(os.loadavg()[0]!);
      const before = stack.ended.length;
      const calls = Array.from({ length: level }, () => stack.emulator.placeCall({ to: NUMBER, script }));
      await stack.endedCount(level, 240_000);
      await Promise.all(calls.map((c) => c.ended));
      for (const r of stack.ended.slice(before)) {
        const t0 = r.timeline.received ?? 0;
        const rel = Object.fromEntries(Object.entries(r.timeline).map(([k, v]) => [k, v - t0])) as Timeline;
        out.push({ timeline: rel, ...(r.path ? { path: r.path } : {}), ...(r.outcome ? { outcome: r.outcome } : {}) });
      }
    }
  } finally {
    await stack.close();
  }
  return out;
}

async function processes(replicas: number, level: number, rounds: number, cacheDir: string, ttsUrl: string, load: number[]) {
  const f = await startFleetOfReplicas(
    replicas,
    { ...env(level, replicas, cacheDir, ttsUrl), LOG_LEVEL: 'info', DAILY_ROOM_DELETE_INTERVAL_MS: '50' },
    { fleet: replicas > 1, latencies, holdTimeoutMs: 120_000, ...(entry ? { entry } : {}) },
  );
  const slots = Math.ceil(level / replicas);
  const ready = async (i: number) => {
    const m = await (await fetch(`${f.replicas[i]!.url}/metrics`)).text();
    return Number(/patchbay_warm_slots\{state="ready"\} (\d+)/.exec(m)?.[1] ?? 0);
  };
  const out: Array<{ timeline: Timeline; path?: string; outcome?: string }> = [];
  try {
    f.mode = replicas > 1 ? { kind: 'roundRobin' } : { kind: 'only', index: 0 };
    for (let round = 0; round < rounds; round++) {
      await waitUntil(
        async () => (await Promise.all(f.replicas.map((_, i) => ready(i)))).every((n) => n >= slots),
        'warm slots',
        180_000,
        100,
      );
      await new Promise((r) => setTimeout(r, 300));
      load.push(os.loadavg()[0]!);
      const calls = Array.from({ length: level }, () => f.emulator.placeCall({ to: FLEET_NUMBER, script }));
      await Promise.all(calls.map((c) => c.ended));
      const ids = new Set(calls.map((c) => c.callId));
      await waitUntil(
        () => f.lines().filter((l) => l.msg === 'call ended' && ids.has(String(l.callId))).length >= level,
        'every call recorded',
        60_000,
        100,
      );
      for (const l of f.lines().filter((x) => x.msg === 'call ended' && ids.has(String(x.callId))))
        out.push({ timeline: l.timelineMs ?? {}, path: String(l.path), outcome: String(l.outcome) });
    }
  } finally {
    await f.stop();
  }
  return out;
}

const voice = await startVoiceStandIns({ firstChunkMs: opts.ttsMs });
console.log(JSON.stringify({ ...machine(), loadavgBefore: os.loadavg(), compiled: entry !== undefined, latencies }));
const results: Array<Record<string, unknown>> = [];
for (const level of levels) {
  for (const mode of modes) {
    const cacheDir = mkdtempSync(path.join(os.tmpdir(), 'pb-bench-tts-'));
    const rounds = Math.ceil(opts.samples / level);
    const load: number[] = [];
    const t0 = Date.now();
    let calls: Array<{ timeline: Timeline; path?: string; outcome?: string }>;
    try {
      calls =
        mode === 'embedded'
          ? await embedded(level, rounds, cacheDir, voice.baseUrl, load)
          : await processes(mode === 'fleet' ? 3 : 1, level, rounds, cacheDir, voice.baseUrl, load);
    } finally {
      rmSync(cacheDir, { recursive: true, force: true });
    }
    const ok = calls.map((c) => c.timeline).filter((t) => t.connected !== undefined);
    const count = (k: 'path' | 'outcome') =>
      calls.reduce<Record<string, number>>((a, c) => ((a[c[k] ?? '?'] = (a[c[k] ?? '?'] ?? 0) + 1), a), {});
    const res = {
      mode,
      level,
      calls: calls.length,
      connected: ok.length,
      paths: count('path'),
      outcomes: count('outcome'),
      webhookToUpdateSentMs: stat(ok, 'received', 'forward_sent'),
      // The parent's part (admission, the slot taken, the `start` message sent) and the worker's (IPC, wake-up, up to the request).
      webhookToAssignedMs: stat(ok, 'received', 'worker_assigned'),
      assignedToUpdateSentMs: stat(ok, 'worker_assigned', 'forward_sent'),
      webhookToConnectedMs: stat(ok, 'received', 'connected'),
      updateSentToConnectedMs: stat(ok, 'forward_sent', 'connected'),
      connectedToFirstAudioMs: stat(ok, 'connected', 'first_audio'),
      loadavg1: Math.round((load.reduce((a, b) => a + b, 0) / (load.length || 1)) * 100) / 100,
      wallMs: Date.now() - t0,
    };
    results.push(res);
    const p = (s: { p50: number; p99: number }) => `p50 ${fmt(s.p50)} / p99 ${fmt(s.p99)}`;
    console.log(
      `${mode} ×${level}: n=${ok.length}/${calls.length} update-sent ${p(res.webhookToUpdateSentMs)} (parent ${p(res.webhookToAssignedMs)}, worker ${p(res.assignedToUpdateSentMs)})  connected ${p(res.webhookToConnectedMs)}  update→connected ${p(res.updateSentToConnectedMs)}  first-audio ${p(res.connectedToFirstAudioMs)}  load ${res.loadavg1}  paths ${JSON.stringify(res.paths)} outcomes ${JSON.stringify(res.outcomes)}`,
    );
  }
}
await voice.close();
record('warm-service', { latencies: 'realistic', compiled: entry !== undefined, results });
process.exit(0);
