/**
 * Where a worker's bot page lives, in either browser layout:
 *
 *  - shared (production default): the page is in its own browser context of a browser served by
 *    the parent's browser host (src/daily/browser/host.ts), reached with
 *    `chromium.connect(wsEndpoint)`. Closing (or the worker dying) closes only that context.
 *  - per-worker (BROWSER_LAYOUT=per-worker): the worker launches its own Chromium over a pipe
 *    with a private user-data dir (the marker on all its processes), as before.
 *
 * `memoryBytes()` is the PSS the page costs: in the shared layout, the page's renderer process
 * (found once: the one whose CPU time follows the page's random pattern of spins and rests, see
 * rendererFollowing); in the per-worker layout, the whole
 * browser (it serves this page only).
 */
import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { BrowserContext, Page } from 'playwright-core';
import { CdpConnection } from './cdp.js';
import {
  CHROMIUM_FLAGS,
  cpuTicks,
  findProcessesWithArg,
  killProcessesWithArg,
  pssBytes,
  rendererPidsOf,
  sweepStaleUserDataDirs,
  waitForNoProcesses,
} from './chromium.js';
import { ChromiumMissingError, DailyClientError } from './errors.js';
import { errorMessage } from '../../core/errors.js';

/** What the client needs of its page, in either layout. */
export interface PageDriver {
  /** Evaluates a JS expression in the page, awaiting a promise; the value comes back as JSON. */
  evaluate(expression: string): Promise<unknown>;
  /** `window.__pbEmit1(string)` in the page calls `cb` (set before navigation). */
  exposeEmit(cb: (payload: string) => void): Promise<void>;
  goto(url: string, timeoutMs: number): Promise<void>;
  onCrash(cb: () => void): void;
  onConsole(cb: (type: string, text: string) => void): void;
  readonly closed: boolean;
  /** False once the browser connection is gone. */
  readonly browserConnected: boolean;
}

export interface BotPage {
  readonly layout: 'shared' | 'per-worker';
  readonly driver: PageDriver;
  /** per-worker only: the private user-data dir (marker of every process of that browser). */
  readonly userDataDir: string | undefined;
  /** Called once when the browser goes away under the page (crash, kill, host restart). */
  onLost(cb: () => void): void;
  /** Finds the page's renderer (shared layout); call after the page has loaded. */
  identifyRenderer(spin: (ms: number) => Promise<unknown>): Promise<void>;
  /** PSS of the page's browser processes, in bytes (0 until known). */
  memoryBytes(): Promise<number>;
  /** Pids counted by memoryBytes() (tests). */
  pids(): Promise<number[]>;
  close(stepTimeoutMs: number): Promise<void>;
}

function playwrightDriver(page: Page): PageDriver {
  return {
    evaluate: (expression) => page.evaluate(expression),
    exposeEmit: async (cb) => {
      await page.exposeFunction('__pbEmit1', cb);
    },
    goto: async (url, timeout) => {
      await page.goto(url, { timeout });
    },
    onCrash: (cb) => page.on('crash', cb),
    onConsole: (cb) => page.on('console', (m) => cb(m.type(), m.text())),
    get closed() {
      return page.isClosed();
    },
    get browserConnected() {
      return !page.isClosed();
    },
  };
}

export interface OpenOptions {
  chromiumPath: string;
  timeoutMs: number;
  extraChromiumArgs: string[];
  log: Logger;
}

function launchError(chromiumPath: string, err: unknown): Error {
  const msg = errorMessage(err) ?? String(err);
  if (/spawn \S+ (ENOENT|EACCES)/.test(msg)) return new ChromiumMissingError(chromiumPath, err);
  return new DailyClientError('chromium_launch_failed', `Chromium (${chromiumPath}) did not start: ${msg}`, {
    retryable: true,
    cause: err,
  });
}

async function settleWithin(p: Promise<unknown>, ms: number): Promise<void> {
  let t: NodeJS.Timeout | undefined;
  await Promise.race([p.catch(() => undefined), new Promise((r) => (t = setTimeout(r, ms)))]).finally(() => clearTimeout(t));
}

/** Per-worker layout: a private Chromium, exactly as the one-browser-per-worker client always did. */
export async function openOwnBrowser(o: OpenOptions & { userDataDir: string }): Promise<BotPage> {
  void sweepStaleUserDataDirs().then(
    (dirs) => dirs.length > 0 && o.log.info({ dirs }, 'removed stale Chromium user-data dirs'),
    () => undefined,
  );
  const userDataDir = o.userDataDir;
  const { chromium } = await import('playwright-core');
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: o.chromiumPath,
      headless: true,
      args: [...CHROMIUM_FLAGS, ...o.extraChromiumArgs],
      // The worker owns shutdown; playwright's own signal handlers would race it.
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
      timeout: o.timeoutMs,
    });
  } catch (err) {
    await rm(userDataDir, { recursive: true, force: true }).catch(() => undefined);
    throw launchError(o.chromiumPath, err);
  }
  const page = context.pages()[0] ?? (await context.newPage());
  const driver = playwrightDriver(page);
  let closing = false;
  const lost: Array<() => void> = [];
  context.on('close', () => {
    if (!closing) for (const cb of lost) cb();
  });
  return {
    layout: 'per-worker',
    driver,
    userDataDir,
    onLost: (cb) => lost.push(cb),
    identifyRenderer: async () => undefined,
    memoryBytes: async () => (await Promise.all((await findProcessesWithArg(userDataDir)).map(pssBytes))).reduce((a, b) => a + b, 0),
    pids: () => findProcessesWithArg(userDataDir),
    async close(stepMs) {
      closing = true;
      await settleWithin(context.close(), stepMs);
      const killed = await killProcessesWithArg(userDataDir);
      if (killed > 0) o.log.warn({ killed }, 'killed Chromium processes left after close');
      const left = await waitForNoProcesses(userDataDir, 2_000);
      if (left.length > 0) o.log.error({ pids: left }, 'Chromium processes survived close');
      await rm(userDataDir, { recursive: true, force: true }).catch(() => undefined);
    },
  };
}

const IDENTIFY_ATTEMPTS = 4;
const IDENTIFY_ROUNDS = 10;
const SPIN_MS = 150;

/**
 * Of the browser's renderers, the one whose CPU time follows our page's spinning. Chromium may hand
 * a page its pre-started spare renderer, so "new since we came" says nothing. Each round has a spin
 * window and a rest window of the same length, in a random order; a renderer scores its ticks in
 * the spin window minus its ticks in the rest window. Ours scores every round. Another page that
 * spins on its own schedule (it is looking for its renderer too) scores as often against as for,
 * and steady background work (a page playing audio) cancels out. Clock ticks are 10 ms: a spin is
 * up to 15, fewer when the machine is busy, so the scores are summed over rounds. One round is
 * enough only in a quiet browser; while another renderer moves with or against us, it takes at
 * least three (one round that happened to line up with another page's spin once picked its renderer).
 */
async function rendererFollowing(browserPid: number, spin: (ms: number) => Promise<unknown>): Promise<number | undefined> {
  const score = new Map<number, number>();
  let contested = false;
  for (let round = 0; round < IDENTIFY_ROUNDS; round++) {
    const candidates = await rendererPidsOf(browserPid);
    if (candidates.length === 0) return undefined;
    const spinFirst = Math.random() < 0.5;
    const t0 = await Promise.all(candidates.map(cpuTicks));
    let spunMs = SPIN_MS;
    const spinWindow = async () => {
      const s0 = Date.now();
      await spin(SPIN_MS);
      spunMs = Date.now() - s0;
    };
    await (spinFirst ? spinWindow() : sleep(SPIN_MS));
    const t1 = await Promise.all(candidates.map(cpuTicks));
    await (spinFirst ? sleep(spunMs) : spinWindow());
    const t2 = await Promise.all(candidates.map(cpuTicks));
    const inc = candidates.map((_, i) => {
      const first = (t1[i] ?? 0) - (t0[i] ?? 0);
      const second = (t2[i] ?? 0) - (t1[i] ?? 0);
      return spinFirst ? first - second : second - first;
    });
    candidates.forEach((pid, i) => score.set(pid, (score.get(pid) ?? 0) + inc[i]!));
    const ranked = [...score].filter(([pid]) => candidates.includes(pid)).sort((x, y) => y[1] - x[1]);
    const [best, runnerUp] = [ranked[0], ranked[1]];
    // Another renderer moved by more than noise in one window of this round.
    if (inc.filter((d) => Math.abs(d) >= 3).length > 1) contested = true;
    const clear = best && best[1] >= 6 && best[1] >= 2 * Math.max(0, runnerUp?.[1] ?? 0) + 3;
    if (clear && (!contested || round >= 2)) return best[0];
    // Out of step with any other page that is doing the same.
    await sleep(Math.random() * 80);
  }
  return undefined;
}

/** Shared layout: our own browser context and page, over CDP, in a browser of the parent's browser host. */
export async function openSharedPage(o: OpenOptions & { wsEndpoint: string; browserPid: number | undefined }): Promise<BotPage> {
  let cdp: CdpConnection;
  try {
    cdp = await CdpConnection.connect(o.wsEndpoint, o.timeoutMs);
  } catch (err) {
    throw new DailyClientError('browser_unavailable', `the shared browser did not accept us: ${errorMessage(err)}`, {
      retryable: true,
      cause: err,
    });
  }
  // disposeOnDetach: when this connection goes (close, or the worker killed), Chromium drops the context.
  const { browserContextId } = (await cdp.send('Target.createBrowserContext', { disposeOnDetach: true })) as { browserContextId: string };
  const { targetId } = (await cdp.send('Target.createTarget', { url: 'about:blank', browserContextId })) as { targetId: string };
  const { sessionId } = (await cdp.send('Target.attachToTarget', { targetId, flatten: true })) as { sessionId: string };
  const send = (method: string, params: Record<string, unknown> = {}) => cdp.send(method, params, sessionId);
  let closed = false;
  const crashes: Array<() => void> = [];
  cdp.on('Inspector.targetCrashed', (_p, sid) => {
    if (sid === sessionId) for (const cb of crashes) cb();
  });
  cdp.on('Target.detachedFromTarget', (p) => {
    if (p.sessionId === sessionId) closed = true;
  });
  await Promise.all([send('Page.enable'), send('Runtime.enable'), send('Inspector.enable').catch(() => undefined)]);
  const driver: PageDriver = {
    async evaluate(expression) {
      const r = (await send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true })) as {
        result?: { value?: unknown };
        exceptionDetails?: { text?: string; exception?: { description?: string } };
      };
      if (r.exceptionDetails) throw new Error(r.exceptionDetails.exception?.description ?? r.exceptionDetails.text ?? 'evaluation failed');
      return r.result?.value;
    },
    async exposeEmit(cb) {
      cdp.on('Runtime.bindingCalled', (p, sid) => {
        if (sid === sessionId && p.name === '__pbEmit1' && typeof p.payload === 'string') cb(p.payload);
      });
      await send('Runtime.addBinding', { name: '__pbEmit1' });
    },
    async goto(url, timeoutMs) {
      let off = (): void => undefined;
      const loaded = new Promise<void>((resolve) => (off = cdp.on('Page.loadEventFired', (_p, sid) => sid === sessionId && resolve())));
      let t: NodeJS.Timeout | undefined;
      try {
        const nav = (await send('Page.navigate', { url })) as { errorText?: string };
        if (nav.errorText) throw new Error(`navigation to ${url} failed: ${nav.errorText}`);
        await Promise.race([
          loaded,
          new Promise((_, rej) => (t = setTimeout(() => rej(new Error(`page load timed out after ${timeoutMs} ms`)), timeoutMs))),
        ]);
      } finally {
        clearTimeout(t);
        off();
      }
    },
    onCrash: (cb) => crashes.push(cb),
    onConsole(cb) {
      cdp.on('Runtime.consoleAPICalled', (p, sid) => {
        if (sid !== sessionId) return;
        const args = (p.args as { value?: unknown; description?: string }[] | undefined) ?? [];
        cb(String(p.type), args.map((a) => String(a.value ?? a.description ?? '')).join(' '));
      });
    },
    get closed() {
      return closed || !cdp.connected;
    },
    get browserConnected() {
      return cdp.connected;
    },
  };
  let closing = false;
  let renderer: number | undefined;
  const lost: Array<() => void> = [];
  cdp.onClose(() => {
    closed = true;
    if (!closing) for (const cb of lost) cb();
  });
  return {
    layout: 'shared',
    driver,
    userDataDir: undefined,
    onLost: (cb) => lost.push(cb),
    async identifyRenderer(spin) {
      if (!o.browserPid || renderer !== undefined) return;
      // Several workers start at once (after a browser restart, or a burst), and each looks for its
      // renderer as soon as its page has loaded: a look that comes out ambiguous is tried again a
      // little later, at a random moment, rather than leaving the page's memory uncounted.
      for (let attempt = 0; attempt < IDENTIFY_ATTEMPTS && renderer === undefined && !closed; attempt++) {
        if (attempt > 0) await sleep(250 + Math.random() * 750 * attempt);
        renderer = await rendererFollowing(o.browserPid, spin);
      }
      if (renderer === undefined) o.log.warn("could not tell this page's renderer process; its memory is not counted");
      else o.log.debug({ renderer }, "the page's renderer process");
    },
    memoryBytes: async () => (renderer ? pssBytes(renderer) : 0),
    pids: async () => (renderer ? [renderer] : []),
    async close(stepMs) {
      closing = true;
      await settleWithin(cdp.send('Target.disposeBrowserContext', { browserContextId }), stepMs);
      cdp.close();
    },
  };
}
