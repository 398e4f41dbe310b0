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
import { isRecord } from './events.js';
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
  const cdp = await connectShared(o.wsEndpoint, o.timeoutMs);
  const { browserContextId, sessionId } = await openTarget(cdp);
  const page: SharedPage = { cdp, sessionId, closed: false };
  const crashes: Array<() => void> = [];
  cdp.on('Inspector.targetCrashed', (_p, sid) => {
    if (sid === sessionId) for (const cb of crashes) cb();
  });
  cdp.on('Target.detachedFromTarget', (p) => {
    if (p.sessionId === sessionId) page.closed = true;
  });
  await Promise.all([sendTo(page, 'Page.enable'), sendTo(page, 'Runtime.enable'), sendTo(page, 'Inspector.enable').catch(() => undefined)]);
  const driver = cdpDriver(page, crashes);
  let closing = false;
  let renderer: number | undefined;
  const lost: Array<() => void> = [];
  cdp.onClose(() => {
    page.closed = true;
    if (!closing) for (const cb of lost) cb();
  });
  return {
    layout: 'shared',
    driver,
    userDataDir: undefined,
    onLost: (cb) => lost.push(cb),
    async identifyRenderer(spin) {
      if (!o.browserPid || renderer !== undefined) return;
      renderer = await identifyRenderer(o.browserPid, spin, () => page.closed);
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

/**
 * Several workers start at once (after a browser restart, or a burst), and each looks for its
 * renderer as soon as its page has loaded: a look that comes out ambiguous is tried again a
 * little later, at a random moment, rather than leaving the page's memory uncounted.
 */
async function identifyRenderer(
  browserPid: number,
  spin: (ms: number) => Promise<unknown>,
  closed: () => boolean,
): Promise<number | undefined> {
  let renderer: number | undefined;
  for (let attempt = 0; attempt < IDENTIFY_ATTEMPTS && renderer === undefined && !closed(); attempt++) {
    if (attempt > 0) await sleep(250 + Math.random() * 750 * attempt);
    renderer = await rendererFollowing(browserPid, spin);
  }
  return renderer;
}

/** Our page in the shared browser: the CDP connection and the page's session on it. */
interface SharedPage {
  readonly cdp: CdpConnection;
  readonly sessionId: string;
  /** The page's target is gone (detached, or the connection closed). */
  closed: boolean;
}

function textOf(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** A string field of a CDP answer that must be there. */
function requiredText(answer: Record<string, unknown>, key: string, method: string): string {
  const v = textOf(answer[key]);
  if (v === undefined) throw new DailyClientError('browser_unavailable', `${method}: no ${key} in the answer`, { retryable: true });
  return v;
}

async function connectShared(wsEndpoint: string, timeoutMs: number): Promise<CdpConnection> {
  try {
    return await CdpConnection.connect(wsEndpoint, timeoutMs);
  } catch (err) {
    throw new DailyClientError('browser_unavailable', `the shared browser did not accept us: ${errorMessage(err)}`, {
      retryable: true,
      cause: err,
    });
  }
}

/** A browser context of our own with one blank page, and our session attached to it. */
async function openTarget(cdp: CdpConnection): Promise<{ browserContextId: string; sessionId: string }> {
  // disposeOnDetach: when this connection goes (close, or the worker killed), Chromium drops the context.
  const context = await cdp.send('Target.createBrowserContext', { disposeOnDetach: true });
  const browserContextId = requiredText(context, 'browserContextId', 'Target.createBrowserContext');
  const target = await cdp.send('Target.createTarget', { url: 'about:blank', browserContextId });
  const targetId = requiredText(target, 'targetId', 'Target.createTarget');
  const attached = await cdp.send('Target.attachToTarget', { targetId, flatten: true });
  return { browserContextId, sessionId: requiredText(attached, 'sessionId', 'Target.attachToTarget') };
}

function sendTo(page: SharedPage, method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  return page.cdp.send(method, params, page.sessionId);
}

function cdpDriver(page: SharedPage, crashes: Array<() => void>): PageDriver {
  const { cdp, sessionId } = page;
  return {
    evaluate: (expression) => evaluateIn(page, expression),
    async exposeEmit(cb) {
      cdp.on('Runtime.bindingCalled', (p, sid) => {
        if (sid === sessionId && p.name === '__pbEmit1' && typeof p.payload === 'string') cb(p.payload);
      });
      await sendTo(page, 'Runtime.addBinding', { name: '__pbEmit1' });
    },
    goto: (url, timeoutMs) => navigate(page, url, timeoutMs),
    onCrash: (cb) => crashes.push(cb),
    onConsole(cb) {
      cdp.on('Runtime.consoleAPICalled', (p, sid) => {
        if (sid !== sessionId) return;
        const args: unknown[] = Array.isArray(p.args) ? p.args : [];
        cb(String(p.type), args.map((a) => (isRecord(a) ? String(a.value ?? a.description ?? '') : '')).join(' '));
      });
    },
    get closed() {
      return page.closed || !cdp.connected;
    },
    get browserConnected() {
      return cdp.connected;
    },
  };
}

async function evaluateIn(page: SharedPage, expression: string): Promise<unknown> {
  const r = await sendTo(page, 'Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true });
  const ex = r.exceptionDetails;
  if (isRecord(ex)) {
    const description = isRecord(ex.exception) ? textOf(ex.exception.description) : undefined;
    throw new Error(description ?? textOf(ex.text) ?? 'evaluation failed');
  }
  return isRecord(r.result) ? r.result.value : undefined;
}

async function navigate(page: SharedPage, url: string, timeoutMs: number): Promise<void> {
  const { cdp, sessionId } = page;
  let off = (): void => undefined;
  const loaded = new Promise<void>((resolve) => (off = cdp.on('Page.loadEventFired', (_p, sid) => sid === sessionId && resolve())));
  let t: NodeJS.Timeout | undefined;
  try {
    const nav = await sendTo(page, 'Page.navigate', { url });
    const errorText = textOf(nav.errorText);
    if (errorText) throw new Error(`navigation to ${url} failed: ${errorText}`);
    await Promise.race([
      loaded,
      new Promise((_, rej) => (t = setTimeout(() => rej(new Error(`page load timed out after ${timeoutMs} ms`)), timeoutMs))),
    ]);
  } finally {
    clearTimeout(t);
    off();
  }
}
