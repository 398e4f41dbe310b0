/**
 * Daily's domain webhooks (`POST /webhooks` on Daily's REST API): the event envelope, the
 * verification request Daily sends when a webhook is created or updated, basic auth, and the
 * dedupe of re-sent events. Signatures use `verifyWebhookSignature` (signature.ts).
 *
 * Envelope (every event): `{version, type, id, payload, event_ts}`; `id` identifies the event
 * (the same on every retry), `event_ts` is when the webhook itself was sent (seconds).
 */
import { timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { Type, type Static } from 'typebox';

/** The domain events patchbay subscribes to (and the emulator sends). */
export const DOMAIN_EVENT_TYPES = [
  'dialin.ready',
  'dialin.connected',
  'dialin.stopped',
  'dialin.error',
  'dialin.warning',
  'meeting.started',
  'meeting.ended',
  'participant.joined',
  'participant.left',
] as const;
export type DomainEventType = (typeof DOMAIN_EVENT_TYPES)[number];

export const DomainEventBody = Type.Object(
  {
    version: Type.Optional(Type.String({ maxLength: 32 })),
    type: Type.String({ minLength: 1, maxLength: 64 }),
    id: Type.String({ minLength: 1, maxLength: 128 }),
    payload: Type.Object({}, { additionalProperties: true }),
    event_ts: Type.Optional(Type.Number()),
  },
  { additionalProperties: true },
);
export type DomainEventBody = Static<typeof DomainEventBody>;

/** The request Daily sends to a webhook URL on creation/update: `{"test": "test"}`. It must get a 200. */
export function isWebhookVerification(body: unknown): boolean {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false;
  const keys = Object.keys(body);
  return keys.length === 1 && keys[0] === 'test';
}

/** Body of Daily's verification request, as the emulator sends it. */
export const WEBHOOK_VERIFICATION_BODY = { test: 'test' } as const;

/** Checks `Authorization: Basic base64(user:password)` against `expected` (`user:password`) in constant time. */
export function checkBasicAuth(header: string | undefined, expected: string): boolean {
  const m = typeof header === 'string' ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header) : null;
  const given = Buffer.from(m ? Buffer.from(m[1]!, 'base64').toString('utf8') : '');
  const want = Buffer.from(expected);
  // Compare equal-length buffers always, so the length does not leak through timing.
  const padded = Buffer.alloc(want.length);
  given.copy(padded, 0, 0, Math.min(given.length, want.length));
  return timingSafeEqual(padded, want) && given.length === want.length;
}

/** `Authorization` header value for `user:password` (or an already-encoded credential). */
export function basicAuthHeader(credentials: string): string {
  return `Basic ${credentials.includes(':') ? Buffer.from(credentials).toString('base64') : credentials}`;
}

/**
 * Event ids seen recently. Daily re-sends an event (same `id`) when it did not get a 200 in time
 * (`exponential` retries up to 5 times with growing gaps), so an id is remembered for `ttlMs`,
 * at most `max` of them.
 */
export class EventDeduper {
  private readonly seen: LRUCache<string, number>;

  constructor(opts: { ttlMs: number; max: number }) {
    this.seen = new LRUCache<string, number>({ max: opts.max, ttl: opts.ttlMs, ttlAutopurge: false });
  }

  /** True the first time `id` is offered (within the TTL), false for a repeat. */
  firstSeen(id: string, nowMs = Date.now()): boolean {
    if (this.seen.has(id)) return false;
    this.seen.set(id, nowMs);
    return true;
  }

  get size(): number {
    return this.seen.size;
  }
}
