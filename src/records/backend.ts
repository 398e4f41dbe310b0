/**
 * What the store needs from a database (SQLite or PostgreSQL), and the query both dialects share.
 */
import type { CallRow } from './rows.js';
import type { StepRow } from './steps.js';
import type { FunnelQuery, FunnelStep } from './funnel.js';
import type { CallFilter, Page, StoredCall } from './types.js';
import type { CallbackMirror, CallbackStore } from '../admission/callback-types.js';

export interface RecordsBackend {
  readonly kind: 'sqlite' | 'postgres';
  /** For logs: the file, or the URL without its password. */
  readonly where: string;
  /** Round trips to the database since start-up. */
  readonly roundTrips: number;
  /**
   * Upserts full snapshots in one transaction; a closed row is never changed again. `steps`: the
   * steps of the calls closed in this batch (src/records/steps.ts), inserted once.
   */
  write(rows: CallRow[], steps?: StepRow[]): Promise<void>;
  /** Closes rows still open for `replica` (received before `beforeMs`); answers how many. */
  /** Closes `replica`'s rows still open and received before `beforeMs`, but those in `keep`; answers how many. */
  closeOpen(replica: string, outcome: string, detail: string, nowMs: number, beforeMs: number, keep?: string[]): Promise<number>;
  /** Deletes the row `id` if it is still open (another replica wrote the call's one record); answers how many. */
  deleteOpen(id: string): Promise<number>;
  /** Deletes up to `limit` rows that ended before `cutoffMs`; answers how many. */
  pruneBatch(cutoffMs: number, limit: number): Promise<number>;
  query(filter: CallFilter, page: Page): Promise<StoredCall[]>;
  get(id: string): Promise<StoredCall | undefined>;
  count(filter?: CallFilter): Promise<number>;
  /** Callbacks instead of hold (src/records/callbacks.ts). */
  readonly callbacks: CallbackStore & CallbackMirror;
  /** The steps of one bot's calls over a time range (src/records/funnel.ts). */
  funnel(query: FunnelQuery): Promise<FunnelStep[]>;
  close(): Promise<void>;
}

/** WHERE clause (and its parameters, in order) of a filtered, paged query; `ph(n)` is the n-th placeholder. */
export function whereClause(f: CallFilter, page: Page | undefined, ph: (n: number) => string): { sql: string; params: unknown[] } {
  const parts: string[] = [];
  const params: unknown[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return ph(params.length);
  };
  if (f.number !== undefined) {
    const like = `%${f.number}`;
    parts.push(`(from_digits LIKE ${p(like)} OR to_digits LIKE ${p(like)})`);
  }
  if (f.bot !== undefined) parts.push(`bot = ${p(f.bot)}`);
  if (f.outcome !== undefined) parts.push(`outcome = ${p(f.outcome)}`);
  if (f.fromMs !== undefined) parts.push(`received_at_ms >= ${p(f.fromMs)}`);
  if (f.toMs !== undefined) parts.push(`received_at_ms < ${p(f.toMs)}`);
  if (page?.cursor !== undefined) parts.push(`seq < ${p(page.cursor)}`);
  return { sql: parts.length ? `WHERE ${parts.join(' AND ')}` : '', params };
}
