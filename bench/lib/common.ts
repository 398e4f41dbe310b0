/**
 * Shared bits of the benchmarks (run by hand, see docs/BENCHMARKS.md): an in-process stack (the
 * real emulator, the real runtime, real worker processes — the same wiring as test/helpers/stack.ts),
 * percentiles, machine facts, and the record of every run.
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, type Config } from '../../src/core/config.js';
import type { CallRecord } from '../../src/admission/dispatcher.js';
import { createEmulator } from '../../src/emulator/server.js';
import type { Emulator, EmulatorOptions, Latencies } from '../../src/emulator/types.js';
import { createLogger } from '../../src/core/logger.js';
import { createRuntime, type Runtime, type RuntimeOptions } from '../../src/app/runtime.js';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const BENCH_BOTS = path.join(REPO, 'bench/bots');
export const NUMBER = '+15550001000';

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function summarize(values: number[]): { n: number; p50: number; p90: number; p99: number; max: number; mean: number } {
  const s = [...values].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / (s.length || 1);
  return {
    n: s.length,
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    max: s[s.length - 1] ?? Number.NaN,
    mean: Math.round(mean * 10) / 10,
  };
}

/** `--levels 1,10,50` → [1, 10, 50] (positive integers only). */
export function levelList(s: string): number[] {
  return s
    .split(',')
    .map((x) => Number.parseInt(x, 10))
    .filter((n) => n > 0);
}

/** Percentiles of `b − a` over timelines that have both stages. */
export function stageStats<T extends Partial<Record<string, number>>>(
  ts: readonly T[],
  a: keyof T,
  b: keyof T,
): ReturnType<typeof summarize> {
  const spans = ts.map((t) => (t[a] !== undefined && t[b] !== undefined ? t[b] - t[a] : undefined));
  return summarize(spans.filter((x): x is number => x !== undefined));
}

export function machine(): Record<string, unknown> {
  return {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model,
    memMb: Math.round(os.totalmem() / 2 ** 20),
    loadAvg1m: Math.round(os.loadavg()[0]! * 100) / 100,
  };
}

/** Appends one JSON line per run to bench/results/<name>.jsonl (the numbers quoted in docs/BENCHMARKS.md). */
export function record(name: string, result: Record<string, unknown>): void {
  const dir = path.join(REPO, 'bench/results');
  mkdirSync(dir, { recursive: true });
  appendFileSync(path.join(dir, `${name}.jsonl`), `${JSON.stringify({ ...machine(), argv: process.argv.slice(2), ...result })}\n`);
}

/** VmRSS of a process in MB (Linux), or undefined when it is gone. */
export function rssMb(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : undefined;
  } catch {
    return undefined;
  }
}

export interface BenchStack {
  emulator: Emulator;
  rt: Runtime;
  config: Config;
  /** Every call-ended record, in order. */
  ended: CallRecord[];
  /** Resolves when `n` more calls have ended than when called. */
  endedCount(n: number, timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

/** The emulator and one replica in this process (ephemeral ports on 127.0.0.1), with real workers. */
export async function startBenchStack(
  opts: {
    env?: Record<string, string>;
    latencies?: Partial<Latencies>;
    emulator?: Partial<EmulatorOptions>;
    runtime?: RuntimeOptions;
  } = {},
): Promise<BenchStack> {
  const apiKey = `bench_${randomBytes(8).toString('hex')}`;
  const secret = randomBytes(32).toString('base64');
  const logger = createLogger({ level: process.env.BENCH_LOG_LEVEL ?? 'warn', name: 'bench' });
  const emulator = await createEmulator({
    host: '127.0.0.1',
    port: 0,
    apiKey,
    holdTimeoutMs: 120_000,
    logger: logger.child({ component: 'emulator' }),
    ...(opts.latencies ? { latencies: opts.latencies } : {}),
    ...opts.emulator,
  });
  const config = loadConfig({
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
    DAILY_PINLESS_HMAC: secret,
    EMULATOR_NUMBERS: NUMBER,
    TTS_PROVIDER: 'text',
    BOTS_DIR: BENCH_BOTS,
    DEFAULT_BOT: 'hold',
    WORKER_INIT_TIMEOUT_MS: '60000',
    QUEUE_TIMEOUT_MS: '60000',
    // The per-call path unless a benchmark asks for warm rooms (bench/warm-rooms.ts).
    WARM_ROOMS: '0',
    ...opts.env,
  });
  const rt = await createRuntime(config, logger, { emulator: { instance: emulator, apiKey }, ...opts.runtime });
  await rt.listen();
  const ended: CallRecord[] = [];
  const waiters = new Set<() => void>();
  rt.dispatcher.on('call-ended', (r) => {
    ended.push(r);
    for (const w of [...waiters]) w();
  });
  return {
    emulator,
    rt,
    config,
    ended,
    endedCount(n, timeoutMs) {
      const target = ended.length + n;
      return new Promise((resolve, reject) => {
        const check = () => {
          if (ended.length >= target) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`only ${ended.length - (target - n)} of ${n} calls ended within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async close() {
      await rt.shutdown(0);
      await emulator.close();
    },
  };
}

/** Waits (polling the pool, bounded) until `n` workers are idle. */
export async function warmPool(rt: Runtime, n: number, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (rt.pool.stats().idle < n) {
    if (Date.now() > deadline) throw new Error(`pool did not reach ${n} idle workers within ${timeoutMs} ms (has ${rt.pool.stats().idle})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Hold time we add for one call: webhook received → pinlessCallUpdate sent, minus the emulator's
 * configured latencies on that path (room and token in parallel, join, dialin-ready).
 */
export function holdAddedMs(r: CallRecord, l: Latencies): number | undefined {
  const t = r.timeline;
  if (t.received === undefined || t.forward_sent === undefined) return undefined;
  return t.forward_sent - t.received - (Math.max(l.roomCreateMs, l.tokenCreateMs) + l.joinMs + l.dialinReadyMs);
}

export function fmt(n: number): string {
  return Number.isFinite(n) ? (Math.round(n * 10) / 10).toString() : 'n/a';
}
