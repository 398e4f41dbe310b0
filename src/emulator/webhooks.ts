/**
 * Daily's domain webhooks, emulated: the `/v1/webhooks` REST API and the delivery of domain
 * events (`dialin.*`, `meeting.*`, `participant.*`) to the registered URL.
 *
 * What Daily's docs say, and the emulator does:
 *  - creating (or updating) a webhook first POSTs `{"test":"test"}` to its URL; anything but a
 *    200 in time fails the request with a 400 and nothing is stored;
 *  - `hmac` is a base64 secret (generated when omitted, returned in the answer); every request
 *    carries `X-Webhook-Timestamp` and `X-Webhook-Signature` = base64(HMAC-SHA256(secret,
 *    `${timestamp}.${body}`)), and `Authorization: Basic …` when `basicAuth` is set;
 *  - events are `{version, type, id, payload, event_ts}`; the `id` is the same on every retry;
 *    one webhook gets its events one at a time, in order (a retry holds back the later ones);
 *  - `retryType: circuit-breaker` (default): one attempt per event; 3 consecutive failures put the
 *    webhook in state FAILED and it receives nothing more;
 *    `retryType: exponential`: an event is re-sent up to 5 times with doubling gaps; when all
 *    attempts fail the webhook goes FAILED;
 *  - `failedCount` counts consecutive failures (a success resets it);
 *  - `POST /webhooks/:uuid` with the same URL re-verifies the endpoint and re-activates a FAILED webhook.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { signWebhook } from '../daily/signature.js';
import { basicAuthHeader, WEBHOOK_VERIFICATION_BODY } from '../daily/webhook-events.js';
import { ApiError } from './errors.js';
import type { Timers } from './timers.js';
import { errorMessage } from '../core/errors.js';

/** Event types Daily accepts in `eventTypes` (the emulator sends the dial-in, meeting and participant ones). */
export const WEBHOOK_EVENT_TYPES = [
  'recording.ready-to-download',
  'recording.started',
  'recording.error',
  'streaming.started',
  'streaming.updated',
  'streaming.ended',
  'streaming.error',
  'meeting.started',
  'meeting.ended',
  'participant.joined',
  'participant.left',
  'waiting-participant.joined',
  'waiting-participant.left',
  'batch-processor.job-finished',
  'batch-processor.error',
  'dialout.connected',
  'dialout.answered',
  'dialout.stopped',
  'dialout.error',
  'dialout.warning',
  'dialin.ready',
  'dialin.connected',
  'dialin.stopped',
  'dialin.error',
  'dialin.warning',
  'transcript.started',
  'transcript.ready-to-download',
  'transcript.error',
] as const;

export type RetryType = 'circuit-breaker' | 'exponential';
export type WebhookState = 'ACTIVE' | 'FAILED';

export interface WebhookJson {
  uuid: string;
  url: string;
  hmac: string;
  basicAuth: string | null;
  retryType: RetryType;
  eventTypes: string[];
  state: WebhookState;
  failedCount: number;
  lastMomentPushed: string | null;
  domainId: string;
  createdAt: string;
  updatedAt: string;
}

export interface DomainWebhooksOptions {
  domainId: string;
  timers: Timers;
  log: Logger;
  /** How long the verification request may take. Default 5 000. */
  verifyTimeoutMs?: number;
  /** How long one delivery may take. Default 5 000. */
  deliveryTimeoutMs?: number;
  /** First gap of `exponential` retries; doubles each time. Default 1 000. */
  retryBaseMs?: number;
}

/** Consecutive failures that trip the circuit breaker. */
export const CIRCUIT_BREAKER_FAILURES = 3;
/** Re-sends of one event with `retryType: exponential`. */
export const EXPONENTIAL_RETRIES = 5;

export interface DeliveryRecord {
  webhook: string;
  eventId: string;
  type: string;
  attempt: number;
  status?: number;
  error?: string;
  atMs: number;
}

const isWebhookEventType = (t: unknown): boolean => WEBHOOK_EVENT_TYPES.some((e) => e === t);
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export class DomainWebhooks {
  private readonly hooks = new Map<string, WebhookJson>();
  private readonly aborts = new Set<AbortController>();
  /** Per webhook, the tail of its delivery queue: events go out one at a time, in order. */
  private readonly queues = new Map<string, Promise<void>>();
  private closed = false;
  /** Every delivery attempt, oldest first (the last 500), for tests and the control API. */
  readonly deliveries: DeliveryRecord[] = [];

  constructor(private readonly opts: DomainWebhooksOptions) {}

  list(): WebhookJson[] {
    return [...this.hooks.values()].map((h) => ({ ...h, eventTypes: [...h.eventTypes] }));
  }

  get(uuid: string): WebhookJson {
    const h = this.hooks.get(uuid);
    if (!h) throw new ApiError(404, 'not-found', `webhook ${uuid} not found`);
    return { ...h, eventTypes: [...h.eventTypes] };
  }

  async create(body: unknown): Promise<WebhookJson> {
    const p = this.validate(body, true);
    const now = new Date().toISOString();
    const hook: WebhookJson = {
      uuid: randomUUID(),
      url: p.url!,
      hmac: p.hmac ?? randomBytes(32).toString('base64'),
      basicAuth: p.basicAuth ?? null,
      retryType: p.retryType ?? 'circuit-breaker',
      eventTypes: p.eventTypes ?? [],
      state: 'ACTIVE',
      failedCount: 0,
      lastMomentPushed: null,
      domainId: this.opts.domainId,
      createdAt: now,
      updatedAt: now,
    };
    await this.verify(hook);
    this.hooks.set(hook.uuid, hook);
    this.opts.log.debug({ webhook: hook.uuid, url: hook.url, eventTypes: hook.eventTypes }, 'emulator: webhook created');
    return this.get(hook.uuid);
  }

  /** POST /webhooks/:uuid: change fields; re-verifies the URL and re-activates a FAILED webhook. */
  async update(uuid: string, body: unknown): Promise<WebhookJson> {
    const cur = this.hooks.get(uuid);
    if (!cur) throw new ApiError(404, 'not-found', `webhook ${uuid} not found`);
    const p = this.validate(body, false);
    const next: WebhookJson = {
      ...cur,
      ...(p.url === undefined ? {} : { url: p.url }),
      ...(p.hmac === undefined ? {} : { hmac: p.hmac }),
      ...(p.basicAuth === undefined ? {} : { basicAuth: p.basicAuth }),
      ...(p.retryType === undefined ? {} : { retryType: p.retryType }),
      ...(p.eventTypes === undefined ? {} : { eventTypes: p.eventTypes }),
    };
    await this.verify(next);
    Object.assign(cur, next, { state: 'ACTIVE', failedCount: 0, updatedAt: new Date().toISOString() });
    return this.get(uuid);
  }

  delete(uuid: string): void {
    if (!this.hooks.delete(uuid)) throw new ApiError(404, 'not-found', `webhook ${uuid} not found`);
  }

  /** Sends `type` to every ACTIVE webhook subscribed to it. Never throws. */
  emit(type: string, payload: Record<string, unknown>): void {
    if (this.closed) return;
    for (const hook of this.hooks.values()) {
      if (hook.state !== 'ACTIVE' || !hook.eventTypes.includes(type)) continue;
      const event = { version: '1.0.0', type, id: randomUUID(), payload };
      const next = (this.queues.get(hook.uuid) ?? Promise.resolve())
        .then(() => this.deliver(hook, event))
        .catch((err: unknown) => this.opts.log.error({ err, webhook: hook.uuid }, 'emulator: webhook delivery crashed'));
      this.queues.set(hook.uuid, next);
      void next.finally(() => {
        if (this.queues.get(hook.uuid) === next) this.queues.delete(hook.uuid);
      });
    }
  }

  get inFlight(): number {
    return this.aborts.size;
  }

  close(): void {
    this.closed = true;
    for (const ac of this.aborts) ac.abort(new Error('emulator closed'));
  }

  private validate(
    body: unknown,
    creating: boolean,
  ): Partial<Pick<WebhookJson, 'url' | 'hmac' | 'retryType' | 'eventTypes'>> & { basicAuth?: string } {
    if (!isObj(body)) throw new ApiError(400, 'invalid-request-error', 'body must be a JSON object');
    const known = ['url', 'hmac', 'basicAuth', 'retryType', 'eventTypes'];
    for (const k of Object.keys(body)) if (!known.includes(k)) throw new ApiError(400, 'invalid-request-error', `unknown parameter '${k}'`);
    const { url, hmac, basicAuth, retryType, eventTypes } = body;
    if (url === undefined && creating) throw new ApiError(400, 'invalid-request-error', 'url is required');
    if (url !== undefined) {
      let ok: boolean;
      try {
        const u = new URL(String(url));
        ok = typeof url === 'string' && (u.protocol === 'https:' || u.protocol === 'http:');
      } catch {
        ok = false;
      }
      if (!ok) throw new ApiError(400, 'invalid-request-error', 'url must be an http(s) URL');
    }
    if (hmac !== undefined && (typeof hmac !== 'string' || !BASE64.test(hmac) || Buffer.from(hmac, 'base64').length < 16)) {
      throw new ApiError(400, 'invalid-request-error', 'hmac must be a base64-encoded secret (at least 16 bytes)');
    }
    if (basicAuth !== undefined && (typeof basicAuth !== 'string' || basicAuth.length === 0)) {
      throw new ApiError(400, 'invalid-request-error', 'basicAuth must be a non-empty string');
    }
    if (retryType !== undefined && retryType !== 'circuit-breaker' && retryType !== 'exponential') {
      throw new ApiError(400, 'invalid-request-error', "retryType must be 'circuit-breaker' or 'exponential'");
    }
    if (eventTypes !== undefined) {
      if (!Array.isArray(eventTypes) || eventTypes.some((t) => typeof t !== 'string')) {
        throw new ApiError(400, 'invalid-request-error', 'eventTypes must be an array of strings');
      }
      const bad = eventTypes.find((t) => !isWebhookEventType(t));
      if (bad !== undefined) throw new ApiError(400, 'invalid-request-error', `unknown event type '${String(bad)}'`);
    }
    return {
      ...(typeof url === 'string' ? { url } : {}),
      ...(hmac === undefined ? {} : { hmac: hmac }),
      ...(basicAuth === undefined ? {} : { basicAuth: basicAuth }),
      ...(retryType === undefined ? {} : { retryType: retryType }),
      ...(Array.isArray(eventTypes) ? { eventTypes: [...new Set(eventTypes.filter((t) => typeof t === 'string'))] } : {}),
    };
  }

  private async post(hook: WebhookJson, body: string, timeoutMs: number): Promise<{ status?: number; error?: string }> {
    const ts = String(Math.floor(Date.now() / 1000));
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'x-webhook-timestamp': ts,
      'x-webhook-signature': signWebhook(body, hook.hmac, ts),
    };
    if (hook.basicAuth) headers.authorization = basicAuthHeader(hook.basicAuth);
    const ac = new AbortController();
    this.aborts.add(ac);
    const cancel = this.opts.timers.after(timeoutMs, () => ac.abort(new Error(`no answer within ${timeoutMs} ms`)));
    try {
      const res = await fetch(hook.url, { method: 'POST', headers, body, signal: ac.signal });
      await res.arrayBuffer().catch(() => undefined);
      return { status: res.status };
    } catch (err) {
      return { error: ac.signal.aborted ? errorMessage(ac.signal.reason ?? 'aborted') : errorMessage(err) };
    } finally {
      cancel();
      this.aborts.delete(ac);
    }
  }

  private async verify(hook: WebhookJson): Promise<void> {
    const r = await this.post(hook, JSON.stringify(WEBHOOK_VERIFICATION_BODY), this.opts.verifyTimeoutMs ?? 5_000);
    if (r.status !== 200) {
      const why = r.status === undefined ? `the request failed: ${r.error}` : `it answered ${r.status}`;
      throw new ApiError(400, 'invalid-request-error', `webhook verification failed: POST ${hook.url} must answer 200 (${why})`);
    }
  }

  private record(d: DeliveryRecord): void {
    this.deliveries.push(d);
    if (this.deliveries.length > 500) this.deliveries.splice(0, this.deliveries.length - 500);
  }

  private async deliver(
    hook: WebhookJson,
    event: { version: string; type: string; id: string; payload: Record<string, unknown> },
  ): Promise<void> {
    const attempts = hook.retryType === 'exponential' ? 1 + EXPONENTIAL_RETRIES : 1;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (this.closed || hook.state !== 'ACTIVE' || this.hooks.get(hook.uuid) !== hook) return;
      // event_ts: when this request is sent (differs between retries); id: the same every time.
      const body = JSON.stringify({ ...event, event_ts: Date.now() / 1000 });
      const r = await this.post(hook, body, this.opts.deliveryTimeoutMs ?? 5_000);
      this.record({ webhook: hook.uuid, eventId: event.id, type: event.type, attempt, ...r, atMs: Date.now() });
      if (r.status === 200) {
        hook.failedCount = 0;
        hook.lastMomentPushed = new Date().toISOString();
        return;
      }
      hook.failedCount++;
      this.opts.log.debug(
        { webhook: hook.uuid, event: event.type, attempt, status: r.status, err: r.error },
        'emulator: webhook delivery failed',
      );
      if (hook.retryType === 'circuit-breaker' && hook.failedCount >= CIRCUIT_BREAKER_FAILURES) {
        this.fail(hook, `${hook.failedCount} consecutive failures`);
        return;
      }
      if (attempt < attempts) await this.opts.timers.sleep((this.opts.retryBaseMs ?? 1_000) * 2 ** (attempt - 1));
    }
    if (hook.retryType === 'exponential') this.fail(hook, `event ${event.id} failed ${attempts} times`);
  }

  private fail(hook: WebhookJson, why: string): void {
    if (hook.state === 'FAILED') return;
    hook.state = 'FAILED';
    hook.updatedAt = new Date().toISOString();
    this.opts.log.info({ webhook: hook.uuid, why }, 'emulator: webhook FAILED; re-activate it with POST /webhooks/:uuid');
  }
}

/** `/webhooks` routes. Register inside the authenticated `/v1` plugin. */
export function webhookRoutes(hooks: DomainWebhooks) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    app.get('/webhooks', async () => hooks.list());
    app.get<{ Params: { uuid: string } }>('/webhooks/:uuid', async (req) => hooks.get(req.params.uuid));
    app.post('/webhooks', async (req) => hooks.create(req.body));
    app.post<{ Params: { uuid: string } }>('/webhooks/:uuid', async (req) => hooks.update(req.params.uuid, req.body));
    app.delete<{ Params: { uuid: string } }>('/webhooks/:uuid', async (req) => {
      hooks.delete(req.params.uuid);
      return { deleted: true, uuid: req.params.uuid };
    });
  };
}

/** What the emulator core reports to domain webhooks (structural, so the core does not depend on this file). */
export interface PlatformObserver {
  meetingStarted(room: string): void;
  meetingEnded(room: string): void;
  participantJoined(room: string, p: { sessionId: string; userName?: string; owner?: boolean; isSip?: boolean }): void;
  participantLeft(room: string, p: { sessionId: string; userName?: string; owner?: boolean; isSip?: boolean }): void;
  dialinReady(room: string, sipEndpoint: string): void;
  dialinConnected(room: string, c: DialinLeg): void;
  dialinStopped(room: string, c: DialinLeg): void;
  dialinError(room: string, c: DialinLeg, message: string): void;
}

export interface DialinLeg {
  sessionId: string;
  from: string;
  displayName?: string;
  sipHeaders?: Record<string, string>;
}

/** Turns platform happenings into Daily's domain event payloads and hands them to `hooks.emit`. */
export function webhookObserver(hooks: DomainWebhooks, domainId: string): PlatformObserver {
  const meetings = new Map<string, { id: string; startSec: number }>();
  const joined = new Map<string, number>();
  const nowSec = (): number => Math.floor(Date.now() / 1000);
  const leg = (room: string, c: DialinLeg) => ({
    timestamp: nowSec(),
    session_id: c.sessionId,
    sip_from: c.from,
    domain_id: domainId,
    room,
    ...(c.displayName === undefined ? {} : { display_name: c.displayName }),
    ...(c.sipHeaders && Object.keys(c.sipHeaders).length > 0 ? { sip_headers: { ...c.sipHeaders } } : {}),
  });
  const participant = (room: string, p: { sessionId: string; userName?: string; owner?: boolean }) => ({
    room,
    session_id: p.sessionId,
    user_id: p.sessionId,
    user_name: p.userName ?? null,
    owner: p.owner ?? false,
    joined_at: joined.get(p.sessionId) ?? nowSec(),
  });
  return {
    meetingStarted(room) {
      const m = { id: randomUUID(), startSec: nowSec() };
      meetings.set(room, m);
      hooks.emit('meeting.started', { start_ts: m.startSec, meeting_id: m.id, room });
    },
    meetingEnded(room) {
      const m = meetings.get(room);
      if (!m) return;
      meetings.delete(room);
      hooks.emit('meeting.ended', { start_ts: m.startSec, end_ts: nowSec(), meeting_id: m.id, room });
    },
    participantJoined(room, p) {
      joined.set(p.sessionId, nowSec());
      hooks.emit('participant.joined', participant(room, p));
    },
    participantLeft(room, p) {
      const body = participant(room, p);
      joined.delete(p.sessionId);
      hooks.emit('participant.left', { ...body, duration: Math.max(0, nowSec() - body.joined_at) });
    },
    dialinReady(room, sipEndpoint) {
      hooks.emit('dialin.ready', { timestamp: nowSec(), domain_id: domainId, room, sip_endpoint: sipEndpoint });
    },
    dialinConnected(room, c) {
      hooks.emit('dialin.connected', leg(room, c));
    },
    dialinStopped(room, c) {
      hooks.emit('dialin.stopped', leg(room, c));
    },
    dialinError(room, c, message) {
      hooks.emit('dialin.error', { timestamp: nowSec(), session_id: c.sessionId, domain_id: domainId, room, error_msg: message });
    },
  };
}
