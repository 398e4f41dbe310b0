/**
 * What a replica keeps of the fleet's state so that it can put it back when Redis loses it
 * (restart without persistence, FLUSHALL, eviction, fail-over to an empty primary): the claims it
 * won or made while apart, with their first answers, for as long as a claim lives.
 *
 * Also the typed readers of script replies (arrays of numbers and strings), so the fleet's modules
 * need no casts.
 */

/** Claims remembered here: callId → first answer (JSON, '' until known) and expiry. */
export class ClaimBook {
  private readonly claims = new Map<string, { answer: string; expiresAtMs: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly max = 50_000,
  ) {}

  get size(): number {
    return this.claims.size;
  }

  has(callId: string): boolean {
    return this.claims.has(callId);
  }

  /** Remembers (or refreshes) a claim; keeps an answer already known when `answer` is ''. */
  remember(callId: string, answer: string): void {
    const now = Date.now();
    const known = this.claims.get(callId)?.answer ?? '';
    this.claims.delete(callId);
    this.claims.set(callId, { answer: answer || known, expiresAtMs: now + this.ttlMs });
    // Oldest first (insertion order): drop the expired, and keep the map bounded.
    for (const [k, v] of this.claims) {
      if (v.expiresAtMs > now && this.claims.size <= this.max) break;
      this.claims.delete(k);
    }
  }

  /** Stores the answer of a claim remembered here (no-op for a claim not ours). */
  answer(callId: string, answer: string): void {
    const c = this.claims.get(callId);
    if (c) c.answer = answer;
  }

  forget(callId: string): void {
    this.claims.delete(callId);
  }

  /** `[callId, answer, ttlLeftMs, …]` in batches of `per` claims, for `fleetRestoreClaims`. */
  batches(per = 500): Array<Array<string | number>> {
    const now = Date.now();
    const out: Array<Array<string | number>> = [];
    let cur: Array<string | number> = [];
    for (const [callId, c] of this.claims) {
      if (c.expiresAtMs <= now) continue;
      cur.push(callId, c.answer, c.expiresAtMs - now);
      if (cur.length >= 3 * per) {
        out.push(cur);
        cur = [];
      }
    }
    if (cur.length > 0) out.push(cur);
    return out;
  }
}

/** A script's array reply, element by element. */
export function replyList(r: unknown): unknown[] {
  return Array.isArray(r) ? r : [];
}

export function num(v: unknown): number {
  return typeof v === 'number' ? v : Number(v ?? 0);
}

export function str(v: unknown): string {
  return typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v);
}

/** `[n0, n1, …]` → numbers. */
export function nums(r: unknown): number[] {
  return replyList(r).map(num);
}
