/**
 * The restarted service picks up the calls its orphaned workers finished or are finishing
 * (src/workers/orphans.ts; issue 21, item 5):
 *
 *  - a call over (`.end.json`): recorded with the outcome its worker reached, its room deleted —
 *    one record, the real outcome, never `interrupted`;
 *  - a call still running (`.live.json`, its worker alive): its record is left open and its room
 *    out of the leftover sweep; looked at every `pollMs` until its worker leaves the outcome, or
 *    dies without one (`worker_crashed`);
 *  - a call whose worker died too before it could tell: closed `interrupted` by the records'
 *    start-up reconciliation, as before; its files are removed here.
 *
 * The records keep the orphans' rows open through that reconciliation (`keepOpenIds`).
 */
import type { Logger } from 'pino';
import type { EndClaimer, Outcome } from '../core/outcome.js';
import { isWorkerAlive, removeOrphan, scanOrphans, type OrphanCall, type OrphanEnd } from '../workers/orphans.js';
import type { Dispatcher } from './dispatcher.js';

/** How often a live orphan's files are looked at. */
export const ORPHAN_POLL_MS = 1_000;

export type OrphanScan = ReturnType<typeof scanOrphans>;

/** Ids whose records the start-up reconciliation must leave open: they get their real outcome here. */
export function keepOpenIds(scan: OrphanScan): string[] {
  return [...scan.ended, ...scan.live].map((c) => c.identity.id);
}

export class OrphanAdoption {
  private readonly watched = new Map<string, OrphanCall>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly deps: {
      dir: string;
      dispatcher: Dispatcher;
      logger: Logger;
      pollMs?: number;
      /**
       * Fleet mode: the fleet-wide right to write the call's one record (a survivor may have recorded
       * it `replica_lost` while this replica was down); false → this store's open row is dropped.
       */
      mayRecord?: (callId: string) => Promise<boolean>;
      discard?: (id: string) => Promise<void>;
    },
    scan: OrphanScan,
  ) {
    const { dir, logger } = deps;
    for (const c of scan.gone) removeOrphan(dir, c.identity.id);
    for (const e of scan.ended) this.record(e, e.outcome, e.detail, e.endedAtMs, 'worker');
    for (const c of scan.live) this.watched.set(c.identity.id, c);
    if (scan.ended.length + scan.live.length + scan.gone.length > 0)
      logger.warn(
        { ended: scan.ended.length, live: scan.live.length, gone: scan.gone.length },
        'calls the last process left to its workers: recorded with their outcomes, or followed until they end',
      );
    if (this.watched.size > 0) this.schedule();
  }

  /** Rooms of calls orphaned workers still run (not leftovers). */
  hasRoom(roomName: string): boolean {
    for (const c of this.watched.values()) if (c.identity.roomName === roomName) return true;
    return false;
  }

  get following(): number {
    return this.watched.size;
  }

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.watched.clear();
  }

  private schedule(): void {
    this.timer = setTimeout(() => this.poll(), this.deps.pollMs ?? ORPHAN_POLL_MS);
    this.timer.unref();
  }

  private poll(): void {
    this.timer = undefined;
    const scan = scanOrphans(this.deps.dir);
    for (const e of scan.ended) {
      if (!this.watched.delete(e.identity.id)) continue;
      this.record(e, e.outcome, e.detail, e.endedAtMs, 'worker');
    }
    for (const [id, c] of this.watched) {
      if (isWorkerAlive(c.pid)) continue;
      this.watched.delete(id);
      this.record(c, 'worker_crashed', 'its worker died after the service stopped, before the call ended', Date.now(), 'supervisor');
    }
    if (this.watched.size > 0) this.schedule();
  }

  private record(c: OrphanCall | OrphanEnd, outcome: Outcome, detail: string | undefined, endedAtMs: number, by: EndClaimer): void {
    const { dir, logger, mayRecord, discard } = this.deps;
    const ctx = { callId: c.identity.callId, id: c.identity.id };
    void (mayRecord ? mayRecord(c.identity.callId) : Promise.resolve(true)).then(async (mine) => {
      if (mine) return this.write(c, outcome, detail, endedAtMs, by);
      logger.info(ctx, 'an orphaned call was recorded by another replica meanwhile; dropping this one’s open record');
      await discard?.(c.identity.id);
      removeOrphan(dir, c.identity.id);
    });
  }

  private write(c: OrphanCall | OrphanEnd, outcome: Outcome, detail: string | undefined, endedAtMs: number, by: EndClaimer): void {
    const { dispatcher, dir, logger } = this.deps;
    const call = dispatcher.createCall(c.identity, c.receivedAtMs);
    for (const s of c.stages) call.stamp(s.stage, s.atMs);
    call.stamp('ended', endedAtMs);
    call.end(outcome, detail, by);
    dispatcher.finish(call).catch((err: unknown) => logger.error({ err, callId: c.identity.callId }, 'recording an orphaned call failed'));
    removeOrphan(dir, c.identity.id);
  }
}
