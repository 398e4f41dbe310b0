/**
 * Reload without restart (docs/operations.md, "Reload"), one replica in this process with the
 * emulator's realistic Daily latencies, warm rooms and idle workers, calls placed at a steady rate:
 *
 *  - `base`: no reload; `reload`: the same traffic with POST /admin/reload (a new bot version)
 *    after `--before` calls. Side by side, one run: hold time we add (webhook → pinlessCallUpdate
 *    sent, minus the emulator's latencies on that path) and webhook → caller connected;
 *  - the reload: request → answer (new workers and warm slots ready, switch done), and request →
 *    the first call from which every call ran the new version (by what the bot said it was).
 *
 *   npx tsx bench/reload.ts [--calls 30] [--every-ms 400] [--before 8] [--warm 2] [--idle 2]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command } from 'commander';
import type { CallRecord } from '../src/admission/dispatcher.js';
import { realisticLatencies } from '../src/emulator/types.js';
import { fmt, holdAddedMs, machine, NUMBER, record, stageStats, startBenchStack, summarize } from './lib/common.js';

const opts = new Command()
  .option('--calls <n>', 'calls per mode', (v) => Number.parseInt(v, 10), 30)
  .option('--every-ms <n>', 'one call placed every … ms', (v) => Number.parseInt(v, 10), 400)
  .option('--before <n>', 'calls placed before the reload (mode reload)', (v) => Number.parseInt(v, 10), 8)
  .option('--warm <n>', 'WARM_ROOMS', (v) => Number.parseInt(v, 10), 2)
  .option('--idle <n>', 'IDLE_WORKERS', (v) => Number.parseInt(v, 10), 2)
  .parse()
  .opts<{ calls: number; everyMs: number; before: number; warm: number; idle: number }>();

const SDK = pathToFileURL(path.resolve(import.meta.dirname, '../src/sdk/index.ts')).href;
const bot = (v: string) => `import { defineBot } from ${JSON.stringify(SDK)};
export default defineBot({ name: 'menu', version: '${v}', async onCall(call) { await call.say('menu version ${v}'); await call.hangup('done'); } });
`;
const latencies = { ...realisticLatencies };

interface Placed {
  atMs: number;
  said: string | undefined;
  rec: CallRecord;
}

async function run(mode: 'base' | 'reload') {
  const root = mkdtempSync(path.join(os.tmpdir(), 'pb-bench-reload-'));
  const dir = path.join(root, 'bots');
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'menu.ts'), bot('v1'));
  writeFileSync(path.join(dir, 'routes.json'), JSON.stringify({ default: 'menu' }));
  const stack = await startBenchStack({
    latencies,
    env: {
      BOTS_DIR: dir,
      WARM_ROOMS: String(opts.warm),
      IDLE_WORKERS: String(opts.idle),
      MAX_CONCURRENT_BOTS: '16',
      JOIN_TIMEOUT_MS: '60000',
      DIALIN_READY_TIMEOUT_MS: '60000',
    },
  });
  const url = stack.rt.url;
  const reload = () => fetch(`${url}/admin/reload`, { method: 'POST' }).then(async (r) => ({ status: r.status, body: await r.json() }));
  try {
    // Pin v1 in a snapshot (docs/operations.md: before the first reload, workers read BOTS_DIR itself).
    await reload();
    while (stack.rt.warm!.stats().ready < opts.warm || stack.rt.pool.stats().idle < opts.idle) await new Promise((r) => setTimeout(r, 50));
    const placed: Array<Promise<Placed>> = [];
    let reloadAt = 0;
    let answer: Promise<{ status: number; body: unknown; ms: number }> | undefined;
    const load: number[] = [os.loadavg()[0]!];
    for (let i = 0; i < opts.calls; i++) {
      if (mode === 'reload' && i === opts.before) {
        writeFileSync(path.join(dir, 'menu.ts'), bot('v2'));
        reloadAt = Date.now();
        answer = reload().then((a) => ({ ...a, ms: Date.now() - reloadAt }));
      }
      const atMs = Date.now();
      const c = stack.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'say', match: 'menu version', timeoutMs: 120_000 }] });
      placed.push(
        c.ended.then(async () => {
          const ended = await waitEnded(stack.ended, c.callId);
          const said = c.transcript.find((l) => l.text.startsWith('menu version'))?.text.replace('menu version ', '');
          return { atMs, said, rec: ended };
        }),
      );
      await new Promise((r) => setTimeout(r, opts.everyMs));
    }
    load.push(os.loadavg()[0]!);
    const calls = await Promise.all(placed);
    const a = answer ? await answer : undefined;
    return { calls, reloadAt, answer: a, load };
  } finally {
    await stack.close();
    rmSync(root, { recursive: true, force: true });
  }
}

async function waitEnded(ended: CallRecord[], callId: string): Promise<CallRecord> {
  for (;;) {
    const r = ended.find((e) => e.callId === callId);
    if (r) return r;
    await new Promise((res) => setTimeout(res, 20));
  }
}

console.log(JSON.stringify({ ...machine(), latencies, ...opts }));
const results: Record<string, unknown> = {};
for (const mode of ['base', 'reload'] as const) {
  const { calls, reloadAt, answer, load } = await run(mode);
  const recs = calls.map((c) => c.rec);
  const holds = recs.map((r) => holdAddedMs(r, latencies)).filter((x): x is number => x !== undefined);
  // From the request to the first call from which on every call ran v2.
  let allNewFrom: number | undefined;
  for (let i = calls.length - 1; i >= 0 && calls[i]!.said === 'v2'; i--) allNewFrom = calls[i]!.atMs;
  const res = {
    calls: recs.length,
    outcomes: recs.reduce<Record<string, number>>((acc, r) => ((acc[r.outcome ?? '?'] = (acc[r.outcome ?? '?'] ?? 0) + 1), acc), {}),
    versions: calls.reduce<Record<string, number>>((acc, c) => ((acc[c.said ?? '?'] = (acc[c.said ?? '?'] ?? 0) + 1), acc), {}),
    recordMatchesSaid: calls.every((c) => c.rec.botVersion === c.said),
    holdAddedMs: summarize(holds),
    webhookToConnectedMs: stageStats(
      recs.map((r) => r.timeline),
      'received',
      'connected',
    ),
    ...(answer ? { reloadStatus: answer.status, reloadAnswerMs: answer.ms } : {}),
    ...(mode === 'reload' && allNewFrom !== undefined ? { reloadToAllNewMs: allNewFrom - reloadAt } : {}),
    loadavg1: load.map((l) => Math.round(l * 100) / 100),
  };
  results[mode] = res;
  console.log(
    `${mode}: n=${res.calls} outcomes ${JSON.stringify(res.outcomes)} versions ${JSON.stringify(res.versions)} hold p50 ${fmt(res.holdAddedMs.p50)} p90 ${fmt(res.holdAddedMs.p90)} max ${fmt(res.holdAddedMs.max)}${answer ? `  reload answer ${answer.ms} ms, every new call on v2 ${'reloadToAllNewMs' in res ? String(res.reloadToAllNewMs) : '?'} ms after the request` : ''}  load ${res.loadavg1.join('→')}`,
  );
}
record('reload', { latencies: 'realistic', results });
process.exit(0);
