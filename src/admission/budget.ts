/**
 * Admission by time, not only by slots (docs/RELIABILITY.md, "Overload"): a call is admitted only
 * when its caller can be forwarded within the hold budget. The estimate, from what this replica
 * measures as it runs:
 *
 *   worker wait   calls ahead of this one that still need a worker, minus the idle ones, started
 *                 `maxStarting` at a time, each taking the recent mean worker start (fork → ready;
 *                 slower under CPU contention, which is what the estimate must see)
 *   slot wait     when every bot slot is taken: the calls ahead × mean call length / bot slots
 *                 (none until a call has ended here); more than QUEUE_TIMEOUT_MS refuses too
 *   connect       mean time from worker assigned to caller forwarded (join, dialin-ready, update)
 *
 * Otherwise the webhook is answered 503 + Retry-After at once, so Daily (or the load balancer, or
 * the fleet) places the call where it can be served, instead of holding a caller for nothing.
 */
import type { Logger } from 'pino';
import type { Config } from '../core/config.js';
import type { Call, CallTransition } from '../call/call.js';
import { FALLBACK_RESERVE_MS } from '../workers/parent/fallback.js';
import type { WorkerPool } from '../workers/parent/pool.js';

/** Exponentially weighted mean; undefined until the first sample. */
class Ewma {
  value: number | undefined;
  constructor(private readonly alpha: number) {}
  add(x: number): void {
    this.value = this.value === undefined ? x : this.value + this.alpha * (x - this.value);
  }
}

export interface QueueState {
  /** Calls on a bot slot (with or without their worker yet). */
  active: number;
  /** Calls waiting for a bot slot, and calls being admitted. */
  queued: number;
  /** Calls on a slot still waiting for a worker. */
  waitingForWorker: number;
}

export interface Estimate {
  etaMs: number;
  workerWaitMs: number;
  slotWaitMs: number;
  connectMs: number;
}

/** Until measured: a worker start, and assignment → forwarded, as on this machine kind (docs/BENCHMARKS.md). */
const DEFAULT_START_MS = 1_500;
const DEFAULT_CONNECT_MS = 2_000;

export class AdmissionBudget {
  private readonly startMs = new Ewma(0.3);
  private readonly connectMs = new Ewma(0.2);
  private readonly callMs = new Ewma(0.1);
  private refused = 0;

  constructor(private readonly deps: { config: Config; pool: WorkerPool; logger: Logger }) {
    const previous = deps.pool.onWorkerReady;
    deps.pool.onWorkerReady = (w, ms) => {
      this.startMs.add(ms);
      previous?.(w, ms);
    };
  }

  /** Feeds call timings (the dispatcher's `transition` and `changed` events). */
  onTransition(t: CallTransition): void {
    const tl = t.call.record.timeline;
    if (t.to === 'ended' && tl.worker_assigned !== undefined && tl.connected !== undefined) this.callMs.add(t.atMs - tl.worker_assigned);
  }

  onChanged(call: Call): void {
    const tl = call.record.timeline;
    if (tl.forwarded !== undefined && tl.worker_assigned !== undefined && !this.seen.has(call)) {
      this.seen.add(call);
      this.connectMs.add(tl.forwarded - tl.worker_assigned);
    }
  }

  private readonly seen = new WeakSet<Call>();

  estimate(q: QueueState): Estimate {
    const { maxConcurrentBots } = this.deps.config.admission;
    const pool = this.deps.pool.stats();
    const startMs = this.startMs.value ?? DEFAULT_START_MS;
    const parallel = Math.max(1, this.deps.pool.startConcurrency);
    // Ahead of this call for a worker: those on a slot without one, and the queued ones that will get a slot first.
    const freeSlots = Math.max(0, maxConcurrentBots - q.active);
    const aheadForWorker = q.waitingForWorker + Math.min(q.queued, freeSlots);
    const needed = aheadForWorker + 1 - pool.idle;
    // Starting workers arrive within one start; each further round of `parallel` starts takes another.
    const workerWaitMs = needed <= 0 ? 0 : Math.ceil(needed / parallel) * startMs;
    // No slot for this call: it waits for calls to end (mean length / slots per call ahead).
    const position = q.active + q.queued + 1 - maxConcurrentBots;
    const slotWaitMs = position > 0 && this.callMs.value !== undefined ? (position * this.callMs.value) / maxConcurrentBots : 0;
    const connectMs = this.connectMs.value ?? DEFAULT_CONNECT_MS;
    return { etaMs: workerWaitMs + slotWaitMs + connectMs, workerWaitMs, slotWaitMs, connectMs };
  }

  /** Undefined: admit. Otherwise the Retry-After (s) and why. */
  check(q: QueueState): { retryAfterSec: number; message: string } | undefined {
    const budgetMs = this.deps.config.resilience.holdBudgetMs - FALLBACK_RESERVE_MS;
    const { queueTimeoutMs } = this.deps.config.admission;
    const e = this.estimate(q);
    // Past the hold budget, or a slot not expected before QUEUE_TIMEOUT_MS (the call would time out queued).
    if (e.etaMs <= budgetMs && e.slotWaitMs <= queueTimeoutMs) return undefined;
    const retryAfterSec = Math.min(30, Math.max(1, Math.ceil(Math.max(e.etaMs - budgetMs, e.slotWaitMs - queueTimeoutMs) / 1000)));
    if (this.refused++ % 50 === 0)
      this.deps.logger.warn(
        { ...roundAll(e), budgetMs, ...q, refusedSoFar: this.refused },
        'overloaded: refusing calls that would wait past the hold budget',
      );
    const message =
      e.slotWaitMs > queueTimeoutMs
        ? `no bot slot expected within QUEUE_TIMEOUT_MS (~${Math.round(e.slotWaitMs / 1000)} s)`
        : `a bot would reach this caller in ~${Math.round(e.etaMs / 1000)} s, past the ${Math.round(budgetMs / 1000)} s hold budget`;
    return { retryAfterSec, message };
  }
}

function roundAll(e: Estimate): Record<keyof Estimate, number> {
  return {
    etaMs: Math.round(e.etaMs),
    workerWaitMs: Math.round(e.workerWaitMs),
    slotWaitMs: Math.round(e.slotWaitMs),
    connectMs: Math.round(e.connectMs),
  };
}
