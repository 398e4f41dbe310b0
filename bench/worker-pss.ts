/**
 * The worker's own memory before a call: real worker processes (compiled build, what the Docker
 * image runs) forked by the real WorkerHandle, idle and prepared, for each call client; PSS from
 * /proc/<pid>/smaps_rollup.
 *
 *   npm run build && npx tsx bench/worker-pss.ts [--workers 3]
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command } from 'commander';
import { pino } from 'pino';
import { machine, record, REPO } from './lib/common.js';

const opts = new Command()
  .option('--workers <n>', 'workers per client', (v) => Number.parseInt(v, 10), 3)
  .parse()
  .opts<{ workers: number }>();
const dist = path.join(REPO, 'dist/src');
if (!existsSync(path.join(dist, 'workers/child/main.js'))) throw new Error('run `npm run build` first');
const imp = async <T>(p: string): Promise<T> => (await import(pathToFileURL(path.join(dist, p)).href)) as T;
const { WorkerHandle } = await imp<typeof import('../src/workers/parent/handle.js')>('workers/parent/handle.js');
const { BrowserHost } = await imp<typeof import('../src/daily/browser/host.js')>('daily/browser/host.js');
const { pssBytes } = await imp<typeof import('../src/daily/browser/chromium.js')>('daily/browser/chromium.js');
const { CallMachineStandIn } = await import('../src/emulator/call-machine/stand-in.js');
const logger = pino({ level: 'silent' });
const MiB = 1024 * 1024;

const si = await CallMachineStandIn.start({});
const host = new BrowserHost({ chromiumPath: '/usr/bin/chromium', browsers: 1, botsPerBrowser: opts.workers, logger });
await host.start();
const sup = {
  initTimeoutMs: 60_000,
  pingIntervalMs: 60_000,
  pingTimeoutMs: 120_000,
  memoryWarnMb: 4000,
  memoryLimitMb: 8000,
  closeTimeoutMs: 3_000,
};
const baseInit = {
  logLevel: 'silent' as const,
  chromiumPath: '/usr/bin/chromium',
  dailyBundleUrl: si.bundleUrl,
  dailyApiUrl: 'http://127.0.0.1:9/v1',
  dailyApiKey: 'x',
  apiTimeoutMs: 1000,
  botsDir: path.join(REPO, 'dist/bots'),
  preloadBots: ['default'],
  dialinReadyTimeoutMs: 1000,
  joinTimeoutMs: 1000,
  maxCallMs: 60_000,
  pinlessUpdateTimeoutMs: 1000,
  pinlessUpdateDeadlineMs: 1000,
  pingTimeoutMs: 120_000,
  tts: { provider: 'text' as const, sampleRate: 16_000, espeakPath: 'espeak-ng' },
};
const results: Record<string, unknown> = {};
for (const variant of ['emulator', 'daily-shared', 'daily-per-worker'] as const) {
  const ws = [];
  for (let i = 0; i < opts.workers; i++) {
    const lease = variant === 'daily-shared' ? host.lease() : undefined;
    const init = {
      ...baseInit,
      callClient: variant === 'emulator' ? ('emulator' as const) : ('daily' as const),
      ...(lease ? { browser: { wsEndpoint: lease.wsEndpoint, pid: lease.browserPid } } : {}),
    };
    const w = new WorkerHandle(init, sup, logger);
    await new Promise<void>((resolve, reject) => {
      w.once('ready', () => resolve());
      w.once('exit', () => reject(new Error(`${variant} worker exited before ready`)));
    });
    ws.push({ w, lease });
  }
  await new Promise((r) => setTimeout(r, 3_000));
  const pss = await Promise.all(ws.map(({ w }) => pssBytes(w.pid)));
  results[variant] = {
    workerPssMb: pss.map((b) => Math.round(b / MiB)),
    prepareMs: ws.map(({ w }) => w.prepareMs),
  };
  console.log(variant, JSON.stringify(results[variant]));
  await Promise.all(ws.map(({ w }) => w.close()));
  for (const { lease } of ws) lease?.release();
}
await host.close();
await si.close();
const summary = { ...machine(), results };
console.log(JSON.stringify(summary));
record('worker-pss', summary);
process.exit(0);
