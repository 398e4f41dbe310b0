/**
 * Funnels over the `call_steps` table (src/records/steps.ts; docs/bots.md, "Steps and funnels"):
 * for one bot (and version) over a time range, for each step, the calls that reached it, those
 * whose last step it was by outcome, the median time spent in it, and the hang-ups and transfers
 * from it. Two grouped scans of the funnel index (counts; medians), the same SQL on SQLite and
 * PostgreSQL but for the median (PostgreSQL's `percentile_disc`, a window over SQLite's rows).
 */
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

/** Counts by step, whether it was the last, and outcome (one scan). */
export const countsSql = (where: string) =>
  `SELECT step, is_last, outcome, count(*) AS n, sum(CASE WHEN transfers > 0 THEN 1 ELSE 0 END) AS transferred,
     sum(entered_ms) AS entered FROM call_steps ${where} GROUP BY step, is_last, outcome`;

/** The lower median of spent_ms per step (PostgreSQL). */
export const medianSqlPostgres = (where: string) =>
  `SELECT step, percentile_disc(0.5) WITHIN GROUP (ORDER BY spent_ms) AS median FROM call_steps ${where} GROUP BY step`;

/** The lower median of spent_ms per step (SQLite: the ⌈n/2⌉-th row of each step in spent order). */
export const medianSqlSqlite = (where: string) =>
  `SELECT step, spent_ms AS median FROM (
     SELECT step, spent_ms, row_number() OVER (PARTITION BY step ORDER BY spent_ms) AS rn, count(*) OVER (PARTITION BY step) AS n
     FROM call_steps ${where}) WHERE rn = (n + 1) / 2`;

export interface CountRow {
  step: string;
  is_last: number | string;
  outcome: string;
  n: number | string;
  transferred: number | string | null;
  entered: number | string | null;
}

export interface MedianRow {
  step: string;
  median: number | string | null;
}

/** The answer from the two queries' rows: steps by reach (most first), then by when calls entered them. */
export function assembleFunnel(counts: CountRow[], medians: MedianRow[]): FunnelStep[] {
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
  for (const m of medians) {
    const s = steps.get(m.step);
    if (s) s.medianMs = Number(m.median ?? 0);
  }
  return [...steps.values()]
    .sort((a, b) => b.reached - a.reached || a.entered / a.reached - b.entered / b.reached || a.step.localeCompare(b.step))
    .slice(0, MAX_FUNNEL_STEPS)
    .map(({ entered: _e, ...s }) => s);
}
