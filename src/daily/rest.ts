/**
 * Typed Daily REST client: one method per endpoint patchbay uses, each under a named retry policy
 * (src/daily/policies.ts). Works the same against https://api.daily.co/v1 and the emulator.
 * Failures are `DailyApiError`s (`retryable` for network errors, timeouts, 408/425/429 and 5xx).
 * Nothing outside src/daily builds a Daily request by hand.
 */
import { DailyApiError, isRetryableStatus, errorMessage } from '../core/errors.js';
import {
  retryPolicies,
  runWithPolicy,
  type Policies,
  type PolicyKnobs,
  type PolicyName,
  type RetryPolicy,
  type RunOptions,
} from './policies.js';
import { normalizeSipUri } from './sip.js';
import { priorityOf, type RatePriority } from './rate-limit.js';
import type {
  CreateDialinRoomRequest,
  CreateWebhookRequest,
  DailyDomain,
  DailyRoom,
  DailyRoomList,
  DailyRoomPresence,
  DailyWebhook,
  DialinConfig,
  MeetingTokenRequest,
  PinlessCallUpdateRequest,
  PinlessDialinEntry,
  RecordingStartAnswer,
  RecordingType,
  SipRoomProperties,
  DailyRecording,
} from './types.js';

export interface DailyRestOptions extends Partial<PolicyKnobs> {
  apiUrl: string;
  apiKey: string;
  /** Default per-attempt timeout (`DAILY_API_TIMEOUT_MS`). */
  timeoutMs: number;
  /** Overrides of the policy table (tests). */
  policies?: Partial<Policies>;
  /**
   * Waits for Daily's per-domain rate limit before each attempt (src/daily/rate-limit.ts: shared
   * through Redis in fleet mode, in process otherwise). `priority`: see `priorityOf`; `leaseMs`: the
   * attempt's timeout. The returned function (if any) is called once the answer is in (or the
   * attempt failed): the grant counts until then, and one window after.
   */
  rateLimit?: RestRateLimit;
}

/** See DailyRestOptions.rateLimit. */
export type RestRateLimit = (
  method: string,
  path: string,
  priority: RatePriority,
  signal: AbortSignal | undefined,
  leaseMs: number,
) => Promise<(() => void) | void>;

/** Per call: abort, a different policy (e.g. one attempt for a paced queue), a retry hook. */
export interface CallOptions extends RunOptions {
  policy?: PolicyName | RetryPolicy;
  /** Called before each attempt (attempt number from 1). */
  onAttempt?: (attempt: number) => void;
}

function parseRetryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  const secs = Number(value);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

const enc = encodeURIComponent;
const listOf = <T>(res: T[] | { data?: T[] } | undefined): T[] => (Array.isArray(res) ? res : (res?.data ?? []));

export class DailyRestClient {
  private readonly base: string;
  readonly policies: Policies;

  constructor(private readonly opts: DailyRestOptions) {
    this.base = opts.apiUrl.replace(/\/+$/, '');
    const table = retryPolicies({
      apiTimeoutMs: opts.apiTimeoutMs ?? opts.timeoutMs,
      ...(opts.pinlessUpdateTimeoutMs === undefined ? {} : { pinlessUpdateTimeoutMs: opts.pinlessUpdateTimeoutMs }),
      ...(opts.pinlessUpdateDeadlineMs === undefined ? {} : { pinlessUpdateDeadlineMs: opts.pinlessUpdateDeadlineMs }),
    });
    this.policies = { ...table, ...opts.policies };
  }

  get apiKey(): string {
    return this.opts.apiKey;
  }

  /** One HTTP attempt (after the rate limiter's grant: the wait does not count against the attempt's timeout). */
  private async send<T>(method: string, path: string, body: unknown, timeoutMs: number, outer?: AbortSignal): Promise<T> {
    let release: (() => void) | void = undefined;
    if (this.opts.rateLimit) {
      try {
        release = await this.opts.rateLimit(method, path, priorityOf(method, path), outer, timeoutMs);
      } catch (err) {
        throw new DailyApiError(`${method} ${path} not sent: ${errorMessage(err)}`, { retryable: false, cause: err });
      }
    }
    try {
      return await this.attempt<T>(method, path, body, timeoutMs, outer);
    } finally {
      release?.();
    }
  }

  private async attempt<T>(method: string, path: string, body: unknown, timeoutMs: number, outer?: AbortSignal): Promise<T> {
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = outer ? AbortSignal.any([outer, timeout]) : timeout;
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.opts.apiKey}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal,
      });
    } catch (err) {
      const aborted = outer?.aborted ?? false;
      throw new DailyApiError(
        timeout.aborted && !aborted
          ? `${method} ${path} timed out after ${timeoutMs} ms`
          : `${method} ${path} failed: ${errorMessage(err)}`,
        { retryable: !aborted, cause: err },
      );
    }
    const text = await res.text().catch(() => '');
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const e = (json ?? {}) as { error?: unknown; info?: unknown };
      const dailyError = typeof e.error === 'string' ? e.error : undefined;
      const info = typeof e.info === 'string' ? e.info : undefined;
      const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
      throw new DailyApiError(`${method} ${path} → ${res.status}${dailyError ? ` ${dailyError}` : ''}${info ? `: ${info}` : ''}`, {
        status: res.status,
        ...(dailyError === undefined ? {} : { dailyError }),
        ...(info === undefined ? {} : { info }),
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
        retryable: isRetryableStatus(res.status),
      });
    }
    return json as T;
  }

  private policy(p: PolicyName | RetryPolicy | undefined, dflt: PolicyName): RetryPolicy {
    if (p === undefined) return this.policies[dflt];
    return typeof p === 'string' ? this.policies[p] : p;
  }

  /** `attempt` (one request per call) under the method's policy. */
  private run<T>(dflt: PolicyName, o: CallOptions | undefined, attempt: (timeoutMs: number, n: number) => Promise<T>): Promise<T> {
    return runWithPolicy(
      this.policy(o?.policy, dflt),
      (n, timeoutMs) => {
        o?.onAttempt?.(n);
        return attempt(timeoutMs, n);
      },
      o,
    );
  }

  private call<T>(dflt: PolicyName, method: string, path: string, body: unknown, o?: CallOptions): Promise<T> {
    return this.run(dflt, o, (t) => this.send<T>(method, path, body, t, o?.signal));
  }

  // ── rooms ──

  /**
   * POST /rooms: a private room with SIP dial-in. Policy `create`. When an attempt timed out and a
   * later one is answered 400 "already exists" for the same (unique) name, the first was carried
   * out after all: the room is ours and is fetched instead. `onUncertain` hears of such a timeout
   * (the room may appear after we gave up; see the room service's late delete).
   */
  createDialinRoom(p: CreateDialinRoomRequest, o?: CallOptions & { onUncertain?: () => void }): Promise<DailyRoom> {
    const sip: SipRoomProperties = { display_name: p.displayName, video: false, sip_mode: 'dial-in', num_endpoints: p.numEndpoints ?? 1 };
    const body = {
      ...(p.name ? { name: p.name } : {}),
      privacy: 'private',
      properties: {
        exp: p.expSec,
        eject_at_room_exp: true,
        enable_dialout: p.enableDialout ?? false,
        sip,
        ...(p.enableRecording ? { enable_recording: p.enableRecording } : {}),
      },
    };
    let uncertain = false;
    return this.run('create', o, async (t) => {
      try {
        return await this.send<DailyRoom>('POST', '/rooms', body, t, o?.signal);
      } catch (err) {
        if (!(err instanceof DailyApiError)) throw err;
        if (err.status === undefined) {
          uncertain = true;
          o?.onUncertain?.();
        }
        if (uncertain && p.name && err.status === 400 && /already exists/i.test(`${err.info ?? ''} ${err.message}`)) {
          return this.send<DailyRoom>('GET', `/rooms/${enc(p.name)}`, undefined, t, o?.signal);
        }
        throw err;
      }
    });
  }

  /** GET /rooms/:name. Policy `query`. */
  getRoom(name: string, o?: CallOptions): Promise<DailyRoom> {
    return this.call('query', 'GET', `/rooms/${enc(name)}`, undefined, o);
  }

  /**
   * GET /rooms/:name/presence: who is in the room (as Daily last saw it: up to 15 s behind). A room
   * that does not exist is a DailyApiError with status 404. Policy `query`.
   */
  async roomPresence(name: string, o?: CallOptions): Promise<DailyRoomPresence> {
    const r = await this.call<Partial<DailyRoomPresence> | undefined>('query', 'GET', `/rooms/${enc(name)}/presence`, undefined, o);
    const data = Array.isArray(r?.data) ? r.data : [];
    return { total_count: typeof r?.total_count === 'number' ? r.total_count : data.length, data };
  }

  /**
   * GET /rooms (one page of at most 100, newest first). Daily's reference: `endingBefore` = rooms
   * created before (older than) that room id — the next page after the last room of this one;
   * `startingAfter` = created after it. Policy `query`.
   */
  listRooms(p: { limit?: number; startingAfter?: string; endingBefore?: string } = {}, o?: CallOptions): Promise<DailyRoomList> {
    const q = new URLSearchParams();
    if (p.limit !== undefined) q.set('limit', String(p.limit));
    if (p.startingAfter !== undefined) q.set('starting_after', p.startingAfter);
    if (p.endingBefore !== undefined) q.set('ending_before', p.endingBefore);
    const qs = q.size > 0 ? `?${q}` : '';
    return this.call<DailyRoomList | undefined>('query', 'GET', `/rooms${qs}`, undefined, o).then((r) => ({ ...r, data: listOf(r) }));
  }

  /** DELETE /rooms/:name; already gone (404) counts as deleted. Policy `cleanup`. */
  async deleteRoom(name: string, o?: CallOptions): Promise<void> {
    await this.run('cleanup', o, (t) =>
      this.send('DELETE', `/rooms/${enc(name)}`, undefined, t, o?.signal).catch((err: unknown) => {
        if (err instanceof DailyApiError && err.status === 404) return undefined;
        throw err;
      }),
    );
  }

  // ── meeting tokens ──

  /** POST /meeting-tokens (the REST alternative to self-signed tokens, see token.ts). Policy `create`. */
  async createMeetingToken(p: MeetingTokenRequest, o?: CallOptions): Promise<string> {
    const body = { properties: { room_name: p.roomName, user_name: p.userName, is_owner: p.isOwner ?? true, exp: p.expSec } };
    const res = await this.call<{ token?: unknown }>('create', 'POST', '/meeting-tokens', body, o);
    if (typeof res?.token !== 'string') throw new DailyApiError('POST /meeting-tokens returned no token', { retryable: false });
    return res.token;
  }

  /** GET /meeting-tokens/:token: the token's properties when Daily accepts it (throws 400 otherwise). Policy `query`. */
  validateMeetingToken(token: string, o?: CallOptions): Promise<Record<string, unknown>> {
    return this.call('query', 'GET', `/meeting-tokens/${enc(token)}`, undefined, o);
  }

  // ── dial-in ──

  /** POST /dialin/pinlessCallUpdate, with `sipUri` normalised to one `sip:` scheme. Policy `forward`. */
  pinlessCallUpdate(p: PinlessCallUpdateRequest, o?: CallOptions): Promise<unknown> {
    return this.call(
      'forward',
      'POST',
      '/dialin/pinlessCallUpdate',
      { callId: p.callId, callDomain: p.callDomain, sipUri: normalizeSipUri(p.sipUri) },
      o,
    );
  }

  // ── domain ──

  /** GET / (domain configuration; `domain_id` signs meeting tokens). Policy `query`. */
  getDomain(o?: CallOptions): Promise<DailyDomain> {
    return this.call('query', 'GET', '/', undefined, o);
  }

  /** POST / with `properties` (the legacy `pinless_dialin` array REPLACES the whole list). Policy `admin`. */
  setDomainProperties(properties: Record<string, unknown>, o?: CallOptions): Promise<DailyDomain> {
    return this.call('admin', 'POST', '/', { properties }, o);
  }

  /** GET /domain-dialin-config. Policy `query`. */
  async listDialinConfigs(o?: CallOptions): Promise<DialinConfig[]> {
    return listOf(await this.call<DialinConfig[] | { data?: DialinConfig[] }>('query', 'GET', '/domain-dialin-config', undefined, o));
  }

  /** POST /domain-dialin-config (a new pinless entry). Policy `admin`. */
  createDialinConfig(entry: PinlessDialinEntry, o?: CallOptions): Promise<DialinConfig> {
    return this.call('admin', 'POST', '/domain-dialin-config', entry, o);
  }

  /** PUT /domain-dialin-config/:id. Policy `admin`. */
  updateDialinConfig(id: string, entry: PinlessDialinEntry, o?: CallOptions): Promise<DialinConfig> {
    return this.call('admin', 'PUT', `/domain-dialin-config/${enc(id)}`, entry, o);
  }

  /** DELETE /domain-dialin-config/:id. Policy `admin`. */
  async deleteDialinConfig(id: string, o?: CallOptions): Promise<void> {
    await this.call('admin', 'DELETE', `/domain-dialin-config/${enc(id)}`, undefined, o);
  }

  // ── webhooks ──

  /** GET /webhooks. Policy `query`. */
  async listWebhooks(o?: CallOptions): Promise<DailyWebhook[]> {
    return listOf(await this.call<DailyWebhook[] | { data?: DailyWebhook[] }>('query', 'GET', '/webhooks', undefined, o));
  }

  /** GET /webhooks/:uuid. Policy `query`. */
  getWebhook(uuid: string, o?: CallOptions): Promise<DailyWebhook> {
    return this.call('query', 'GET', `/webhooks/${enc(uuid)}`, undefined, o);
  }

  /** POST /webhooks (Daily checks the URL answers 200 first). Policy `admin`. */
  createWebhook(w: CreateWebhookRequest, o?: CallOptions): Promise<DailyWebhook> {
    return this.call('admin', 'POST', '/webhooks', w, o);
  }

  /** POST /webhooks/:uuid (same URL: re-verify and re-activate). Policy `admin`. */
  updateWebhook(uuid: string, w: Partial<CreateWebhookRequest>, o?: CallOptions): Promise<DailyWebhook> {
    return this.call('admin', 'POST', `/webhooks/${enc(uuid)}`, w, o);
  }

  /** DELETE /webhooks/:uuid. Policy `admin`. */
  async deleteWebhook(uuid: string, o?: CallOptions): Promise<void> {
    await this.call('admin', 'DELETE', `/webhooks/${enc(uuid)}`, undefined, o);
  }

  // ── recordings ──

  /**
   * POST /rooms/:name/recordings/start (`start` rate class, behind the call path). One attempt
   * (policy `admin`, no retry: a start that timed out may have started, and a second would be
   * refused as already recording). Returns Daily's answer (the emulator's carries `recordingId`).
   */
  startRecording(roomName: string, p: { type: RecordingType; instanceId?: string }, o?: CallOptions): Promise<RecordingStartAnswer> {
    const body = { type: p.type, ...(p.instanceId ? { instanceId: p.instanceId } : {}) };
    return this.call<RecordingStartAnswer | undefined>('admin', 'POST', `/rooms/${enc(roomName)}/recordings/start`, body, {
      policy: { ...this.policies.admin, maxAttempts: 1 },
      ...o,
    }).then((r) => r ?? {});
  }

  /** POST /rooms/:name/recordings/stop (400 when none is active). Policy `admin`. */
  async stopRecording(roomName: string, p: { type: RecordingType; instanceId?: string }, o?: CallOptions): Promise<void> {
    const body = { type: p.type, ...(p.instanceId ? { instanceId: p.instanceId } : {}) };
    await this.call('admin', 'POST', `/rooms/${enc(roomName)}/recordings/stop`, body, o);
  }

  /** GET /recordings (newest first; `roomName`: that room's). Policy `query`. */
  async listRecordings(p: { roomName?: string; limit?: number } = {}, o?: CallOptions): Promise<DailyRecording[]> {
    const q = new URLSearchParams();
    if (p.roomName !== undefined) q.set('room_name', p.roomName);
    if (p.limit !== undefined) q.set('limit', String(p.limit));
    const qs = q.size > 0 ? `?${q}` : '';
    return listOf(await this.call<{ data?: DailyRecording[] } | undefined>('query', 'GET', `/recordings${qs}`, undefined, o));
  }

  /** GET /recordings/:id. Policy `query`. */
  getRecording(id: string, o?: CallOptions): Promise<DailyRecording> {
    return this.call('query', 'GET', `/recordings/${enc(id)}`, undefined, o);
  }

  /** GET /recordings/:id/access-link: `{download_link, expires}` (epoch seconds). Policy `query`. */
  recordingAccessLink(id: string, validForSecs?: number, o?: CallOptions): Promise<{ download_link: string; expires: number }> {
    const qs = validForSecs === undefined ? '' : `?valid_for_secs=${validForSecs}`;
    return this.call('query', 'GET', `/recordings/${enc(id)}/access-link${qs}`, undefined, o);
  }

  /** DELETE /recordings/:id; already gone (404) counts as deleted. Policy `cleanup`. */
  async deleteRecording(id: string, o?: CallOptions): Promise<void> {
    await this.run('cleanup', o, (t) =>
      this.send('DELETE', `/recordings/${enc(id)}`, undefined, t, o?.signal).catch((err: unknown) => {
        if (err instanceof DailyApiError && err.status === 404) return undefined;
        throw err;
      }),
    );
  }
}
