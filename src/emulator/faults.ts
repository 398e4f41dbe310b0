/** Injected REST faults, a global rate limit, and dialin-ready misbehaviour. */
import type { DialinReadyMode, FaultSpec, FaultsUpdate, RateLimit } from './fault-schema.js';
import type { FaultControl } from './types.js';

interface ActiveFault extends FaultSpec {
  remaining: number;
}

/** What the REST layer must do with a request, after faults and rate limit. */
export type FaultDecision =
  | { kind: 'pass'; delayMs: number; answerDelayMs?: number }
  | { kind: 'fail'; status: number; retryAfterSec?: number; delayMs: number; rateLimited: boolean };

export class Faults implements FaultControl {
  private active: ActiveFault[] = [];
  dialinReady: DialinReadyMode = 'normal';
  dialinReadyDelayMs = 0;
  private _rateLimit: RateLimit | null = null;
  private windowStart = 0;
  private windowCount = 0;

  get rateLimit(): RateLimit | null {
    return this._rateLimit;
  }
  set rateLimit(r: RateLimit | null) {
    if (r !== null && (!(r.requests >= 0) || !(r.windowMs > 0))) throw new RangeError('rateLimit needs requests >= 0 and windowMs > 0');
    this._rateLimit = r;
    this.windowStart = 0;
    this.windowCount = 0;
  }

  get pending(): readonly FaultSpec[] {
    return this.active.map(({ remaining, ...f }) => ({ ...f, times: remaining }));
  }

  inject(f: FaultSpec): void {
    if (typeof f.path !== 'string' || !f.path.startsWith('/')) throw new RangeError('fault path must start with /');
    if (f.status === undefined && f.delayMs === undefined && f.answerDelayMs === undefined)
      throw new RangeError('a fault needs a status, a delayMs or an answerDelayMs');
    if (f.status !== undefined && f.answerDelayMs !== undefined)
      throw new RangeError('answerDelayMs is for requests that are carried out: not with a status');
    if (f.status !== undefined && (!Number.isInteger(f.status) || f.status < 100 || f.status > 599))
      throw new RangeError('fault status must be an HTTP status');
    const times = f.times ?? 1;
    if (!Number.isInteger(times) || times < 1) throw new RangeError('fault times must be a positive integer');
    this.active.push({ ...f, ...(f.method ? { method: f.method.toUpperCase() } : {}), remaining: times });
  }

  apply(u: FaultsUpdate): void {
    const list = u.inject === undefined ? [] : Array.isArray(u.inject) ? u.inject : [u.inject];
    for (const f of list) this.inject(f);
    if (u.dialinReady !== undefined) this.dialinReady = u.dialinReady;
    if (u.dialinReadyDelayMs !== undefined) this.dialinReadyDelayMs = u.dialinReadyDelayMs;
    if (u.rateLimit !== undefined) this.rateLimit = u.rateLimit;
  }

  clear(): void {
    this.active = [];
    this.dialinReady = 'normal';
    this.dialinReadyDelayMs = 0;
    this.rateLimit = null;
  }

  /** Decides for one /v1 request; `path` is relative to /v1, without query. Consumes faults. */
  decide(method: string, path: string, nowMs = Date.now()): FaultDecision {
    const rl = this._rateLimit;
    if (rl) {
      if (nowMs - this.windowStart >= rl.windowMs) {
        this.windowStart = nowMs;
        this.windowCount = 0;
      }
      this.windowCount++;
      if (this.windowCount > rl.requests) {
        const retryAfterSec = Math.max(1, Math.ceil((this.windowStart + rl.windowMs - nowMs) / 1000));
        return { kind: 'fail', status: 429, retryAfterSec, delayMs: 0, rateLimited: true };
      }
    }
    const m = method.toUpperCase();
    const i = this.active.findIndex(
      (f) => (!f.method || f.method === m) && (path === f.path || path.startsWith(f.path.endsWith('/') ? f.path : `${f.path}/`)),
    );
    if (i < 0) return { kind: 'pass', delayMs: 0 };
    const f = this.active[i]!;
    f.remaining--;
    if (f.remaining <= 0) this.active.splice(i, 1);
    const delayMs = f.delayMs ?? 0;
    if (f.status === undefined) return { kind: 'pass', delayMs, ...(f.answerDelayMs ? { answerDelayMs: f.answerDelayMs } : {}) };
    return {
      kind: 'fail',
      status: f.status,
      delayMs,
      rateLimited: false,
      ...(f.retryAfterSec === undefined ? {} : { retryAfterSec: f.retryAfterSec }),
    };
  }
}
