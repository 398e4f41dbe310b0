/**
 * A canary's two sides compared (docs/bots.md, "Canary"): the stable bot's calls and the canary
 * bot's over the same time range, by outcome and by step, and whether each difference is larger
 * than chance would explain at ALPHA = 0.05:
 *
 *  - outcomes: Pearson's chi-square test of homogeneity on the 2 × k table of calls by side and
 *    outcome (outcomes neither side had are dropped; df = k − 1; p from the chi-square
 *    distribution's upper tail, the regularized incomplete gamma function Q(df/2, χ²/2));
 *  - each step: the two-proportion z-test on the share of each side's calls that reached it
 *    (pooled standard error; two-sided p from the normal distribution).
 *
 * Both are large-sample tests: with an expected count below 5 the answer says they are approximate.
 */
import { RECORD_OUTCOMES, type RecordOutcome } from '../core/outcome.js';
import type { FunnelStep } from './funnel.js';
import type { CallFilter } from './types.js';

export const ALPHA = 0.05;

export interface CanarySide {
  bot: string;
  calls: number;
  outcomes: Partial<Record<RecordOutcome, number>>;
}

export interface CanaryTest {
  test: string;
  statistic: number;
  df?: number;
  p: number;
  /** p < ALPHA. */
  significant: boolean;
  /** Some expected count is below 5: the large-sample p is approximate. */
  approximate: boolean;
}

export interface CanaryComparison {
  alpha: number;
  stable: CanarySide;
  canary: CanarySide;
  /** Undefined when a side has no calls. */
  outcomes: (CanaryTest & { statement: string }) | undefined;
  steps: Array<{
    step: string;
    stable: { reached: number; share: number };
    canary: { reached: number; share: number };
    z: (CanaryTest & { statement: string }) | undefined;
  }>;
}

/** What the comparison reads of the records store. */
export interface CanarySource {
  count(filter: CallFilter): Promise<number>;
  funnel(q: { bot: string; fromMs?: number | undefined; toMs?: number | undefined }): Promise<FunnelStep[]>;
}

export async function compareCanary(
  store: CanarySource,
  q: { bot: string; canary: string; fromMs?: number | undefined; toMs?: number | undefined },
): Promise<CanaryComparison> {
  const range = { ...(q.fromMs !== undefined ? { fromMs: q.fromMs } : {}), ...(q.toMs !== undefined ? { toMs: q.toMs } : {}) };
  const side = async (bot: string): Promise<CanarySide> => {
    const counts = await Promise.all(RECORD_OUTCOMES.map(async (o) => [o, await store.count({ bot, outcome: o, ...range })] as const));
    const outcomes = Object.fromEntries(counts.filter(([, n]) => n > 0));
    return { bot, calls: counts.reduce((a, [, n]) => a + n, 0), outcomes };
  };
  const [stable, canary] = await Promise.all([side(q.bot), side(q.canary)]);
  const [fs, fc] = await Promise.all([store.funnel({ bot: q.bot, ...range }), store.funnel({ bot: q.canary, ...range })]);
  const names = [...new Set([...fs.map((s) => s.step), ...fc.map((s) => s.step)])];
  const reachedOf = (f: FunnelStep[], step: string) => f.find((s) => s.step === step)?.reached ?? 0;
  const vs = `${canary.bot} (canary) vs ${stable.bot} (stable)`;
  return {
    alpha: ALPHA,
    stable,
    canary,
    outcomes: stable.calls > 0 && canary.calls > 0 ? withStatement(chiSquare(stable, canary), `Outcomes of ${vs}`) : undefined,
    steps: names.map((step) => {
      const a = reachedOf(fs, step);
      const b = reachedOf(fc, step);
      const z = stable.calls > 0 && canary.calls > 0 ? twoProportionZ(a, stable.calls, b, canary.calls) : undefined;
      return {
        step,
        stable: { reached: a, share: stable.calls > 0 ? a / stable.calls : 0 },
        canary: { reached: b, share: canary.calls > 0 ? b / canary.calls : 0 },
        z: z ? withStatement(z, `Share of calls reaching "${step}", ${vs}`) : undefined,
      };
    }),
  };
}

/** The plain statement: larger than chance or not, with the test and its p-value. */
function withStatement(t: CanaryTest, what: string): CanaryTest & { statement: string } {
  const p = t.p < 0.001 ? 'p < 0.001' : `p = ${t.p.toFixed(3)}`;
  const verdict = t.significant
    ? `differ by more than chance would explain (${t.test}, ${p} < ${ALPHA})`
    : `do not differ by more than chance would explain (${t.test}, ${p} ≥ ${ALPHA})`;
  return { ...t, statement: `${what}: ${verdict}${t.approximate ? '; few calls, so the test is approximate' : ''}.` };
}

export function chiSquare(a: CanarySide, b: CanarySide): CanaryTest {
  const keys = RECORD_OUTCOMES.filter((o) => (a.outcomes[o] ?? 0) + (b.outcomes[o] ?? 0) > 0);
  const n = a.calls + b.calls;
  let x2 = 0;
  let approximate = false;
  for (const o of keys) {
    const col = (a.outcomes[o] ?? 0) + (b.outcomes[o] ?? 0);
    for (const s of [a, b]) {
      const expected = (s.calls * col) / n;
      if (expected < 5) approximate = true;
      x2 += ((s.outcomes[o] ?? 0) - expected) ** 2 / expected;
    }
  }
  const df = Math.max(1, keys.length - 1);
  const p = keys.length < 2 ? 1 : gammaQ(df / 2, x2 / 2);
  return { test: 'chi-square test of homogeneity', statistic: x2, df, p, significant: p < ALPHA, approximate };
}

export function twoProportionZ(x1: number, n1: number, x2: number, n2: number): CanaryTest {
  const pooled = (x1 + x2) / (n1 + n2);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
  const z = se === 0 ? 0 : (x2 / n2 - x1 / n1) / se;
  const p = se === 0 ? 1 : erfc(Math.abs(z) / Math.SQRT2);
  const approximate = [n1, n2].some((n) => n * pooled < 5 || n * (1 - pooled) < 5);
  return { test: 'two-proportion z-test', statistic: z, p, significant: p < ALPHA, approximate };
}

/** erfc(x), x ≥ 0 (Numerical Recipes' erfcc, fractional error < 1.2e-7). */
export function erfc(x: number): number {
  const t = 1 / (1 + 0.5 * x);
  const poly =
    -x * x -
    1.26551223 +
    t *
      (1.00002368 +
        t *
          (0.37409196 +
            t *
              (0.09678418 +
                t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  return t * Math.exp(poly);
}

/** ln Γ(x), x > 0 (Lanczos). */
function gammaLn(x: number): number {
  const c = [76.18009172947146, -86.50532032941678, 24.01409824083091, -1.231739572450155, 0.001208650973866179, -0.000005395239384953];
  let y = x;
  const tmp = x + 5.5 - (x + 0.5) * Math.log(x + 5.5);
  let ser = 1.000000000190015;
  for (const cj of c) ser += cj / ++y;
  return -tmp + Math.log((2.5066282746310007 * ser) / x);
}

/** The regularized upper incomplete gamma Q(a, x): series below a + 1, continued fraction above. */
export function gammaQ(a: number, x: number): number {
  if (x <= 0) return 1;
  const lnPre = -x + a * Math.log(x) - gammaLn(a);
  if (x < a + 1) {
    let sum = 1 / a;
    let del = sum;
    for (let ap = a, i = 0; i < 500 && Math.abs(del) > Math.abs(sum) * 1e-14; i++) sum += del *= x / ++ap;
    return Math.max(0, 1 - sum * Math.exp(lnPre));
  }
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 500; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    d = Math.abs(d) < tiny ? tiny : d;
    c = b + an / c;
    c = Math.abs(c) < tiny ? tiny : c;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-14) break;
  }
  return Math.exp(lnPre) * h;
}
