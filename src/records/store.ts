/**
 * Call records, written as the call happens: `open()` at admission, `update()` / `appendEvents()`
 * at each stage, `close()` at the end. None of these wait for the database: each marks the call's
 * snapshot dirty in a bounded in-memory queue (one entry per call, coalesced), and a writer flushes
 * the queue in batches (one transaction / statement per batch, one batch in flight). A slow or
 * unavailable database only makes the queue longer; it is retried with backoff, and beyond
 * `queueMax` calls the oldest entries are dropped, counted and logged.
 *
 * Backends: SQLite (sqlite.ts, the embedded default) or PostgreSQL (postgres.ts, DATABASE_URL).
 * PII: see pii.ts. Retention: `prune()` in small batches, on a timer when `retentionDays` is set.
 */
import type { Logger } from 'pino';
import type { RecordsBackend } from './backend.js';
import type { CallRow } from './rows.js';
import { addEvents, applyPatch, fromInput, snapshotOf, toStored, type Snapshot } from './snapshot.js';
import type { CallFilter, Page, RecordEvent, RecordInput, RecordPatch, RecordsStats, StoredCall } from './types.js';
import { stepRowsOf, type StepRow } from './steps.js';
import type { FunnelQuery, FunnelStep } from './funnel.js';

export { RecordsError } from './errors.js';
export type { StoredCall } from './types.js';

/** Most records one query returns. */
export const MAX_LIST_LIMIT = 500;
export { MAX_EVENTS_PER_CALL } from './snapshot.js';
const RECENT_MAX = 50;
const PRUNE_BATCH = 500;
const PRUNE_PAUSE_MS = 20;
const PRUNE_INTERVAL_MS = 60 * 60_000;
const DROP_LOG_INTERVAL_MS = 1_000;

export interface RecordStoreOptions {
  backend: RecordsBackend;
  storePii: boolean;
  logger: Logger;
  /** This replica's id: stamped on its records, used by `markInterrupted()`. */
  replicaId: string;
  /** Calls with unwritten changes kept in memory (default 10 000). */
  queueMax?: number;
  /** Rows per write (default 200). */
  batchMax?: number;
  /** How long a change waits to be batched with others (default 25 ms). */
  batchDelayMs?: number;
  /** Delete records that ended more than this many days ago (0: keep them). */
  retentionDays?: number;
}

export class RecordStore {
  readonly backend: RecordsBackend;
  readonly replicaId: string;
  readonly storePii: boolean;
  readonly startedAtMs = Date.now();
  private readonly log: Logger;
  private readonly queueMax: number;
  private readonly batchMax: number;
  private readonly batchDelayMs: number;
  private readonly live = new Map<string, Snapshot>();
  /** Unwritten snapshots, oldest first (one per call). */
  private readonly dirty = new Map<string, Snapshot>();
  private readonly inflight = new Map<string, Snapshot>();
  private readonly recent: Snapshot[] = [];
  private timer: NodeJS.Timeout | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private failuresInARow = 0;
  private lastFailureLogMs = 0;
  private droppedSinceLog = 0;
  private dropLogTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly counters = { dropped: 0, written: 0, batches: 0, writeFailures: 0, pruned: 0 };

  constructor(opts: RecordStoreOptions) {
    this.backend = opts.backend;
    this.replicaId = opts.replicaId;
    this.storePii = opts.storePii;
    this.log = opts.logger.child({ component: 'records' });
    this.queueMax = opts.queueMax ?? 10_000;
    this.batchMax = opts.batchMax ?? 200;
    this.batchDelayMs = opts.batchDelayMs ?? 25;
    const days = opts.retentionDays ?? 0;
    if (days > 0) {
      const run = () =>
        void this.prune(Date.now() - days * 86_400_000).catch((err: Error) =>
          this.log.warn({ err: err.message }, 'call records: pruning failed'),
        );
      this.pruneTimer = setInterval(run, PRUNE_INTERVAL_MS);
      this.pruneTimer.unref();
      setTimeout(run, 1_000).unref();
    }
  }

  /** Fills the recent list (the dashboard's first view) from the database. */
  async load(): Promise<void> {
    const rows = await this.backend.query({}, { limit: RECENT_MAX });
    this.recent.length = 0;
    for (const c of rows.reverse()) this.pushRecent(snapshotOf(c));
  }

  // --- writing -----------------------------------------------------------------------------------

  /** A new call (admission). Never throws, never waits. */
  open(rec: RecordInput): void {
    if (this.stopped) return this.refused(rec.id);
    const s = fromInput(rec, this.storePii, this.replicaId);
    this.live.set(rec.id, s);
    this.markDirty(rec.id, s);
  }

  /** A change of an open call: fields replaced, timeline merged (first time per stage wins). */
  update(id: string, patch: RecordPatch): void {
    const s = this.live.get(id);
    if (!s || this.stopped) return;
    applyPatch(s, patch, this.storePii);
    this.markDirty(id, s);
  }

  /** New entries of an open call's event log. */
  appendEvents(id: string, events: RecordEvent[]): void {
    const s = this.live.get(id);
    if (!s || this.stopped || events.length === 0) return;
    addEvents(s, events, this.storePii);
    s.row.updated_at_ms = Date.now();
    this.markDirty(id, s);
  }

  /** The end of a call (opened or not): its final state. `events`, when given, is the whole log. */
  close(rec: RecordInput): void {
    if (this.stopped) return this.refused(rec.id);
    let s = this.live.get(rec.id);
    if (s) {
      const { id: _id, events, ...patch } = rec;
      applyPatch(s, patch, this.storePii);
      if (events && events.length >= s.events.length) {
        s.events = [];
        addEvents(s, events, this.storePii);
      }
    } else s = fromInput(rec, this.storePii, this.replicaId);
    this.live.delete(rec.id);
    const now = Date.now();
    s.timeline.ended ??= now;
    s.row.state = 'ended';
    s.row.ended_at_ms = s.timeline.ended;
    s.row.updated_at_ms = now;
    s.row.outcome ??= 'worker_crashed';
    this.pushRecent(s);
    this.markDirty(rec.id, s);
  }

  /**
   * Start-up reconciliation. Without an id (or with this replica's): records this replica left open
   * (it was killed mid-call) → `interrupted`. With another replica's id (fleet mode, that replica is
   * gone): its open records → `replica_lost`. Each record is closed once; answers how many. `keep`:
   * records of calls an orphaned worker is still finishing (src/workers/orphans.ts), left open.
   */
  async markInterrupted(replicaId?: string, keep: string[] = []): Promise<number> {
    const own = replicaId === undefined || replicaId === this.replicaId;
    const now = Date.now();
    const n = own
      ? await this.backend.closeOpen(
          this.replicaId,
          'interrupted',
          `replica ${this.replicaId} stopped before the call ended; closed at its next start-up`,
          now,
          this.startedAtMs,
          keep,
        )
      : await this.backend.closeOpen(
          replicaId,
          'replica_lost',
          `replica ${replicaId} was lost before the call ended; closed by replica ${this.replicaId}`,
          now,
          now,
        );
    if (n > 0)
      this.log.warn(
        { records: n, replica: own ? this.replicaId : replicaId, outcome: own ? 'interrupted' : 'replica_lost' },
        'call records: closed calls left open',
      );
    return n;
  }

  /**
   * Drops this store's open row of a call whose one record another replica wrote (fleet mode:
   * a lost replica's call recorded by a survivor). Never throws.
   */
  async discardOpen(id: string): Promise<void> {
    this.live.delete(id);
    this.dirty.delete(id);
    await this.backend.deleteOpen(id).catch((err: unknown) => this.log.warn({ err, id }, 'call records: could not drop an open record'));
  }

  /** Resolves once what is queued now has been written, or a write has just failed (it stays queued). */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (;;) {
      if (this.writing) {
        await this.writing;
        continue;
      }
      if (this.dirty.size === 0) return;
      const ok = await this.writeBatch();
      if (!ok) return;
    }
  }

  private markDirty(id: string, s: Snapshot): void {
    if (!this.dirty.has(id) && this.dirty.size + this.inflight.size >= this.queueMax) {
      const oldest = this.dirty.keys().next().value;
      if (oldest !== undefined) {
        this.dirty.delete(oldest);
        this.counters.dropped++;
        this.droppedSinceLog++;
        this.logDrops();
      }
    }
    this.dirty.set(id, s);
    if (!this.timer && !this.writing) this.schedule(this.batchDelayMs);
  }

  /** One line per second at most, saying how many were dropped since the last one. */
  private logDrops(force = false): void {
    if (this.droppedSinceLog === 0) return;
    if (!force) {
      this.dropLogTimer ??= setTimeout(() => {
        this.dropLogTimer = undefined;
        this.logDrops(true);
      }, DROP_LOG_INTERVAL_MS).unref();
      return;
    }
    clearTimeout(this.dropLogTimer);
    this.dropLogTimer = undefined;
    this.log.error(
      { dropped: this.droppedSinceLog, droppedTotal: this.counters.dropped, queueMax: this.queueMax, backend: this.backend.kind },
      `call records: queue full (database unavailable?): dropped ${this.droppedSinceLog} record(s)`,
    );
    this.droppedSinceLog = 0;
  }

  private schedule(ms: number): void {
    if (this.stopped && ms > 0) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.writeBatch();
    }, ms);
    this.timer.unref();
  }

  /** Writes one batch; answers whether it was written. */
  private writeBatch(): Promise<boolean> {
    if (this.writing || this.dirty.size === 0) return Promise.resolve(this.writing === undefined);
    const batch: Array<[string, Snapshot]> = [];
    for (const [id, s] of this.dirty) {
      batch.push([id, s]);
      if (batch.length >= this.batchMax) break;
    }
    const rows: CallRow[] = [];
    const steps: StepRow[] = [];
    for (const [id, s] of batch) {
      this.dirty.delete(id);
      this.inflight.set(id, s);
      rows.push({ ...s.row, timeline: JSON.stringify(s.timeline), events: JSON.stringify(s.events) });
      steps.push(...closedSteps(s));
    }
    let ok = false;
    const p = this.backend.write(rows, steps).then(
      () => {
        for (const [id] of batch) this.inflight.delete(id);
        ok = true;
        this.counters.written += rows.length;
        this.counters.batches++;
        if (this.failuresInARow > 0)
          this.log.info({ afterFailures: this.failuresInARow, queued: this.dirty.size }, 'call records: writing again');
        this.failuresInARow = 0;
      },
      (err: Error) => {
        this.counters.writeFailures++;
        this.failuresInARow++;
        for (const [id] of batch) this.inflight.delete(id);
        // Back at the head of the queue, unless a newer snapshot of the call is already there (a superset).
        this.requeueFront(batch.filter(([id]) => !this.dirty.has(id)));
        const now = Date.now();
        if (this.failuresInARow === 1 || now - this.lastFailureLogMs > 30_000) {
          this.lastFailureLogMs = now;
          this.log.error(
            { err: err.message, queued: this.dirty.size, backend: this.backend.kind, where: this.backend.where },
            'call records: write failed; kept in memory, will retry',
          );
        }
      },
    );
    this.writing = p.then(() => {
      this.writing = undefined;
      this.logDrops();
      if (this.dirty.size > 0) this.schedule(ok ? 0 : Math.min(5_000, 100 * 2 ** Math.min(this.failuresInARow, 6)));
    });
    return this.writing.then(() => ok);
  }

  /** Puts snapshots back at the head of the queue (they are older than what is there), within the bound. */
  private requeueFront(entries: Array<[string, Snapshot]>): void {
    const rest = [...this.dirty];
    this.dirty.clear();
    for (const [k, v] of entries) this.dirty.set(k, v);
    for (const [k, v] of rest) this.dirty.set(k, v);
    while (this.dirty.size + this.inflight.size > this.queueMax) {
      this.dirty.delete(this.dirty.keys().next().value!);
      this.counters.dropped++;
      this.droppedSinceLog++;
    }
    this.logDrops();
  }

  private refused(id: string): void {
    this.log.warn({ id }, 'call records closed; record not saved');
  }

  // --- reading -----------------------------------------------------------------------------------

  /** Newest first; this replica's unwritten changes are shown as they are in memory. */
  async query(filter: CallFilter, page: Page): Promise<StoredCall[]> {
    await this.flushBriefly();
    const rows = await this.backend.query(filter, { ...page, limit: clampLimit(page.limit) });
    return rows.map((c) => {
      const mine = this.dirty.get(c.id) ?? this.inflight.get(c.id) ?? this.live.get(c.id);
      return mine ? toStored(mine, c.seq) : c;
    });
  }

  /** One call with its timeline and event log; a live call of this replica as it is now. */
  async get(id: string): Promise<StoredCall | undefined> {
    const mine = this.live.get(id) ?? this.dirty.get(id) ?? this.inflight.get(id);
    if (mine) return toStored(mine, (await this.backend.get(id).catch(() => undefined))?.seq ?? 0);
    return this.backend.get(id);
  }

  /** A funnel over the database (every replica's ended calls, PostgreSQL mode; this replica's writes flushed first). */
  async funnel(query: FunnelQuery): Promise<FunnelStep[]> {
    await this.flushBriefly();
    return this.backend.funnel(query);
  }

  async count(filter: CallFilter = {}): Promise<number> {
    await this.flushBriefly();
    return this.backend.count(filter);
  }

  /** The most recent ended calls known to this replica (synchronous: the dashboard's first view). */
  list(q: { limit: number }): StoredCall[] {
    return this.recent.slice(0, clampLimit(q.limit)).map((s) => toStored(s, s.seq ?? 0));
  }

  /** Deletes records that ended before `olderThanMs`, in small batches (writers go on in between). */
  async prune(olderThanMs: number): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.backend.pruneBatch(olderThanMs, PRUNE_BATCH);
      total += n;
      if (n < PRUNE_BATCH || this.stopped) break;
      await new Promise((r) => setTimeout(r, PRUNE_PAUSE_MS));
    }
    this.counters.pruned += total;
    if (total > 0) this.log.info({ pruned: total, olderThan: new Date(olderThanMs).toISOString() }, 'call records: old records deleted');
    return total;
  }

  stats(): RecordsStats {
    return {
      backend: this.backend.kind,
      queueDepth: this.dirty.size + this.inflight.size,
      queueMax: this.queueMax,
      open: this.live.size,
      roundTrips: this.backend.roundTrips,
      healthy: this.failuresInARow === 0,
      ...this.counters,
    };
  }

  /** Writes what is queued (for up to `timeoutMs`), then closes the database. Idempotent. */
  async shutdown(timeoutMs = 5_000): Promise<void> {
    if (this.stopped) return;
    clearInterval(this.pruneTimer);
    const deadline = Date.now() + timeoutMs;
    while (this.dirty.size + this.inflight.size > 0 && Date.now() < deadline) {
      await Promise.race([this.flush(), new Promise((r) => setTimeout(r, Math.max(1, deadline - Date.now())))]);
      if (this.failuresInARow > 0) await new Promise((r) => setTimeout(r, Math.min(250, Math.max(1, deadline - Date.now()))));
    }
    this.stopped = true;
    clearTimeout(this.timer);
    const left = this.dirty.size + this.inflight.size;
    if (left > 0)
      this.log.error({ unwritten: left, ids: [...this.dirty.keys()].slice(0, 20) }, 'call records: closing with unwritten records');
    this.logDrops(true);
    await this.writing;
    await this.backend.close();
  }

  /** After `shutdown()`. */
  get closed(): boolean {
    return this.stopped;
  }

  /** Calls with unwritten changes. */
  get unwritten(): number {
    return this.dirty.size + this.inflight.size;
  }

  // --- shapes ------------------------------------------------------------------------------------

  private async flushBriefly(): Promise<void> {
    // What this replica queued becomes visible to the query; a database that does not answer
    // quickly is not waited for (the overlay above shows this replica's calls anyway).
    let t: NodeJS.Timeout | undefined;
    await Promise.race([this.flush(), new Promise<void>((r) => (t = setTimeout(r, 1_000)))]);
    clearTimeout(t);
  }

  private pushRecent(s: Snapshot): void {
    this.recent.unshift(s);
    if (this.recent.length > RECENT_MAX) this.recent.length = RECENT_MAX;
  }
}

/** The steps of a closed call (none while it is open: they are written once, with its end). */
function closedSteps(s: Snapshot): StepRow[] {
  const r = s.row;
  if (r.ended_at_ms === null) return [];
  return stepRowsOf({
    id: r.id,
    bot: r.bot,
    botVersion: r.bot_version,
    receivedAtMs: r.received_at_ms,
    endedAtMs: r.ended_at_ms,
    outcome: r.outcome ?? 'worker_crashed',
    events: s.events,
  });
}

function clampLimit(n: number): number {
  return Math.max(1, Math.min(MAX_LIST_LIMIT, Math.trunc(n) || 1));
}

/** The name earlier code used for the store. */
export type CallRecordStore = RecordStore;
