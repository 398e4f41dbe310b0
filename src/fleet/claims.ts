/**
 * What a replica keeps of the fleet's state so that it can put it back when Redis loses it
 * (restart without persistence, FLUSHALL, eviction, fail-over to an empty primary): the claims it
 * won or made while apart, with their first answers, for as long as a claim lives.
 *
 * Also the typed readers of script replies (arrays of numbers and strings), so the fleet's modules
 * need no casts.
 */

import type { Logger } from 'pino';
import type { ClaimResult, ReserveResult } from './types.js';
import type { ScriptName } from './scripts.js';

/** What claims need of a Fleet. */
interface ClaimCore {
  readonly replicaId: string;
  readonly log: Logger | undefined;
  readonly opts: { claimTtlMs: number; maxQueued: number };
  run(name: ScriptName, ...args: (string | number)[]): Promise<unknown>;
}

/**
 * Exactly-once admission: the first claim of `callId` (fleet-wide, kept `claimTtlMs`) wins.
 * A duplicate learns the owner and, once stored, the owner's answer.
 */
export async function claimCall(f: ClaimCore, book: ClaimBook, callId: string): Promise<ClaimResult> {
  const r = replyList(await f.run('fleetClaim', callId, f.replicaId, f.opts.claimTtlMs));
  const [owner, answer, runner] = [str(r[1]), str(r[2]), str(r[3])];
  if (num(r[0]) === 1) {
    book.remember(callId, '');
    if (r[1] === undefined) return { kind: 'won' };
    f.log?.warn({ callId, previousOwner: owner }, 'took over the admission of a call whose first replica vanished before answering');
    return { kind: 'won', tookOverFrom: owner };
  }
  return { kind: 'duplicate', owner, answer: answer ? JSON.parse(answer) : undefined, runner: runner || undefined };
}

/**
 * Holds the call's place in the fleet-wide bound before its room is made; `enqueue` then fills
 * it (no second check), `cancel` gives it up. 'fleet_full' → 503 without making a room.
 */
export async function reserveCall(f: ClaimCore, callId: string, waitMs: number): Promise<ReserveResult> {
  const [code, backlog = 0, freeSlots = 0] = nums(
    await f.run('fleetReserve', callId, f.replicaId, Math.max(1, Math.round(waitMs)), f.opts.maxQueued),
  );
  return { kind: code === 1 ? 'reserved' : code === 2 ? 'already_reserved' : 'fleet_full', backlog, freeSlots };
}

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
