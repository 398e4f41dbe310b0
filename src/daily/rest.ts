/**
 * Daily REST client (the subset patchbay uses). Works the same against https://api.daily.co/v1
 * and the local emulator. Every request has its own timeout; failures become `DailyApiError`
 * with `retryable` set for network errors, timeouts, 408/425/429 and 5xx.
 */
import { DailyApiError, isRetryableStatus } from '../errors.js';
import type { DailyRoom, SipRoomProperties } from './types.js';
import { withRetry, type RetryOptions } from './retry.js';

export interface DailyRestOptions {
  apiUrl: string;
  apiKey: string;
  timeoutMs: number;
}

export interface RequestOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

function parseRetryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  const secs = Number(value);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

export class DailyRestClient {
  private readonly base: string;

  constructor(private readonly opts: DailyRestOptions) {
    this.base = opts.apiUrl.replace(/\/+$/, '');
  }

  async request<T>(method: string, path: string, body?: unknown, ro: RequestOptions = {}): Promise<T> {
    const timeoutMs = ro.timeoutMs ?? this.opts.timeoutMs;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = ro.signal ? AbortSignal.any([ro.signal, timeout]) : timeout;
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
      const timedOut = timeout.aborted;
      const aborted = ro.signal?.aborted ?? false;
      throw new DailyApiError(
        timedOut ? `${method} ${path} timed out after ${timeoutMs} ms` : `${method} ${path} failed: ${(err as Error).message}`,
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

  /** Creates a room with SIP dial-in enabled. */
  createDialinRoom(
    p: { displayName: string; expSec: number; numEndpoints?: number; name?: string; enableDialout?: boolean },
    ro?: RequestOptions,
  ): Promise<DailyRoom> {
    const sip: SipRoomProperties = {
      display_name: p.displayName,
      video: false,
      sip_mode: 'dial-in',
      num_endpoints: p.numEndpoints ?? 1,
    };
    return this.request<DailyRoom>(
      'POST',
      '/rooms',
      {
        ...(p.name ? { name: p.name } : {}),
        privacy: 'private',
        properties: { exp: p.expSec, eject_at_room_exp: true, enable_dialout: p.enableDialout ?? false, sip },
      },
      ro,
    );
  }

  async createMeetingToken(p: { roomName: string; userName: string; expSec: number; isOwner?: boolean }, ro?: RequestOptions): Promise<string> {
    const res = await this.request<{ token: string }>(
      'POST',
      '/meeting-tokens',
      { properties: { room_name: p.roomName, user_name: p.userName, is_owner: p.isOwner ?? true, exp: p.expSec } },
      ro,
    );
    if (typeof res?.token !== 'string') throw new DailyApiError('POST /meeting-tokens returned no token', { retryable: false });
    return res.token;
  }

  async deleteRoom(name: string, ro?: RequestOptions): Promise<void> {
    try {
      await this.request('DELETE', `/rooms/${encodeURIComponent(name)}`, undefined, ro);
    } catch (err) {
      // Already gone is fine.
      if (err instanceof DailyApiError && err.status === 404) return;
      throw err;
    }
  }

  pinlessCallUpdate(p: { callId: string; callDomain: string; sipUri: string }, ro?: RequestOptions): Promise<unknown> {
    return this.request('POST', '/dialin/pinlessCallUpdate', p, ro);
  }

  /** `fn` with retries on retryable errors until `deadlineMs`. */
  retrying<T>(fn: (remainingMs: number) => Promise<T>, opts: RetryOptions): Promise<T> {
    return withRetry((_attempt, remaining) => fn(remaining), opts);
  }
}
