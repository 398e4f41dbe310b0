/**
 * Funnels over the `call_steps` table (src/records/steps.ts; docs/bots.md, "Steps and funnels"):
 * for one bot (and version) over a time range, for each step, the calls that reached it, those
 * whose last step it was by outcome, the median time spent in it, and the hang-ups and transfers
 * from it. One grouped scan of the funnel index gives the counts; then each step's median is one
 * walk of the spent index in time-spent order up to the middle one of its calls in range (no sort of
 * the rows: measured 2-50x faster than `percentile_disc` or a window, docs/BENCHMARKS.md). The same
 * SQL on SQLite and PostgreSQL.
 */
import { FUNNEL_INDEX, SPENT_INDEX } from './migrations.js';
import type { RecordOutcome } from '../core/outcome.js';

export interface FunnelQuery {
  bot: string;
  /** One version of the bot; all of them when absent. */
  version?: string | undefined;
  /** Calls received from (inclusive) … to (exclusive), epoch ms. */
  fromMs?: number | undefined;
  toMs?: number | undefined;
}

export interface FunnelStep {
  step: string;
  /** Calls that reached the step (once per call, whatever its visits). */
  reached: number;
  /** Calls whose last step it was, by outcome. */
  last: Partial<Record<RecordOutcome | (string & {}), number>>;
  /** The median time a call spent in the step (all its visits; the lower median). */
  medianMs: number;
  /** Calls whose last step it was and whose caller hung up (`caller_hangup`). */
  hangups: number;
  /** Calls the bot began a transfer from while in the step (blind or warm). */
  transfers: number;
}

/** Most steps one funnel answers (a bot with more names than that names them from caller data). */
export const MAX_FUNNEL_STEPS = 200;

/** The filter on `call_steps`; `ph(n)` is the n-th placeholder. */
export function funnelWhere(q: FunnelQuery, ph: (n: number) => string): { sql: string; params: unknown[] } {
  const params: unknown[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return ph(params.length);
  };
  const parts = [`bot = ${p(q.bot)}`];
  if (q.fromMs !== undefined) parts.push(`received_at_ms >= ${p(q.fromMs)}`);
  if (q.toMs !== undefined) parts.push(`received_at_ms < ${p(q.toMs)}`);
  if (q.version !== undefined) parts.push(`bot_version = ${p(q.version)}`);
  return { sql: `WHERE ${parts.join(' AND ')}`, params };
}

/** Counts by step, whether it was the last, and outcome (one scan). `indexedBy`: SQLite is told to use the funnel index. */
export const countsSql = (where: string, indexedBy = false) =>
  `SELECT step, is_last, outcome, count(*) AS n, sum(CASE WHEN transfers > 0 THEN 1 ELSE 0 END) AS transferred,
     sum(entered_ms) AS entered FROM call_steps${indexedBy ? ` INDEXED BY ${FUNNEL_INDEX}` : ''} ${where} GROUP BY step, is_last, outcome`;

/**
 * The lower median of one step's spent_ms: its ⌈n/2⌉-th row in spent order (OFFSET ⌈n/2⌉ − 1), `n`
 * the calls in range that reached it. The parameters after the filter's: the step, the offset.
 * `indexedBy`: SQLite is told to walk the spent index (its planner may prefer a sort otherwise).
 */
export const medianSql = (w: { sql: string; params: unknown[] }, ph: (n: number) => string, indexedBy: boolean) =>
  `SELECT spent_ms AS median FROM call_steps${indexedBy ? ` INDEXED BY ${SPENT_INDEX}` : ''} ${w.sql}
     AND step = ${ph(w.params.length + 1)} ORDER BY spent_ms LIMIT 1 OFFSET ${ph(w.params.length + 2)}`;

/** Each step's calls in range, from the counts: what the median queries need. */
export function reachedByStep(counts: CountRow[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of counts) out.set(r.step, (out.get(r.step) ?? 0) + Number(r.n));
  return out;
}

export interface CountRow {
  step: string;
  is_last: number | string;
  outcome: string;
  n: number | string;
  transferred: number | string | null;
  entered: number | string | null;
}

export interface MedianRow {
  median: number | string | null;
}

/** The answer from the counts and each step's median: steps by reach (most first), then by when calls entered them. */
export function assembleFunnel(counts: CountRow[], medians: Map<string, number>): FunnelStep[] {
  const steps = new Map<string, FunnelStep & { entered: number }>();
  for (const r of counts) {
    let s = steps.get(r.step);
    if (!s) steps.set(r.step, (s = { step: r.step, reached: 0, last: {}, medianMs: 0, hangups: 0, transfers: 0, entered: 0 }));
    const n = Number(r.n);
    s.reached += n;
    s.transfers += Number(r.transferred ?? 0);
    s.entered += Number(r.entered ?? 0);
    if (Number(r.is_last) === 1) {
      s.last[r.outcome] = (s.last[r.outcome] ?? 0) + n;
      if (r.outcome === 'caller_hangup') s.hangups += n;
    }
  }
  for (const [step, median] of medians) {
    const s = steps.get(step);
    if (s) s.medianMs = median;
  }
  return [...steps.values()]
    .sort((a, b) => b.reached - a.reached || a.entered / a.reached - b.entered / b.reached || a.step.localeCompare(b.step))
    .slice(0, MAX_FUNNEL_STEPS)
    .map(({ entered: _e, ...s }) => s);
}
