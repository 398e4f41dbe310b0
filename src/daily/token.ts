/**
 * Bot meeting tokens: self-signed (default) or from POST /meeting-tokens (`DAILY_TOKEN_MODE`).
 *
 * Daily documents tokens signed locally with the domain's API key: an HS256 JWT whose payload uses
 * abbreviated property names. patchbay sets the same properties it would ask the REST API for:
 *
 * | claim | Daily property | value                                         |
 * |-------|----------------|-----------------------------------------------|
 * | `r`   | room_name      | the call's room                               |
 * | `d`   | domain_id      | `DAILY_DOMAIN_ID`, else `domain_id` of `GET /` |
 * | `u`   | user_name      | `patchbay-bot`                                |
 * | `o`   | is_owner       | `true`                                        |
 * | `iat` | (JWT)          | now, epoch seconds                            |
 * | `exp` | exp            | the room's expiry, epoch seconds              |
 *
 * Modes: `self-signed` (needs the domain id: from the variable, or one `GET /` at start-up),
 * `rest` (a POST /meeting-tokens per call, the old way), `auto` (default: self-signed once
 * `GET /meeting-tokens/:token` has accepted a signed probe token at start-up, else REST, checked again
 * later). No token request is then on the call path.
 */
import { createHmac } from 'node:crypto';
import type { Logger } from 'pino';
import type { DailyRestClient } from './rest.js';
import type { MeetingTokenRequest } from './types.js';
import { errorMessage } from '../core/errors.js';

export type TokenMode = 'auto' | 'self-signed' | 'rest';

export interface SelfSignedClaims {
  r: string;
  d: string;
  u?: string;
  o?: boolean;
  iat: number;
  exp: number;
}

const b64url = (s: string): string => Buffer.from(s, 'utf8').toString('base64url');

/** An HS256 JWT over `claims`, keyed with the API key (node:crypto; no library needed for HS256). */
export function signMeetingToken(claims: SelfSignedClaims, apiKey: string): string {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac('sha256', apiKey).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

export function claimsFor(req: MeetingTokenRequest, domainId: string, nowMs = Date.now()): SelfSignedClaims {
  return { r: req.roomName, d: domainId, u: req.userName, o: req.isOwner ?? true, iat: Math.floor(nowMs / 1000), exp: req.expSec };
}

export interface TokenSource {
  /** The mode in use now (`auto` resolves to one of the others). */
  readonly mode: 'self-signed' | 'rest' | 'pending';
  /** A token for the bot; self-signed tokens cost no request. */
  mint(req: MeetingTokenRequest, o?: { signal?: AbortSignal }): Promise<string>;
  close(): void;
}

const RECHECK_MS = 60_000;

export function createTokenSource(deps: {
  rest: DailyRestClient;
  mode: TokenMode;
  domainId: string | undefined;
  logger: Logger;
}): TokenSource {
  const { rest, logger } = deps;
  const log = logger.child({ component: 'tokens' });
  let mode: TokenSource['mode'] = deps.mode === 'rest' ? 'rest' : deps.domainId && deps.mode === 'self-signed' ? 'self-signed' : 'pending';
  let domainId = deps.domainId;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let checks = 0;

  const resolve = async (): Promise<void> => {
    try {
      domainId ??= (await rest.getDomain()).domain_id;
      if (typeof domainId !== 'string' || domainId.length === 0) throw new Error('GET / returned no domain_id');
      if (deps.mode === 'self-signed') {
        mode = 'self-signed';
        return;
      }
      // auto: check that Daily accepts our signature before relying on it.
      const probe = signMeetingToken(
        { r: 'patchbay-token-probe', d: domainId, iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 60 },
        rest.apiKey,
      );
      await rest.validateMeetingToken(probe);
      mode = 'self-signed';
      log.info({ domainId }, 'meeting tokens: self-signed');
    } catch (err) {
      checks++;
      if (checks > 1) log.debug({ err: errorMessage(err) }, 'meeting tokens: still using POST /meeting-tokens');
      else if (deps.mode === 'self-signed') {
        log.error(
          { err: errorMessage(err) },
          'meeting tokens: DAILY_TOKEN_MODE=self-signed but the domain id is unknown (set DAILY_DOMAIN_ID); using POST /meeting-tokens meanwhile',
        );
      } else {
        log.warn({ err: errorMessage(err) }, 'meeting tokens: self-signed tokens not accepted; using POST /meeting-tokens');
      }
      mode = 'rest';
      if (!closed) {
        timer = setTimeout(() => {
          mode = 'pending';
          ready = resolve();
        }, RECHECK_MS);
        timer.unref();
      }
    }
  };
  let ready: Promise<void> = mode === 'pending' ? resolve() : Promise.resolve();

  return {
    get mode() {
      return mode;
    },
    async mint(req, o) {
      if (mode === 'pending') await ready;
      if (mode === 'self-signed' && domainId) return signMeetingToken(claimsFor(req, domainId), rest.apiKey);
      return rest.createMeetingToken(req, o?.signal ? { signal: o.signal } : undefined);
    },
    close() {
      closed = true;
      clearTimeout(timer);
    },
  };
}
