/**
 * A pool of pre-started, one-shot workers. `acquire()` hands out a warm (ready) worker when
 * there is one and starts a replacement behind it (for a call: once its caller has left hold,
 * PoolOptions.refillDeferMaxMs); only when the pool is empty does a call wait
 * for a cold start. Workers that die while idle are replaced (with backoff when they keep dying).
 */
import os from 'node:os';
import type { Logger } from 'pino';
import { PatchbayError, asError } from '../../core/errors.js';
import type { ChildMessage, WorkerInit } from '../protocol.js';
import type { BrowserLease } from '../../daily/browser/host.js';
import { WorkerHandle, type SupervisionOptions } from './handle.js';
import { BotVersions } from './bot-versions.js';

export interface PoolOptions {
  init: WorkerInit;
  idle: number;
  /**
   * A worker handed out to a call (`acquire(signal, { forCall: true })`) is replaced once its
   * caller has left hold (the worker's `connected` stage, or its exit), at the latest this long
   * after the hand-out; 0 (the default) replaces it at once. A worker's start-up takes most of a
   * core for a while: measured on the cold path (issue 27), replacing each worker of a burst as it
   * was handed out spent ¾ of the bench's CPU during the callers' hold on the replacements. A call
   * that finds no idle worker still gets one started at once (a waiter is never deferred).
   */
  refillDeferMaxMs?: number;
  supervision: SupervisionOptions;
  logger: Logger;
  /**
   * Workers starting at once (default: CPU count, at least 2). A burst of cold starts beyond the
   * cores only slows every one of them down, up to WORKER_INIT_TIMEOUT_MS; in turn, the first
   * waiters are served first.
   */
  maxStarting?: number;
  /** BROWSER_LAYOUT=shared: leases each new worker a browser (released when it exits); no lease, no spawn (retried). */
  leaseBrowser?: () => BrowserLease | undefined;
}

export interface PoolStats {
  idle: number;
  starting: number;
  busy: number;
  coldStarts: number;
  warmStarts: number;
}

export class WorkerPool {
  private readonly idle: WorkerHandle[] = [];
  private readonly starting = new Set<WorkerHandle>();
  private readonly busy = new Set<WorkerHandle>();
  private readonly waiters: Array<{ resolve: (w: WorkerHandle) => void; reject: (e: Error) => void }> = [];
  private closed = false;
  /** Draining: no new idle workers are started (a call that still needs one gets a cold start). */
  private refillPaused = false;
  private failures = 0;
  private refillTimer: NodeJS.Timeout | undefined;
  /** Handed-out workers whose replacement waits for their caller to leave hold (PoolOptions.refillDeferMaxMs). */
  private readonly owed = new Map<WorkerHandle, () => void>();
  coldStarts = 0;
  warmStarts = 0;
  /** Called with each worker's start time (fork → ready), for metrics. */
  onWorkerReady: ((w: WorkerHandle, ms: number) => void) | undefined;
  /** The bots' versions, as this pool's workers loaded them (and their files hash now). */
  readonly botVersions: BotVersions;
  /** What new workers start with: replaced by a reload (`commit`). */
  private init: WorkerInit;
  /** Bumped by each reload (`commit`); each worker's generation (older idle workers are retired, never handed out). */
  private generation = 0;
  private readonly generationOf = new WeakMap<WorkerHandle, number>();

  constructor(private readonly opts: PoolOptions) {
    this.init = opts.init;
    this.botVersions = new BotVersions(opts.init.botsDir);
  }

  /** The init new workers get now (its botsDir: BOTS_DIR, or the last reload's snapshot). */
  get workerInit(): WorkerInit {
    return this.init;
  }

  /**
   * A reload's first step: `n` workers started with `init`, outside the pool, each ready (or the
   * first failure: every one of them closed, the error thrown). Hand them to `commit` (or close them).
   */
  async stage(init: WorkerInit, n: number, check: (w: WorkerHandle) => void): Promise<WorkerHandle[]> {
    const ws = Array.from({ length: Math.max(1, n) }, () => this.fork(init));
    try {
      await Promise.all(
        ws.map(
          (w) =>
            new Promise<void>((resolve, reject) => {
              w.once('ready', () => {
                try {
                  check(w);
                  resolve();
                } catch (err) {
                  reject(asError(err));
                }
              });
              w.once('exit', (code, signal) =>
                reject(
                  new PatchbayError('worker_start_failed', `a worker of the new bots exited while starting (${signal ?? `code ${code}`})`, {
                    retryable: true,
                  }),
                ),
              );
            }),
        ),
      );
      return ws;
    } catch (err) {
      await Promise.all(ws.map((w) => w.close()));
      throw err;
    }
  }

  /**
   * A reload's switch: new workers start with `init`; `staged` (ready, of that init) become the idle
   * workers and the older idle ones are retired after them (no moment without an idle worker).
   * Older workers still starting are closed when ready; busy ones finish their calls.
   */
  commit(init: WorkerInit, staged: WorkerHandle[]): void {
    this.init = init;
    this.generation++;
    this.botVersions.setDir(init.botsDir);
    const old = this.idle.splice(0);
    for (const w of staged) {
      this.generationOf.set(w, this.generation);
      for (const [bot, info] of Object.entries(w.bots)) this.botVersions.learn(bot, info);
      this.watch(w);
      if (!this.closed) this.idle.push(w);
      else void w.close();
    }
    for (const w of old) void w.close();
    this.refill();
  }

  start(): void {
    this.refill();
  }

  stats(): PoolStats {
    return {
      idle: this.idle.length,
      starting: this.starting.size,
      busy: this.busy.size,
      coldStarts: this.coldStarts,
      warmStarts: this.warmStarts,
    };
  }

  /** A ready worker, marked busy. Rejects when the pool is closed or a cold start fails. */
  async acquire(signal?: AbortSignal, opts: { forCall?: boolean } = {}): Promise<WorkerHandle> {
    if (this.closed) throw new PatchbayError('pool_closed', 'worker pool is closed');
    const warm = this.idle.shift();
    if (warm) {
      this.warmStarts++;
      this.markBusy(warm);
      if (opts.forCall) this.owe(warm);
      this.refill();
      return warm;
    }
    this.coldStarts++;
    // Make sure a worker is on its way for this waiter, then wait for the first ready one.
    const w = await new Promise<WorkerHandle>((resolve, reject) => {
      // The abort listener goes once the waiter is settled: the signal (the dispatcher's) outlives many calls.
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new PatchbayError('aborted', 'gave up waiting for a worker', { retryable: true }));
      };
      const waiter = {
        resolve: (w: WorkerHandle) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(w);
        },
        reject: (e: Error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      this.waiters.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.refill();
    });
    this.refill();
    return w;
  }

  private markBusy(w: WorkerHandle): void {
    this.busy.add(w);
    void w.exited.then(() => {
      this.busy.delete(w);
    });
  }

  /** `w`'s replacement waits until its caller is connected, its process is gone, or refillDeferMaxMs. */
  private owe(w: WorkerHandle): void {
    const maxMs = this.opts.refillDeferMaxMs ?? 0;
    if (maxMs <= 0) return;
    const settle = () => {
      if (!this.owed.delete(w)) return;
      clearTimeout(timer);
      w.off('message', onMessage);
      this.refill();
    };
    const onMessage = (m: ChildMessage) => {
      if ((m.type === 'stage' && m.stage === 'connected') || m.type === 'done') settle();
    };
    const timer = setTimeout(settle, maxMs);
    timer.unref();
    w.on('message', onMessage);
    void w.exited.then(settle);
    this.owed.set(w, settle);
  }

  /** Workers started at once (PoolOptions.maxStarting). */
  get startConcurrency(): number {
    return this.opts.maxStarting ?? Math.max(2, os.availableParallelism());
  }

  /** Keep `idle` warm workers plus one per waiter on the way. */
  private refill(): void {
    if (this.closed) return;
    const want = (this.refillPaused ? 0 : Math.max(0, this.opts.idle - this.owed.size)) + this.waiters.length;
    const maxStarting = this.startConcurrency;
    while (this.idle.length + this.starting.size < want && this.starting.size < maxStarting) if (!this.spawn()) break;
  }

  private spawn(): boolean {
    const lease = this.opts.leaseBrowser?.();
    if (this.opts.leaseBrowser && !lease) {
      // No browser up (one is restarting): try again shortly; waiters keep waiting.
      clearTimeout(this.refillTimer);
      this.refillTimer = setTimeout(() => this.refill(), 250);
      this.refillTimer.unref();
      return false;
    }
    const w = this.fork(this.init, lease);
    this.generationOf.set(w, this.generation);
    this.starting.add(w);
    this.watch(w);
    w.once('ready', () => {
      this.starting.delete(w);
      this.failures = 0;
      this.onWorkerReady?.(w, (w.readyAtMs ?? Date.now()) - w.startedAtMs);
      if (this.closed || !this.isCurrent(w)) {
        // Of a generation a reload replaced since it was started: never handed out.
        void w.close();
        this.refill();
        return;
      }
      for (const [bot, info] of Object.entries(w.bots)) this.botVersions.learn(bot, info);
      const waiter = this.waiters.shift();
      if (waiter) {
        this.markBusy(w);
        waiter.resolve(w);
      } else {
        this.idle.push(w);
      }
      this.refill();
    });
    w.once('exit', (code, signal) => {
      const wasStarting = this.starting.delete(w);
      const i = this.idle.indexOf(w);
      if (i >= 0) this.idle.splice(i, 1);
      if (this.closed) return;
      if (wasStarting || i >= 0) {
        // Died before or without a call: replace it, backing off if this keeps happening.
        this.failures++;
        this.opts.logger.warn({ pid: w.pid, code, signal, failures: this.failures }, 'idle worker exited; replacing it');
        if (wasStarting && this.failures >= 3 && this.waiters.length > 0) {
          const err = new PatchbayError('worker_start_failed', `workers fail to start (${this.failures} in a row)`, { retryable: true });
          for (const waiter of this.waiters.splice(0)) waiter.reject(err);
        }
        const delay = Math.min(5_000, 100 * 2 ** Math.min(this.failures, 6));
        clearTimeout(this.refillTimer);
        this.refillTimer = setTimeout(() => this.refill(), this.failures > 1 ? delay : 0);
        this.refillTimer.unref();
      }
    });
    return true;
  }

  /** A worker process of `init` (with a browser lease when the pool has one): not yet counted anywhere. */
  private fork(init: WorkerInit, lease = this.opts.leaseBrowser?.()): WorkerHandle {
    const withBrowser = lease ? { ...init, browser: { wsEndpoint: lease.wsEndpoint, pid: lease.browserPid } } : init;
    const w = new WorkerHandle(withBrowser, this.opts.supervision, this.opts.logger);
    if (lease) void w.exited.then(() => lease.release());
    return w;
  }

  private isCurrent(w: WorkerHandle): boolean {
    return this.generationOf.get(w) === this.generation;
  }

  /** The versions a worker's calls really ran. */
  private watch(w: WorkerHandle): void {
    w.on('message', (m) => {
      if (m.type === 'bot-version' && this.isCurrent(w)) this.botVersions.learn(m.bot, { version: m.version, hash: m.hash });
    });
  }

  /** Stop keeping idle workers warm (drain: no new call will need them). Waiting calls still get one. */
  pauseRefill(): void {
    this.refillPaused = true;
  }

  /** Stops idle and starting workers (busy ones belong to their calls). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.refillTimer);
    for (const settle of [...this.owed.values()]) settle();
    const err = new PatchbayError('pool_closed', 'worker pool is closed');
    for (const waiter of this.waiters.splice(0)) waiter.reject(err);
    const all = [...this.idle.splice(0), ...this.starting];
    this.starting.clear();
    await Promise.all(all.map((w) => w.close()));
  }

  /** Every live worker (idle, starting, busy): for shutdown and leak checks. */
  all(): WorkerHandle[] {
    return [...this.idle, ...this.starting, ...this.busy];
  }
}
