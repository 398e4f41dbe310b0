/**
 * The parent's side of one worker process: fork, init, supervision (init timeout, ping/pong,
 * memory limit), the call's messages, and reaping. `result` settles exactly once per worker
 * that was given a call, with the worker's own outcome or the one the supervisor decided.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { priorityOf } from '../../daily/rate-limit.js';
import type { RestRateLimit } from '../../daily/rest.js';
import { workerEnv } from '../../core/config.js';
import type { Outcome } from '../../core/outcome.js';
import {
  isChildMessage,
  type BotVersionInfo,
  type CallAssignment,
  type ChildMessage,
  type ParentMessage,
  type WorkerInit,
} from '../protocol.js';
import { errorMessage } from '../../core/errors.js';

/** A ping timer running this much later than its interval: this process stalled. */
const STALL_GRACE_MS = 1_000;

export interface SupervisionOptions {
  initTimeoutMs: number;
  pingIntervalMs: number;
  pingTimeoutMs: number;
  memoryWarnMb: number;
  memoryLimitMb: number;
  closeTimeoutMs: number;
  /** Added to the worker's nice value (lower CPU priority than the server's webhook answers). */
  nice?: number;
  /** A worker handed a call must answer a ping within this (a hung idle worker is killed at once). */
  startAckTimeoutMs?: number;
  /** The worker's own Daily requests (pinlessCallUpdate) wait for this limiter (the fleet's, in fleet mode). */
  rateLimit?: RestRateLimit;
}

/** Default of `startAckTimeoutMs`: an IPC round trip takes milliseconds, even on a loaded machine. */
export const START_ACK_TIMEOUT_MS = 2_500;

export type WorkerState = 'starting' | 'idle' | 'busy' | 'closing' | 'exited';

export interface WorkerResult {
  outcome: Outcome;
  detail?: string;
  /** `worker`: its own `done`; `supervisor`: decided here (it died, was killed, or exited after a hang-up request). */
  by: 'worker' | 'supervisor';
}

/** Where the worker entry lives: the .ts source under tsx, the compiled .js otherwise. */
export function workerEntry(): { file: string; execArgv: string[] } {
  const here = import.meta.url;
  const isTs = here.endsWith('.ts');
  const file = fileURLToPath(new URL(`../child/main.${isTs ? 'ts' : 'js'}`, here));
  return { file, execArgv: isTs ? ['--import', 'tsx'] : [] };
}

export interface WorkerHandleEvents {
  ready: [];
  message: [ChildMessage];
  exit: [number | null, NodeJS.Signals | null];
}

export class WorkerHandle extends EventEmitter<WorkerHandleEvents> {
  readonly child: ChildProcess;
  readonly pid: number;
  state: WorkerState = 'starting';
  readonly startedAtMs = Date.now();
  readyAtMs: number | undefined;
  prepareMs: number | undefined;
  /** The versions of the bots it preloaded (from its `ready`). */
  bots: Record<string, BotVersionInfo> = {};
  /** The preloaded bots it cannot run, and why (from its `ready`). */
  failedBots: Record<string, string> = {};
  call: CallAssignment | undefined;
  lastRssBytes = 0;

  /** Settles when the process has exited (always). */
  readonly exited: Promise<void>;
  /** Settles with the call's outcome once the worker has a call and it ended (or the worker died). */
  readonly result: Promise<WorkerResult>;

  private resolveResult!: (r: WorkerResult) => void;
  private settled: WorkerResult | undefined;
  private pendingOutcome: WorkerResult | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private initTimer: NodeJS.Timeout | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  private ackTimer: NodeJS.Timeout | undefined;
  private lastPongAtMs = Date.now();
  /** When the ping timer last ran: a late run means this process stalled, not the worker. */
  private lastPingTickAtMs = Date.now();
  private pingSeq = 0;
  private memoryWarned = false;
  private readonly log: Logger;
  /** Rate grants the worker holds (released on its `rate-release`, or when it exits). */
  private readonly rateGrants = new Map<number, (() => void) | void>();
  private readonly rateStop = new AbortController();

  constructor(
    init: WorkerInit,
    private readonly sup: SupervisionOptions,
    logger: Logger,
  ) {
    super();
    const entry = workerEntry();
    this.child = fork(entry.file, [], {
      execArgv: entry.execArgv,
      // No secret in a worker's environment: its config comes in the init message.
      env: workerEnv(),
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.pid = this.child.pid ?? -1;
    this.log = logger.child({ pid: this.pid });
    if (sup.nice && this.pid > 0) {
      try {
        os.setPriority(this.pid, Math.min(19, os.getPriority(this.pid) + sup.nice));
      } catch (err) {
        this.log.debug({ err: errorMessage(err) }, 'could not lower the worker priority');
      }
    }
    this.result = new Promise((r) => (this.resolveResult = r));
    // The result is settled once the process has exited AND its IPC channel is drained
    // ('disconnect'): messages it sent just before dying (a `forward_sent` stage) still count, so a
    // caller already forwarded is never treated as still on hold (and retried) on a busy machine.
    this.exited = new Promise((resolve) => {
      let exit: [number | null, NodeJS.Signals | null] | undefined;
      let drained = !this.child.connected;
      let done = false;
      const finish = () => {
        if (done || !exit || !drained) return;
        done = true;
        this.onExit(...exit);
        resolve();
      };
      this.child.once('disconnect', () => {
        drained = true;
        finish();
      });
      this.child.once('exit', (code, signal) => {
        exit = [code, signal];
        // A channel that never reports its end does not hold the worker's result forever.
        setTimeout(() => {
          drained = true;
          finish();
        }, 1_000).unref();
        finish();
      });
    });
    this.child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE' || err.code === 'ERR_IPC_CHANNEL_CLOSED') this.log.debug({ err: err.message }, 'worker IPC channel closed');
      else this.log.error({ err }, 'worker process error');
    });
    this.child.on('message', (m: unknown) => {
      if (isChildMessage(m)) this.onMessage(m);
    });
    this.initTimer = setTimeout(() => {
      if (this.state === 'starting') {
        this.log.error({ initTimeoutMs: sup.initTimeoutMs }, 'worker did not become ready in time; killing it');
        this.kill('SIGKILL');
      }
    }, sup.initTimeoutMs);
    this.send({ type: 'init', init });
    this.pingTimer = setInterval(() => this.ping(), sup.pingIntervalMs);
    this.pingTimer.unref();
  }

  send(msg: ParentMessage): boolean {
    if (!this.child.connected) return false;
    try {
      // A worker that has just exited makes the write fail with EPIPE: expected, and its exit is handled.
      return this.child.send(msg, (err) => {
        if (err) this.log.debug({ err: err.message, type: msg.type }, 'message to an exiting worker not delivered');
      });
    } catch {
      return false;
    }
  }

  /** Hands the call to this (idle) worker. */
  start(call: CallAssignment): void {
    if (this.state !== 'idle') throw new Error(`worker ${this.pid} is ${this.state}, not idle`);
    this.call = call;
    this.state = 'busy';
    this.send({ type: 'start', call });
    // A hung idle worker (stopped, wedged event loop) is noticed now, not after WORKER_PING_TIMEOUT_MS.
    const ackMs = this.sup.startAckTimeoutMs ?? START_ACK_TIMEOUT_MS;
    const seq = ++this.pingSeq;
    this.send({ type: 'ping', seq });
    this.ackTimer = setTimeout(() => {
      if (this.state !== 'busy') return;
      this.log.error({ ackMs }, 'worker handed a call did not answer; killing it');
      this.kill('SIGKILL', {
        outcome: 'worker_crashed',
        detail: `worker did not acknowledge the call within ${ackMs} ms`,
        by: 'supervisor',
      });
    }, ackMs);
    this.ackTimer.unref();
  }

  /** Ask the worker to end its call with `reason`; the worker answers with `done`. */
  hangup(reason: Outcome): void {
    this.pendingOutcome ??= { outcome: reason, detail: 'ended by the service', by: 'supervisor' };
    this.send({ type: 'hangup', reason });
  }

  /**
   * Stop the worker: `shutdown` (idle) or `hangup` (busy), then SIGTERM, then SIGKILL after
   * `closeTimeoutMs` each. Resolves when the process is gone.
   */
  async close(reason: Outcome = 'shutdown'): Promise<void> {
    if (this.state === 'exited') return;
    const wasBusy = this.state === 'busy';
    this.state = 'closing';
    if (wasBusy) this.hangup(reason);
    else this.send({ type: 'shutdown' });
    const gone = await this.waitExit(this.sup.closeTimeoutMs);
    if (gone) return;
    this.kill('SIGTERM');
    if (await this.waitExit(this.sup.closeTimeoutMs)) return;
    this.kill('SIGKILL');
    await this.exited;
  }

  kill(signal: NodeJS.Signals, outcome?: WorkerResult): void {
    if (outcome) this.pendingOutcome = outcome;
    if (this.state === 'exited') return;
    try {
      this.child.kill(signal);
    } catch {
      /* already gone */
    }
  }

  private waitExit(ms: number): Promise<boolean> {
    return Promise.race([
      this.exited.then(() => true),
      new Promise<boolean>((r) => (this.killTimer = setTimeout(() => r(false), ms))),
    ]).finally(() => clearTimeout(this.killTimer));
  }

  private ping(): void {
    const now = Date.now();
    const lateMs = now - this.lastPingTickAtMs - this.sup.pingIntervalMs;
    this.lastPingTickAtMs = now;
    // This process was stopped or frozen (SIGSTOP, a paused VM, a long GC): the worker's pongs are
    // still unread in the pipe (timers run before I/O on resume). The time we were not running is
    // not the worker's silence.
    if (lateMs > STALL_GRACE_MS) this.lastPongAtMs += lateMs;
    if (this.state === 'exited' || this.state === 'closing' || this.state === 'starting') return;
    if (now - this.lastPongAtMs > this.sup.pingTimeoutMs) {
      this.log.error({ pingTimeoutMs: this.sup.pingTimeoutMs }, 'worker stopped answering pings; killing it');
      this.kill('SIGKILL', { outcome: 'worker_crashed', detail: `no pong for ${this.sup.pingTimeoutMs} ms`, by: 'supervisor' });
      return;
    }
    this.send({ type: 'ping', seq: ++this.pingSeq });
  }

  private onMessage(m: ChildMessage): void {
    switch (m.type) {
      case 'ready':
        clearTimeout(this.initTimer);
        this.lastPongAtMs = Date.now();
        if (this.state === 'starting') {
          this.state = 'idle';
          this.readyAtMs = Date.now();
          this.prepareMs = m.prepareMs;
          this.bots = m.bots ?? {};
          this.failedBots = m.failed ?? {};
          this.emit('ready');
        }
        break;
      case 'pong': {
        clearTimeout(this.ackTimer);
        this.lastPongAtMs = Date.now();
        // The worker and its page: a leaking page is killed like a leaking worker.
        this.lastRssBytes = (m.pssBytes ?? m.rssBytes) + (m.pageBytes ?? 0);
        const mb = this.lastRssBytes / 1024 / 1024;
        // The warning comes first even when one sample is past both marks (a fast leak between two
        // pings): an alert on the warning line must not miss the worker it is about to lose.
        if (mb > this.sup.memoryWarnMb && !this.memoryWarned) {
          this.memoryWarned = true;
          this.log.warn({ rssMb: Math.round(mb), warnMb: this.sup.memoryWarnMb }, 'worker memory high');
        }
        if (mb > this.sup.memoryLimitMb) {
          this.log.error({ rssMb: Math.round(mb), limitMb: this.sup.memoryLimitMb }, 'worker over its memory limit; killing it');
          const parts =
            m.pageBytes === undefined
              ? ''
              : ` (worker ${Math.round((m.pssBytes ?? m.rssBytes) / 1048576)} MB + page ${Math.round(m.pageBytes / 1048576)} MB PSS)`;
          this.kill('SIGKILL', {
            outcome: 'worker_memory',
            detail: `${m.pageBytes === undefined ? 'rss' : 'memory'} ${Math.round(mb)} MB > ${this.sup.memoryLimitMb} MB${parts}`,
            by: 'supervisor',
          });
        }
        break;
      }
      case 'rate':
        this.grantRate(m.seq, m.method, m.path, m.leaseMs);
        break;
      case 'rate-release': {
        const release = this.rateGrants.get(m.seq);
        this.rateGrants.delete(m.seq);
        release?.();
        break;
      }
      case 'done':
        this.settle({ outcome: m.outcome, ...(m.detail ? { detail: m.detail } : {}), by: 'worker' });
        break;
      case 'fatal':
        this.log.error({ error: m.error }, 'worker reported a fatal error');
        break;
      default:
        break;
    }
    this.emit('message', m);
  }

  /** The worker may send its Daily request once the limiter grants it (or at once if it cannot). */
  private grantRate(seq: number, method: string, path: string, leaseMs: number): void {
    const rl = this.sup.rateLimit;
    if (!rl) {
      this.send({ type: 'rate-grant', seq });
      return;
    }
    rl(method, path, priorityOf(method, path), this.rateStop.signal, leaseMs).then(
      (release) => {
        if (this.state === 'exited') return release?.();
        this.rateGrants.set(seq, release);
        this.send({ type: 'rate-grant', seq });
      },
      (err: unknown) => {
        if (this.state === 'exited') return;
        this.log.warn({ err: errorMessage(err), path }, 'rate limiter failed for a worker request; it is sent anyway');
        this.send({ type: 'rate-grant', seq, error: errorMessage(err) });
      },
    );
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.state = 'exited';
    this.rateStop.abort();
    for (const release of this.rateGrants.values()) release?.();
    this.rateGrants.clear();
    clearInterval(this.pingTimer);
    clearTimeout(this.initTimer);
    clearTimeout(this.ackTimer);
    if (this.call) {
      this.settle(
        this.pendingOutcome ?? {
          outcome: 'worker_crashed',
          detail: `worker exited (${signal ?? `code ${code}`}) before reporting an outcome`,
          by: 'supervisor',
        },
      );
    }
    this.emit('exit', code, signal);
  }

  private settle(r: WorkerResult): void {
    if (this.settled) return;
    this.settled = r;
    this.resolveResult(r);
  }
}
