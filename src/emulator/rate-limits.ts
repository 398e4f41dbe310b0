/**
 * Daily's REST rate limits, on by default (docs/emulator.md, "Rate limits"). Daily limits per
 * domain: the emulator serves one domain, so by default one set of windows counts every
 * authenticated /v1 request, whoever sends it (a fleet of replicas sharing one emulator shares
 * them, as on Daily). Sliding windows; a refused request is not counted.
 */
import { Type, type Static } from 'typebox';

/** Endpoint classes of Daily's documented limits. */
export type RateLimitClass = 'default' | 'room-delete' | 'call-start';

export const RateWindowSchema = Type.Object(
  { requests: Type.Integer({ minimum: 1 }), windowMs: Type.Integer({ minimum: 1 }) },
  { additionalProperties: false },
);
export type RateWindow = Static<typeof RateWindowSchema>;

export const RateLimitSettingsSchema = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean()),
    /** `domain` (Daily's): one set of windows for everything. `client`: one per remote address (not Daily; experiments only). */
    scope: Type.Optional(Type.Union([Type.Literal('domain'), Type.Literal('client')])),
    classes: Type.Optional(
      Type.Object(
        {
          default: Type.Optional(Type.Array(RateWindowSchema)),
          'room-delete': Type.Optional(Type.Array(RateWindowSchema)),
          'call-start': Type.Optional(Type.Array(RateWindowSchema)),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
/** `rateLimits` of EmulatorOptions and the body of `PUT /_emulator/rate-limits`. */
export type RateLimitSettings = Static<typeof RateLimitSettingsSchema>;

/**
 * Daily's documented figures: most endpoints 20 requests/s, in bursts up to 100 over 5 s;
 * `DELETE /rooms/:name` 2/s, up to 50 over 30 s; starting a recording, live stream or
 * PSTN/SIP dial-out 1/s, up to 5 over 5 s.
 */
export const DAILY_RATE_LIMITS: Readonly<Record<RateLimitClass, readonly RateWindow[]>> = Object.freeze({
  default: [{ requests: 100, windowMs: 5_000 }],
  'room-delete': [{ requests: 50, windowMs: 30_000 }],
  'call-start': [{ requests: 5, windowMs: 5_000 }],
});

/** The class of a /v1 request (`path` relative to /v1, no query). */
export function rateLimitClass(method: string, path: string): RateLimitClass {
  const m = method.toUpperCase();
  if (m === 'DELETE' && /^\/rooms\/[^/]+\/?$/.test(path)) return 'room-delete';
  if (m === 'POST' && /^\/rooms\/[^/]+\/(dialOut|recordings|live-streaming)\/start\/?$/.test(path)) return 'call-start';
  return 'default';
}

export interface RateDecision {
  ok: boolean;
  class: RateLimitClass;
}

export class DailyRateLimits {
  private enabledFlag: boolean;
  private scopeValue: 'domain' | 'client';
  private classes: Record<RateLimitClass, RateWindow[]>;
  /** Accepted request times per scope key and class, oldest first. */
  private readonly logs = new Map<string, number[]>();

  constructor(settings: RateLimitSettings | boolean = true) {
    const s = typeof settings === 'boolean' ? { enabled: settings } : settings;
    this.enabledFlag = s.enabled ?? true;
    this.scopeValue = s.scope ?? 'domain';
    this.classes = {
      default: [...DAILY_RATE_LIMITS.default],
      'room-delete': [...DAILY_RATE_LIMITS['room-delete']],
      'call-start': [...DAILY_RATE_LIMITS['call-start']],
    };
    this.update({ ...(s.classes ? { classes: s.classes } : {}) });
  }

  get enabled(): boolean {
    return this.enabledFlag;
  }

  settings(): Required<Pick<RateLimitSettings, 'enabled' | 'scope'>> & { classes: Record<RateLimitClass, RateWindow[]> } {
    return { enabled: this.enabledFlag, scope: this.scopeValue, classes: structuredClone(this.classes) };
  }

  /** Changes what is given; forgets the counted requests. */
  update(s: RateLimitSettings): void {
    if (s.enabled !== undefined) this.enabledFlag = s.enabled;
    if (s.scope !== undefined) this.scopeValue = s.scope;
    for (const [k, windows] of Object.entries(s.classes ?? {})) {
      if (windows === undefined) continue;
      for (const w of windows) {
        if (!Number.isInteger(w.requests) || w.requests < 1 || !Number.isInteger(w.windowMs) || w.windowMs < 1) {
          throw new RangeError('a rate window needs integer requests >= 1 and windowMs >= 1');
        }
      }
      this.classes[k as RateLimitClass] = windows.map((w) => ({ ...w }));
    }
    this.logs.clear();
  }

  /** Counts one authenticated /v1 request; `ok: false` → answer 429. */
  take(method: string, path: string, client: string, nowMs = Date.now()): RateDecision {
    const cls = rateLimitClass(method, path);
    if (!this.enabledFlag) return { ok: true, class: cls };
    const windows = this.classes[cls];
    const key = `${this.scopeValue === 'domain' ? 'domain' : client} ${cls}`;
    let log = this.logs.get(key);
    if (!log) {
      log = [];
      this.logs.set(key, log);
    }
    const longest = Math.max(...windows.map((w) => w.windowMs));
    while (log.length > 0 && log[0]! <= nowMs - longest) log.shift();
    for (const w of windows) {
      let n = 0;
      for (let i = log.length - 1; i >= 0 && log[i]! > nowMs - w.windowMs; i--) n++;
      if (n >= w.requests) return { ok: false, class: cls };
    }
    log.push(nowMs);
    return { ok: true, class: cls };
  }
}
