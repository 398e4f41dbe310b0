/**
 * Cost of the daily (Chromium) call client per bot, both browser layouts side by side in one run:
 *
 *   shared      pages in browsers of a BrowserHost (src/daily/browser/host.ts), BOTS_PER_BROWSER each
 *   per-worker  a Chromium per bot process (BROWSER_LAYOUT=per-worker)
 *
 * Each bot is its own process (bench/lib/browser-bot.mjs: the worker's call client plus the modules
 * an idle worker loads), against the call-machine stand-in (scripted: join resolves, the caller is
 * a 440 Hz tone). Figures: prepare() and join() times; PSS per bot all-in (the bot process + its page
 * + its share of the browser, i.e. all of those processes' PSS / bots) at each size; CPU per bot
 * with 16 kHz two-way audio; browser restart time (shared).
 *
 *   npm run build && npx tsx bench/daily-browser.ts [--sizes 1,5,10] [--audio-bots 5] [--audio-seconds 20]
 *       [--bots-per-browser 6] [--layouts shared,per-worker] [--client dist/src/daily/browser/client.js]
 *
 * `--client` picks the client code the bots run: the compiled build (default when dist exists, what
 * the Docker image runs) or any client.ts under tsx (e.g. an older checkout's, to price a change).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { pino } from 'pino';
import { cpuTicks, descendantsOf, pssBytes } from '../src/daily/browser/chromium.js';
import { BrowserHost } from '../src/daily/browser/host.js';
import { CallMachineStandIn } from '../src/emulator/call-machine/stand-in.js';
import { machine, record, REPO } from './lib/common.js';

const distClient = path.join(REPO, 'dist/src/daily/browser/client.js');
const opts = new Command()
  .option('--sizes <list>', 'concurrent joined bots to measure', '1,5,10')
  .option('--audio-bots <n>', 'bots streaming two-way audio for the CPU figure', (v) => Number.parseInt(v, 10), 5)
  .option('--audio-seconds <n>', 'length of the audio run', (v) => Number.parseInt(v, 10), 20)
  .option('--bots-per-browser <n>', 'shared layout: pages per browser', (v) => Number.parseInt(v, 10), 6)
  .option('--layouts <list>', 'layouts to run', 'shared,per-worker')
  .option(
    '--client <file>',
    'client module the bots load',
    existsSync(distClient) ? distClient : path.join(REPO, 'src/daily/browser/client.ts'),
  )
  .parse()
  .opts<{ sizes: string; audioBots: number; audioSeconds: number; botsPerBrowser: number; layouts: string; client: string }>();

const sizes = opts.sizes.split(',').map(Number);
const layouts = opts.layouts.split(',') as ('shared' | 'per-worker')[];
const logger = pino({ level: 'silent' });
const MiB = 1024 * 1024;

interface Bot {
  child: ChildProcess;
  next(type: string): Promise<Record<string, unknown>>;
}

function startBot(): Promise<Bot> {
  const isTs = opts.client.endsWith('.ts');
  const child = fork(path.join(REPO, 'bench/lib/browser-bot.mjs'), [path.resolve(opts.client)], {
    execArgv: isTs ? ['--import', 'tsx'] : [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const queue: Record<string, unknown>[] = [];
  const waiting: Array<(m: Record<string, unknown>) => void> = [];
  child.on('message', (m: Record<string, unknown>) => {
    if (m.type === 'error') console.error(`bot ${child.pid}: ${String(m.error)}`);
    const w = waiting.shift();
    if (w) w(m);
    else queue.push(m);
  });
  const next = (type: string) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const take = (m: Record<string, unknown>) =>
        m.type === type ? resolve(m) : reject(new Error(`bot ${child.pid}: ${String(m.error ?? m.type)}`));
      const q = queue.shift();
      if (q) take(q);
      else waiting.push(take);
    });
  return next('up').then(() => ({ child, next }));
}

async function ask(b: Bot, msg: Record<string, unknown>, reply: string): Promise<Record<string, unknown>> {
  b.child.send(msg);
  return b.next(reply);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const fmtMs = (xs: number[]) =>
  `median ${median(xs).toFixed(0)} ms (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)}, n=${xs.length})`;

/** Every process a layout's bots use: bot processes, and browsers with all their children. */
async function processesOf(bots: Bot[], host: BrowserHost | undefined): Promise<{ bots: number[]; browser: number[] }> {
  const botPids = bots.map((b) => b.child.pid!);
  const roots = host
    ? host
        .stats()
        .browsers.map((b) => b.pid!)
        .filter(Boolean)
    : botPids;
  const trees = await Promise.all(roots.map(async (r) => [...(host ? [r] : []), ...(await descendantsOf(r)).map((p) => p.pid)]));
  return { bots: botPids, browser: trees.flat() };
}

async function pssSum(pids: number[]): Promise<number> {
  return (await Promise.all(pids.map(pssBytes))).reduce((a, b) => a + b, 0);
}

async function ticksSum(pids: number[]): Promise<number> {
  return (await Promise.all(pids.map(cpuTicks))).reduce<number>((a, b) => a + (b ?? 0), 0);
}

async function runLayout(layout: 'shared' | 'per-worker', si: CallMachineStandIn): Promise<Record<string, unknown>> {
  const maxBots = Math.max(...sizes, opts.audioBots);
  const host =
    layout === 'shared'
      ? new BrowserHost({
          chromiumPath: '/usr/bin/chromium',
          browsers: Math.ceil(maxBots / opts.botsPerBrowser),
          botsPerBrowser: opts.botsPerBrowser,
          logger,
        })
      : undefined;
  await host?.start();
  const out: Record<string, unknown> = { layout, botsPerBrowser: layout === 'shared' ? opts.botsPerBrowser : 1 };
  const bots: Bot[] = [];
  const prepareMs: number[] = [];
  const joinMs: number[] = [];
  const mem: Record<string, unknown>[] = [];
  for (const n of [...sizes].sort((a, b) => a - b)) {
    while (bots.length < n) {
      const b = await startBot();
      const lease = host?.lease();
      await new Promise((r) => setTimeout(r, 300)); // the bot process settles (module loading) first
      prepareMs.push(
        Number(
          (
            await ask(
              b,
              { type: 'prepare', bundleUrl: si.bundleUrl, wsEndpoint: lease?.wsEndpoint, browserPid: lease?.browserPid },
              'prepared',
            )
          ).ms,
        ),
      );
      joinMs.push(Number((await ask(b, { type: 'join', roomUrl: `https://bench.daily.co/room-${bots.length}` }, 'joined')).ms));
      bots.push(b);
    }
    await new Promise((r) => setTimeout(r, 3_000));
    const procs = await processesOf(bots, host);
    const botPss = await pssSum(procs.bots);
    const browserPss = await pssSum(procs.browser);
    const pagePids = (await Promise.all(bots.map(async (b) => (await ask(b, { type: 'pids' }, 'pids')).pagePids as number[]))).flat();
    const pagePss = layout === 'shared' ? await pssSum(pagePids) : undefined;
    const row = {
      bots: n,
      perBotMb: Math.round((botPss + browserPss) / n / MiB),
      botProcessMb: Math.round(botPss / n / MiB),
      ...(pagePss !== undefined
        ? { pageRendererMb: Math.round(pagePss / n / MiB), browserRestPerBotMb: Math.round((browserPss - pagePss) / n / MiB) }
        : { browserPerBotMb: Math.round(browserPss / n / MiB) }),
      browsers: host ? host.stats().up : n,
      chromiumProcesses: procs.browser.length,
    };
    mem.push(row);
    console.log(`${layout} ${JSON.stringify(row)}`);
  }
  out.prepareMs = { first: Math.round(prepareMs[0] ?? 0), rest: fmtMs(prepareMs.slice(1)) };
  out.joinMs = fmtMs(joinMs);
  out.memory = mem;

  // Two-way audio: the first `audioBots` bots, each with a tone-playing caller, for audioSeconds.
  const audioBots = bots.slice(0, opts.audioBots);
  const ids = si.callClientIds;
  ids.forEach((id, i) => si.addParticipant({ sessionId: `caller-${layout}-${i}`, participantType: 'sip-dial-in', toneHz: 440 }, id));
  await new Promise((r) => setTimeout(r, 1_000));
  const all = await processesOf(bots, host);
  const pids = [...all.bots, ...all.browser];
  const idle0 = await ticksSum(pids);
  await new Promise((r) => setTimeout(r, 5_000));
  const idleTicks = (await ticksSum(pids)) - idle0;
  const t0 = Date.now();
  const c0 = await ticksSum(pids);
  const res = await Promise.all(audioBots.map((b) => ask(b, { type: 'audio', seconds: opts.audioSeconds }, 'audioDone')));
  const secs = (Date.now() - t0) / 1000;
  const ticks = (await ticksSum(pids)) - c0;
  const hz = 100;
  // Idle joined bots (all of them) cost idleTicks/5 s; subtract that to price the audio itself, and report both.
  out.audio = {
    bots: audioBots.length,
    seconds: Math.round(secs),
    perBotPctOfCore: +((ticks / hz / secs / audioBots.length) * 100).toFixed(1),
    idleJoinedPerBotPctOfCore: +((idleTicks / hz / 5 / bots.length) * 100).toFixed(1),
    framesInPerBot: Math.round(res.reduce((a, r) => a + Number(r.framesIn), 0) / res.length),
  };
  console.log(`${layout} audio ${JSON.stringify(out.audio)}`);

  if (host) {
    // Browser restart: kill browser 0 under its bots; time until it answers again.
    const t = Date.now();
    const restarts = host.stats().restarts;
    host.kill(0, 'bench');
    while (host.stats().restarts === restarts) await new Promise((r) => setTimeout(r, 5));
    await host.waitUp(0, 60_000);
    out.browserRestartMs = { killToUp: Date.now() - t, launch: host.stats().browsers[0]!.lastStartMs };
    console.log(`${layout} restart ${JSON.stringify(out.browserRestartMs)}`);
  }
  await Promise.all(bots.map((b) => ask(b, { type: 'close' }, 'closed').catch(() => b.child.kill('SIGKILL'))));
  await host?.close();
  return out;
}

async function main(): Promise<void> {
  const si = await CallMachineStandIn.start({ dialinReadyEndpoint: 'sip:bench@stand-in' });
  const results: Record<string, unknown>[] = [];
  for (const layout of layouts) results.push(await runLayout(layout, si));
  await si.close();
  const summary = { client: path.relative(REPO, opts.client), loadAvg: os.loadavg().map((x) => +x.toFixed(1)), ...machine(), results };
  console.log(JSON.stringify(summary, null, 2));
  record('daily-browser', summary);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
