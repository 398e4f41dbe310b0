/**
 * Cost of the daily (Chromium) call client: prepare time, join time against the call-machine
 * stand-in, and memory per bot. Run by hand:
 *
 *   npx tsx bench/daily-browser.ts [--runs 5]
 *
 * Layouts measured:
 *   A. one browser per worker, one page (what DailyBrowserCallClient does);
 *   B. a second bot page in the same browser (same persistent context), to price the alternative
 *      of several bots per browser.
 * Memory is read from /proc/<pid>/smaps_rollup of every Chromium process carrying the client's
 * user-data dir, plus this Node process: RSS (double-counts shared pages), PSS (shared pages
 * split between sharers) and USS (private pages only).
 */
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { pino } from 'pino';
import type { BrowserContext } from 'playwright-core';
import { findProcessesWithArg } from '../src/daily/browser/chromium.js';
import { DailyBrowserCallClient } from '../src/daily/browser/client.js';
import { CallMachineStandIn } from '../src/emulator/call-machine/stand-in.js';

const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;
const extraArg = process.argv.indexOf('--extra-args');
/** e.g. --extra-args "--in-process-gpu --renderer-process-limit=1" */
const EXTRA = extraArg > 0 ? (process.argv[extraArg + 1] ?? '').split(/\s+/).filter(Boolean) : [];
const logger = pino({ level: 'silent' });

interface Mem {
  rssKb: number;
  pssKb: number;
  ussKb: number;
}

async function memOf(pid: number): Promise<Mem> {
  try {
    const txt = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
    const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(txt)?.[1] ?? 0);
    return { rssKb: field('Rss'), pssKb: field('Pss'), ussKb: field('Private_Clean') + field('Private_Dirty') };
  } catch {
    return { rssKb: 0, pssKb: 0, ussKb: 0 };
  }
}

async function memSum(pids: number[]): Promise<Mem & { processes: number }> {
  const all = await Promise.all(pids.map(memOf));
  return all.reduce<Mem & { processes: number }>(
    (a, m) => ({ rssKb: a.rssKb + m.rssKb, pssKb: a.pssKb + m.pssKb, ussKb: a.ussKb + m.ussKb, processes: a.processes + 1 }),
    { rssKb: 0, pssKb: 0, ussKb: 0, processes: 0 },
  );
}

const mb = (kb: number): string => (kb / 1024).toFixed(0);
const stats = (xs: number[]): string => {
  const s = [...xs].sort((a, b) => a - b);
  const med = s[Math.floor(s.length / 2)] ?? 0;
  return `median ${med.toFixed(0)} ms (min ${(s[0] ?? 0).toFixed(0)}, max ${(s[s.length - 1] ?? 0).toFixed(0)}, n=${s.length})`;
};

async function settle(ms = 2_000): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Median of 5 samples 400 ms apart (the figures move while Chromium settles). */
async function sampleMem(marker: string): Promise<Mem & { processes: number }> {
  const samples: (Mem & { processes: number })[] = [];
  for (let i = 0; i < 5; i++) {
    samples.push(await memSum(await findProcessesWithArg(marker)));
    await new Promise((r) => setTimeout(r, 400));
  }
  const med = (f: (m: Mem & { processes: number }) => number): number => {
    const v = samples.map(f).sort((x, y) => x - y);
    return v[Math.floor(v.length / 2)] ?? 0;
  };
  return { rssKb: med((m) => m.rssKb), pssKb: med((m) => m.pssKb), ussKb: med((m) => m.ussKb), processes: med((m) => m.processes) };
}

async function main(): Promise<void> {
  const si = await CallMachineStandIn.start({ dialinReadyEndpoint: 'sip:bench@stand-in' });
  const join = { roomUrl: 'https://bench.daily.co/room', token: 't', userName: 'bench bot', timeoutMs: 10_000 };

  // Warm-up: the first launch after boot pays disk cache misses.
  const warm = new DailyBrowserCallClient({ apiUrl: 'x', logger, bundleUrl: si.bundleUrl, extraChromiumArgs: EXTRA });
  let t = performance.now();
  await warm.prepare();
  const coldPrepareMs = performance.now() - t;
  await warm.close();

  const prepareMs: number[] = [];
  const joinMs: number[] = [];
  const closeMs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const c = new DailyBrowserCallClient({ apiUrl: 'x', logger, bundleUrl: si.bundleUrl, extraChromiumArgs: EXTRA });
    t = performance.now();
    await c.prepare();
    prepareMs.push(performance.now() - t);
    t = performance.now();
    await c.join(join);
    joinMs.push(performance.now() - t);
    t = performance.now();
    await c.close();
    closeMs.push(performance.now() - t);
  }

  // Memory, layout A: one browser, one joined bot page.
  const nodeBase = await memOf(process.pid);
  const a = new DailyBrowserCallClient({ apiUrl: 'x', logger, bundleUrl: si.bundleUrl, extraChromiumArgs: EXTRA });
  await a.prepare();
  await settle();
  const dir = a.chromiumUserDataDir as string;
  const preparedMem = await sampleMem(dir);
  await a.join(join);
  await settle();
  const memA = await sampleMem(dir);
  const nodeA = await memOf(process.pid);

  // Layout B: a second bot page in the same browser (bench-only reach into the client's privates).
  const priv = a as unknown as { context: BrowserContext; server: { origin: string } };
  t = performance.now();
  const page2 = await priv.context.newPage();
  await page2.exposeFunction('__pbEmit', () => undefined);
  await page2.goto(`${priv.server.origin}/`);
  const init2 = (await page2.evaluate(`window.__patchbay.init(${JSON.stringify({ bundleUrl: si.bundleUrl, avoidEval: true })})`)) as {
    ok: boolean;
  };
  const secondPagePrepareMs = performance.now() - t;
  t = performance.now();
  const join2 = (await page2.evaluate(
    `window.__patchbay.join(${JSON.stringify({ url: join.roomUrl, token: join.token, userName: 'bench bot 2' })})`,
  )) as { ok: boolean };
  const secondPageJoinMs = performance.now() - t;
  if (!init2.ok || !join2.ok) throw new Error('second page failed');
  await settle();
  const memB = await sampleMem(dir);
  await a.close();
  await si.close();

  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  let chromiumVersion: string | undefined;
  try {
    chromiumVersion = /(\d+\.\d+\.\d+\.\d+)/.exec(
      execFileSync('/usr/bin/chromium', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }),
    )?.[1];
  } catch {
    chromiumVersion = undefined;
  }
  const load = os.loadavg()[0]?.toFixed(1);
  const lines = [
    `extra Chromium flags: ${EXTRA.length > 0 ? EXTRA.join(' ') : '(none)'}`,
    `load average at the end: ${load} (other work on the machine inflates times and shifts PSS)`,
    `machine: ${os.availableParallelism()} cores (${cpu}), ${mb(os.totalmem() / 1024)} MB RAM, ${os.type()} ${os.release()}, Node ${process.version}, Chromium ${chromiumVersion ?? '?'}, daily-js 0.92.2`,
    `prepare() cold (first launch): ${coldPrepareMs.toFixed(0)} ms`,
    `prepare() warm (launch + page + daily.js + createCallObject + AudioContext): ${stats(prepareMs)}`,
    `join() against the stand-in: ${stats(joinMs)}`,
    `close(): ${stats(closeMs)}`,
    `A. browser + 1 page, prepared, not joined: ${preparedMem.processes} processes, RSS ${mb(preparedMem.rssKb)} MB, PSS ${mb(preparedMem.pssKb)} MB, USS ${mb(preparedMem.ussKb)} MB`,
    `A. browser + 1 page, joined: ${memA.processes} processes, RSS ${mb(memA.rssKb)} MB, PSS ${mb(memA.pssKb)} MB, USS ${mb(memA.ussKb)} MB`,
    `   + the worker's Node process: RSS ${mb(nodeA.rssKb)} MB, PSS ${mb(nodeA.pssKb)} MB (before the client: RSS ${mb(nodeBase.rssKb)} MB)`,
    `   = per bot, worker included: PSS ${mb(memA.pssKb + nodeA.pssKb)} MB`,
    `B. same browser + a 2nd joined page: ${memB.processes} processes, RSS ${mb(memB.rssKb)} MB, PSS ${mb(memB.pssKb)} MB, USS ${mb(memB.ussKb)} MB`,
    `   2nd page costs: PSS +${mb(memB.pssKb - memA.pssKb)} MB, USS +${mb(memB.ussKb - memA.ussKb)} MB; page + init ${secondPagePrepareMs.toFixed(0)} ms, join ${secondPageJoinMs.toFixed(0)} ms`,
  ];
  console.log(lines.join('\n'));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
