/**
 * Reload without restart (docs/operations.md, "Reload"): POST /admin/reload and SIGHUP load the
 * routes and bots again, and new calls get them while live calls finish on theirs.
 *
 *   1. BOTS_DIR is copied to a snapshot (src/workers/parent/bot-snapshot.ts): what is accepted
 *      now is what every worker of this generation loads, whatever BOTS_DIR holds later.
 *   2. The routing file is read from the snapshot (or ROUTES_FILE) and checked: every bot exists.
 *   3. The new generation's workers are started from it — WORKER_IDLE of them plus one per warm
 *      slot — and each must load every routed bot (syntax, `export default defineBot`, `prewarm`).
 *      The warm ones join new warm rooms.
 *   4. The switch, in one tick: the router, the pool's idle workers and the warm slots. The older
 *      idle workers and warm slots are retired only then, so there is no moment without them.
 *
 * Any failure before the switch closes the new workers and leaves everything as it was: the answer
 * (ReloadRefused) and the log line name the bot and the error. One reload at a time.
 */
import type { Logger } from 'pino';
import type { Config } from '../core/config.js';
import { PatchbayError, errorMessage } from '../core/errors.js';
import { resolveBotFile } from '../core/bot-files.js';
import type { WorkerPool } from '../workers/parent/pool.js';
import type { WarmSlots } from '../workers/parent/warm-slots.js';
import type { WorkerHandle } from '../workers/parent/handle.js';
import { pruneSnapshots, snapshotBots } from '../workers/parent/bot-snapshot.js';
import { loadRoutes, RoutesError, type LoadedRoutes, type Route } from './router.js';

export interface ReloadResult {
  /** 1 for the first reload since start-up, and so on. */
  generation: number;
  /** Where this generation's workers load their bots from (the snapshot). */
  botsDir: string;
  routesFile: string | undefined;
  /** Every routed bot → its version (declared, else the hash of its files). */
  bots: Record<string, string>;
  /** From the request to the switch. */
  tookMs: number;
}

/** The answer of POST /admin/reload. */
export interface ReloadAnswer extends ReloadResult {
  replica: string | undefined;
  /** Fleet mode: how many other replicas were listening when the reload was published. */
  published?: number;
}

export interface ReloadStatus {
  generation: number;
  bots: Record<string, string>;
  lastReload?: { at: string; ok: boolean; generation: number; error?: string };
}

/** POST /admin/reload, SIGHUP, /status (src/app/reload.ts builds it). */
export interface ReloadControl {
  /** Reloads this replica; `fleet`: then every other replica too (POST /admin/reload). */
  reload(by: string, fleet: boolean): Promise<ReloadAnswer>;
  status(): ReloadStatus;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** A reload that did not happen: the old routes and bots keep serving. `status`: the HTTP answer. */
export class ReloadRefused extends PatchbayError {
  override name = 'ReloadRefused';
  constructor(
    code: 'reload_in_progress' | 'routes_invalid' | 'bot_load_failed' | 'reload_failed',
    message: string,
    readonly status: 409 | 422 | 503,
    readonly bot?: string,
  ) {
    super(code, message, { retryable: status !== 422 });
  }
}

export interface ReloaderDeps {
  config: Config;
  logger: Logger;
  pool: WorkerPool;
  /** The routes loaded at start-up (undefined when the runtime was given a route function: nothing to reload). */
  initial: LoadedRoutes | undefined;
}

export class BotReloader {
  private routeNow: Route;
  private running: Promise<ReloadResult> | undefined;
  private generationNow = 0;
  private snapshot: string | undefined;
  /** The last reload's result or refusal, for /status. */
  last: { atMs: number; ok: boolean; generation: number; error?: string } | undefined;
  private bots: string[];
  /** Called after each switch (fleet mode publishes the versions in its heartbeat). */
  onReloaded: ((r: ReloadResult) => void) | undefined;
  /** Warm slots, once made (they are made after the dispatcher's router, which is this). */
  warm: WarmSlots | undefined;

  constructor(
    private readonly deps: ReloaderDeps,
    fallback: Route,
  ) {
    this.routeNow = deps.initial?.route ?? fallback;
    this.bots = deps.initial?.bots ?? [];
  }

  /** The router the dispatcher calls: always the current generation's. */
  readonly route: Route = (call) => this.routeNow(call);

  get generation(): number {
    return this.generationNow;
  }

  /** The routed bots' versions as the pool knows them now. */
  versions(): Record<string, string> {
    const v = this.deps.pool.botVersions;
    return Object.fromEntries(this.bots.map((b) => [b, v.of(b) ?? 'missing']));
  }

  /** Loads routes and bots again (see the file's comment). `by`: who asked, for the log. */
  reload(by: string): Promise<ReloadResult> {
    if (!this.deps.initial) {
      return Promise.reject(new ReloadRefused('reload_failed', 'this runtime was given a route function: nothing to reload', 422));
    }
    if (this.running) {
      return Promise.reject(new ReloadRefused('reload_in_progress', 'a reload is already in progress; try again when it is done', 409));
    }
    const p = this.run(by).finally(() => (this.running = undefined));
    this.running = p;
    return p;
  }

  /** Waits for a reload in progress, if any (a fleet message queues behind it). */
  async idle(): Promise<void> {
    await this.running?.catch(() => undefined);
  }

  private async run(by: string): Promise<ReloadResult> {
    const { config, logger, pool } = this.deps;
    const warm = this.warm;
    const startedMs = Date.now();
    const log = logger.child({ component: 'reload', by });
    try {
      const botsDir = snapshotBots(config.bots.dir);
      const routes = this.routesOf(botsDir);
      const preload = [...new Set([...routes.bots, ...pool.workerInit.preloadBots.filter((b) => resolveBotFile(botsDir, b))])];
      const init = { ...pool.workerInit, botsDir, preloadBots: preload };
      const warmN = warm ? warm.target : 0;
      const staged = await pool.stage(init, config.workers.idle + warmN, (w) => this.check(w, routes.bots));
      const slots = warm && warmN > 0 ? await warm.prepare(staged.slice(0, warmN)) : [];
      // The switch: one tick, nothing awaited in between.
      pool.commit(init, staged.slice(slots.length));
      warm?.swap(slots);
      this.routeNow = routes.route;
      this.bots = routes.bots;
      const previous = this.snapshot;
      this.snapshot = botsDir;
      this.generationNow++;
      const result: ReloadResult = {
        generation: this.generationNow,
        botsDir,
        routesFile: routes.file,
        bots: this.versions(),
        tookMs: Date.now() - startedMs,
      };
      this.last = { atMs: Date.now(), ok: true, generation: this.generationNow };
      log.info({ generation: result.generation, bots: result.bots, botsDir, tookMs: result.tookMs }, 'bots reloaded');
      this.prune([botsDir, ...(previous ? [previous] : [])], log);
      this.onReloaded?.(result);
      return result;
    } catch (err) {
      const refused = err instanceof ReloadRefused ? err : new ReloadRefused('reload_failed', errorMessage(err), 503);
      this.last = { atMs: Date.now(), ok: false, generation: this.generationNow, error: refused.message };
      log.error({ err: refused.message, code: refused.code, bot: refused.bot }, 'reload refused; the running bots keep serving');
      throw refused;
    }
  }

  private routesOf(botsDir: string): LoadedRoutes {
    const { config } = this.deps;
    try {
      return loadRoutes({ botsDir, defaultBot: config.bots.defaultBot, routesFile: config.bots.routesFile });
    } catch (err) {
      if (err instanceof RoutesError) throw new ReloadRefused('routes_invalid', err.message, 422);
      throw err;
    }
  }

  /** A staged worker must run every routed bot: the first one it cannot is the refusal. */
  private check(w: WorkerHandle, bots: string[]): void {
    for (const bot of bots) {
      if (w.bots[bot]) continue;
      const why = w.failedBots[bot] ?? `bot "${bot}" was not loaded`;
      throw new ReloadRefused('bot_load_failed', why, 422, bot);
    }
  }

  private prune(inUse: string[], log: Logger): void {
    try {
      pruneSnapshots(this.deps.config.bots.dir, inUse);
    } catch (err) {
      log.warn({ err: errorMessage(err) }, 'old bot snapshots could not be removed');
    }
  }
}
