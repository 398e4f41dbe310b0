/**
 * Worker start cost (fork → ready), one at a time and six requested at once, for the source under
 * tsx (default) or a compiled build:
 *
 *   npx tsx bench/worker-start.ts
 *   npx tsc -p tsconfig.build.json --outDir .bench-build && npx tsx bench/worker-start.ts --base .bench-build; rm -rf .bench-build
 *
 * With `--base`, the runtime (and so the pool, and the workers it forks) comes from that build:
 * compiled workers are forked without tsx.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command } from 'commander';
import { machine, record, REPO, summarize } from './lib/common.js';

const opts = new Command()
  .option('--base <dir>', 'a compiled build (tsc outDir) instead of the sources', '')
  .option('--runs <n>', 'starts one at a time', (v) => Number.parseInt(v, 10), 5)
  .parse()
  .opts<{ base: string; runs: number }>();

const root = opts.base ? path.resolve(REPO, opts.base) : REPO;
const ext = opts.base ? 'js' : 'ts';
const mod = (p: string) => import(pathToFileURL(path.join(root, `src/${p}.${ext}`)).href);
const { loadConfig } = await mod('config');
const { createEmulator } = await mod('emulator/server');
const { createLogger } = await mod('logger');
const { createRuntime } = await mod('app/runtime');

const apiKey = 'bench-worker-start';
const logger = createLogger({ level: 'warn' });
const emulator = await createEmulator({ apiKey, port: 0 });
const config = loadConfig({
  HOST: '127.0.0.1',
  PORT: '0',
  LOG_LEVEL: 'warn',
  IDLE_WORKERS: '0',
  TTS_PROVIDER: 'text',
  WORKER_INIT_TIMEOUT_MS: '60000',
});
const rt = await createRuntime(config, logger, { emulator: { instance: emulator, apiKey } });
await rt.listen();
const t: number[] = [];
rt.pool.onWorkerReady = (_w: unknown, ms: number) => t.push(ms);
for (let i = 0; i < opts.runs; i++) {
  const w = await rt.pool.acquire();
  await w.close();
}
const sequential = summarize(t);
t.length = 0;
const ws = await Promise.all(Array.from({ length: 6 }, () => rt.pool.acquire()));
const sixAtOnce = summarize(t);
await Promise.all(ws.map((w: { close(): Promise<void> }) => w.close()));
await rt.shutdown(0);
await emulator.close();
const res = { build: opts.base ? 'compiled' : 'tsx', sequentialForkToReadyMs: sequential, sixAtOnceForkToReadyMs: sixAtOnce };
console.log(JSON.stringify({ ...machine(), ...res }));
record('worker-start', res);
process.exit(0);
