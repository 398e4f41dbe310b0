/**
 * The replica's browser host (parent side, CALL_CLIENT=daily with BROWSER_LAYOUT=shared): a few
 * headless Chromium instances, each with its DevTools endpoint on 127.0.0.1 (a random port),
 * shared by up to `botsPerBrowser` worker processes. A worker is leased a browser when it is
 * forked (least loaded first), connects over CDP (src/daily/browser/cdp.ts: no Playwright in the
 * worker) and makes its own browser context (`disposeOnDetach`) and page; the lease ends when the
 * worker process exits.
 *
 * Browsers die with the service: each is launched with `--remote-debugging-pipe` on two pipes only
 * this process holds, so when it dies (kill -9 included) Chromium sees the pipe close and exits;
 * `start()` kills whatever an earlier process of ours left all the same (chromium.ts).
 *
 * Supervision: a browser whose process exits is restarted (backing off when it keeps dying);
 * one that stops answering a CDP probe (`SystemInfo.getProcessInfo`) for `healthTimeoutMs` is
 * SIGKILLed and restarted. Either way its connected workers see their connection drop and end
 * their calls with `browser_lost`; other browsers' calls are untouched. Chromium disposes a
 * disconnected (e.g. SIGKILLed) worker's context by itself.
 *
 * The endpoint is only on loopback, and pages cannot read it (DevTools' HTTP answers carry no CORS
 * headers and its WebSocket refuses page origins); any process in the pod could use it, as it could
 * the workers' own IPC: the pod is the trust boundary.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { CdpConnection } from './cdp.js';
import {
  assertChromiumExecutable,
  CHROMIUM_FLAGS,
  HOST_CHROMIUM_FLAGS,
  killProcessesWithArg,
  sweepOrphanBrowsers,
  USER_DATA_DIR_PREFIX,
} from './chromium.js';
import { errorMessage } from '../../core/errors.js';

export interface BrowserHostOptions {
  chromiumPath: string;
  /** Browsers kept running. */
  browsers: number;
  /** Workers (pages) per browser before the host prefers another one. */
  botsPerBrowser: number;
  logger: Logger;
  /** How often each browser is probed. Default 2 000. */
  healthIntervalMs?: number;
  /** A browser that has not answered a probe for this long is killed and restarted. Default 5 000. */
  healthTimeoutMs?: number;
  /** Launch timeout. Default 20 000. */
  launchTimeoutMs?: number;
  extraChromiumArgs?: string[];
}

export type BrowserState = 'starting' | 'up' | 'down' | 'closed';

export interface BrowserStats {
  id: number;
  state: BrowserState;
  pid: number | undefined;
  /** Workers leased to this browser now (idle and busy). */
  bots: number;
  restarts: number;
  /** Time the last (re)start took, fork to answering. */
  lastStartMs: number | undefined;
  /** Chromium processes of this browser at the last probe (browser, renderers, utilities). */
  processes: number;
}

export interface BrowserHostStats {
  botsPerBrowser: number;
  up: number;
  restarts: number;
  browsers: BrowserStats[];
}

/** What a worker is told in its init; `release()` is called by the pool when the worker has exited. */
export interface BrowserLease {
  browserId: number;
  wsEndpoint: string;
  browserPid: number;
  release(): void;
}

interface Slot {
  id: number;
  state: BrowserState;
  generation: number;
  proc: ChildProcess | undefined;
  userDataDir: string | undefined;
  cdp: CdpConnection | undefined;
  wsEndpoint: string | undefined;
  pid: number | undefined;
  bots: number;
  restarts: number;
  failuresInRow: number;
  lastStartMs: number | undefined;
  lastAnswerAtMs: number;
  processes: number;
  timer: NodeJS.Timeout | undefined;
}

export class BrowserHost {
  private readonly slots: Slot[] = [];
  private closed = false;
  private readonly log: Logger;
  private readonly healthIntervalMs: number;
  private readonly healthTimeoutMs: number;
  /** Called after a browser went down (crash, hang, kill) with the reason; for metrics and tests. */
  onBrowserLost: ((id: number, reason: string) => void) | undefined;

  constructor(private readonly opts: BrowserHostOptions) {
    this.log = opts.logger.child({ component: 'browser-host' });
    this.healthIntervalMs = opts.healthIntervalMs ?? 2_000;
    this.healthTimeoutMs = opts.healthTimeoutMs ?? 5_000;
    for (let id = 0; id < Math.max(1, opts.browsers); id++) {
      this.slots.push({
        id,
        state: 'down',
        generation: 0,
        proc: undefined,
        userDataDir: undefined,
        cdp: undefined,
        wsEndpoint: undefined,
        pid: undefined,
        bots: 0,
        restarts: 0,
        failuresInRow: 0,
        lastStartMs: undefined,
        lastAnswerAtMs: Date.now(),
        processes: 0,
        timer: undefined,
      });
    }
  }

  /**
   * Launches every browser; resolves once each is up or has failed its first launch (it is retried).
   * A Chromium that is not there at all is a start-up error (ChromiumMissingError), not a retry loop.
   */
  async start(): Promise<void> {
    await assertChromiumExecutable(this.opts.chromiumPath);
    // Browsers of an earlier process of ours that died without closing them (before they were
    // tied to its pipe, or a pipe Chromium did not honour): killed, their dirs removed.
    const swept = await sweepOrphanBrowsers();
    if (swept.killed > 0 || swept.removed.length > 0)
      this.log.warn({ processes: swept.killed, dirs: swept.removed.length }, 'killed Chromium processes left by an earlier process');
    await Promise.all(this.slots.map((s) => this.launch(s)));
  }

  /** The least-loaded running browser with room (or, when all are full, the least-loaded running one). */
  lease(): BrowserLease | undefined {
    const up = this.slots.filter((s) => s.state === 'up' && s.wsEndpoint && s.pid);
    if (up.length === 0) return undefined;
    const best = up.reduce((a, b) => (b.bots < a.bots ? b : a));
    if (best.bots >= this.opts.botsPerBrowser)
      this.log.warn({ browser: best.id, bots: best.bots }, 'every browser is full; over-filling the least loaded one');
    best.bots++;
    const gen = best.generation;
    let released = false;
    return {
      browserId: best.id,
      wsEndpoint: best.wsEndpoint!,
      browserPid: best.pid!,
      release: () => {
        if (released) return;
        released = true;
        // A restarted browser starts from zero: leases of the old one no longer count.
        if (best.generation === gen && best.bots > 0) best.bots--;
      },
    };
  }

  stats(): BrowserHostStats {
    return {
      botsPerBrowser: this.opts.botsPerBrowser,
      up: this.slots.filter((s) => s.state === 'up').length,
      restarts: this.slots.reduce((n, s) => n + s.restarts, 0),
      browsers: this.slots.map((s) => ({
        id: s.id,
        state: s.state,
        pid: s.pid,
        bots: s.bots,
        restarts: s.restarts,
        lastStartMs: s.lastStartMs,
        processes: s.processes,
      })),
    };
  }

  /** Browser `id`'s endpoint (tests, benchmarks). Not in stats(): whoever has it can drive the browser. */
  wsEndpointOf(id: number): string | undefined {
    return this.slots[id]?.wsEndpoint;
  }

  /** Resolves when browser `id` is up again (tests, benchmarks). */
  async waitUp(id: number, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.slots[id]?.state !== 'up') {
      if (Date.now() > deadline) throw new Error(`browser ${id} not up within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** SIGKILLs browser `id` (tests, benchmarks, and the hang detector). */
  kill(id: number, reason = 'killed'): void {
    const s = this.slots[id];
    if (!s?.pid || s.state !== 'up') return;
    this.log.error({ browser: id, pid: s.pid, reason }, 'killing browser');
    try {
      process.kill(s.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      this.slots.map(async (s) => {
        clearInterval(s.timer);
        s.state = 'closed';
        await this.stop(s);
      }),
    );
  }

  /** Ends a browser for good: its connection, its process tree, its user-data dir. */
  private async stop(s: Slot): Promise<void> {
    s.cdp?.close();
    const proc = s.proc;
    const dir = s.userDataDir;
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 2_000).unref())]);
    }
    if (dir) {
      await killProcessesWithArg(dir);
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  private async launch(s: Slot): Promise<void> {
    if (this.closed) return;
    s.state = 'starting';
    const t0 = Date.now();
    const timeoutMs = this.opts.launchTimeoutMs ?? 20_000;
    let proc: ChildProcess;
    try {
      const dir = await mkdtemp(path.join(os.tmpdir(), `${USER_DATA_DIR_PREFIX}${process.pid}-host${s.id}-`));
      s.userDataDir = dir;
      proc = spawn(
        this.opts.chromiumPath,
        [
          ...CHROMIUM_FLAGS,
          ...HOST_CHROMIUM_FLAGS,
          `--user-data-dir=${dir}`,
          '--remote-debugging-port=0',
          // DevTools also on fds 3 and 4, which only this process holds: when it dies (kill -9
          // included) the pipe closes and Chromium exits, taking its renderers with it.
          '--remote-debugging-pipe',
          ...(this.opts.extraChromiumArgs ?? []),
          'about:blank',
        ],
        { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] },
      );
      s.proc = proc;
      // Nothing is sent on the pipe; what Chromium writes there is read and dropped.
      for (const fd of [proc.stdio[3], proc.stdio[4]]) fd?.on('error', () => undefined);
      proc.stdio[4]?.on('data', () => undefined);
      s.pid = proc.pid;
      const stderr: string[] = [];
      proc.stderr?.on('data', (d: Buffer) => stderr.length < 50 && stderr.push(String(d)));
      proc.once('exit', (code, signal) => this.onDown(s, proc, `browser process exited (${signal ?? `code ${code}`})`));
      const spawned = new Promise<never>((_, reject) => proc.once('error', (err) => reject(err)));
      spawned.catch(() => undefined);
      s.wsEndpoint = await Promise.race([this.devToolsEndpoint(dir, proc, timeoutMs, stderr), spawned]);
      s.cdp = await CdpConnection.connect(s.wsEndpoint, timeoutMs);
      await this.probeOnce(s);
    } catch (err) {
      s.state = 'down';
      s.failuresInRow++;
      this.log.error({ browser: s.id, err: errorMessage(err), failures: s.failuresInRow }, 'browser failed to start');
      await this.stop(s);
      this.scheduleRestart(s);
      return;
    }
    if (this.closed) {
      await this.stop(s);
      return;
    }
    s.generation++;
    s.bots = 0;
    s.failuresInRow = 0;
    s.lastStartMs = Date.now() - t0;
    s.lastAnswerAtMs = Date.now();
    s.state = 'up';
    this.log.info({ browser: s.id, pid: s.pid, startMs: s.lastStartMs }, 'browser up');
    s.timer = setInterval(() => void this.health(s, proc), this.healthIntervalMs);
    s.timer.unref();
  }

  /** Chromium writes its DevTools port and browser path to `DevToolsActivePort` in its user-data dir. */
  private async devToolsEndpoint(dir: string, proc: ChildProcess, timeoutMs: number, stderr: string[]): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const txt = await readFile(path.join(dir, 'DevToolsActivePort'), 'utf8').catch(() => '');
      const [port, p] = txt.split('\n');
      if (port && p && /^\d+$/.test(port.trim())) return `ws://127.0.0.1:${port.trim()}${p.trim()}`;
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`Chromium exited at start: ${stderr.join('').slice(0, 400)}`);
      if (Date.now() > deadline) throw new Error(`Chromium gave no DevTools endpoint within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private async probeOnce(s: Slot): Promise<void> {
    const info = (await s.cdp!.send('SystemInfo.getProcessInfo')) as { processInfo?: unknown[] };
    s.processes = info.processInfo?.length ?? 0;
    s.lastAnswerAtMs = Date.now();
  }

  private async health(s: Slot, proc: ChildProcess): Promise<void> {
    if (s.proc !== proc || s.state !== 'up') return;
    if (Date.now() - s.lastAnswerAtMs > this.healthTimeoutMs) {
      this.log.error({ browser: s.id, pid: s.pid, healthTimeoutMs: this.healthTimeoutMs }, 'browser stopped answering; killing it');
      this.kill(s.id, 'hung');
      return;
    }
    // Answers update lastAnswerAtMs; a probe that never returns is caught by the check above.
    await this.probeOnce(s).catch(() => undefined);
  }

  private onDown(s: Slot, proc: ChildProcess, reason: string): void {
    if (s.proc !== proc) return;
    clearInterval(s.timer);
    s.proc = undefined;
    s.wsEndpoint = undefined;
    s.cdp?.close();
    s.cdp = undefined;
    // What the browser leaves (its zygotes and renderers exit with it; the dir stays): cleaned up.
    const dir = s.userDataDir;
    s.userDataDir = undefined;
    if (dir)
      void killProcessesWithArg(dir)
        .then(() => rm(dir, { recursive: true, force: true }))
        .catch(() => undefined);
    if (this.closed || s.state === 'closed') return;
    const wasUp = s.state === 'up';
    s.state = 'down';
    s.pid = undefined;
    s.bots = 0;
    s.generation++;
    if (!wasUp) return; // a failed launch restarts itself
    s.restarts++;
    this.log.error({ browser: s.id, reason, restarts: s.restarts }, 'browser lost; restarting it');
    this.onBrowserLost?.(s.id, reason);
    this.scheduleRestart(s);
  }

  private scheduleRestart(s: Slot): void {
    if (this.closed) return;
    const delay = s.failuresInRow === 0 ? 0 : Math.min(5_000, 200 * 2 ** Math.min(s.failuresInRow, 5));
    setTimeout(() => void this.launch(s), delay).unref();
  }
}
