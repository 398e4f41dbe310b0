/**
 * Meeting tokens: `POST /meeting-tokens`, `GET /meeting-tokens/:token`, and the token check of a join.
 * Like Daily's, a token is an HS256 JWT signed with the domain's API key, so a token the service
 * signs itself (no REST round trip) is as good as one from `POST /meeting-tokens`. A join is refused
 * when the signature is not the API key's, the token has expired (`exp`) or is not yet valid (`nbf`),
 * names another domain (`d`) or another room (`r`).
 */
import { ActionError, ApiError, badRequest } from './errors.js';
import { isObj } from './model.js';
import { signToken, verifyToken, type TokenClaims } from './token.js';

/**
 * Daily's token property abbreviations (the claims of a token, REST-made or self-signed with the
 * domain's API key; docs.daily.co/reference/rest-api/meeting-tokens/self-signing-tokens).
 * `iat` (issue time) is a claim of its own.
 */
export const TOKEN_CLAIMS = {
  nbf: 'nbf',
  exp: 'exp',
  domain_id: 'd',
  room_name: 'r',
  user_id: 'ud',
  user_name: 'u',
  is_owner: 'o',
  knocking: 'k',
  close_tab_on_exit: 'ctoe',
  redirect_on_meeting_exit: 'rome',
  intercom_join_alert: 'ij',
  start_cloud_recording: 'sr',
  start_cloud_recording_opts: 'sro',
  auto_start_transcription: 'ast',
  enable_recording: 'er',
  enable_screenshare: 'ss',
  start_video_off: 'vo',
  start_audio_off: 'ao',
  meeting_join_hook: 'mjh',
  eject_at_token_exp: 'ejt',
  eject_after_elapsed: 'eje',
  lang: 'uil',
  enable_recording_ui: 'erui',
  permissions: 'p',
} as const;

type TokenProperty = keyof typeof TOKEN_CLAIMS;
const isTokenProperty = (k: string): k is TokenProperty => k in TOKEN_CLAIMS;
const PROPERTY_OF_CLAIM = new Map<string, TokenProperty>(
  Object.keys(TOKEN_CLAIMS)
    .filter(isTokenProperty)
    .map((k) => [TOKEN_CLAIMS[k], k]),
);
/** Properties `POST /meeting-tokens` accepts that have no claim of their own (accepted, without effect). */
const UNCLAIMED = new Set(['enable_prejoin_ui', 'enable_live_captions_ui', 'enable_terse_logging']);

export const ROOM_NAME_RE = /^[A-Za-z0-9_-]{1,128}$/;

/** What a valid token grants a join. */
export interface JoinGrant {
  owner: boolean;
  tokenUserName?: string;
}

export class MeetingTokens {
  constructor(private readonly o: { domainId: string; key: Buffer }) {}

  create(body: unknown): string {
    if (!isObj(body) || !isObj(body.properties)) throw badRequest('properties is required');
    const p = body.properties;
    for (const k of Object.keys(p)) if (!(k in TOKEN_CLAIMS) && !UNCLAIMED.has(k)) throw badRequest(`unknown token property '${k}'`);
    if (p.domain_id !== undefined) throw badRequest('domain_id cannot be set');
    if (p.room_name !== undefined && (typeof p.room_name !== 'string' || !ROOM_NAME_RE.test(p.room_name)))
      throw badRequest('room_name must be a room name');
    for (const k of ['exp', 'nbf'] as const) {
      if (p[k] !== undefined && (typeof p[k] !== 'number' || !Number.isFinite(p[k])))
        throw badRequest(`${k} must be a unix timestamp in seconds`);
    }
    if (p.is_owner !== undefined && typeof p.is_owner !== 'boolean') throw badRequest('is_owner must be a boolean');
    for (const k of ['user_name', 'user_id'] as const)
      if (p[k] !== undefined && typeof p[k] !== 'string') throw badRequest(`${k} must be a string`);
    const claims: TokenClaims = { d: this.o.domainId, iat: Math.floor(Date.now() / 1000) };
    for (const [k, v] of Object.entries(p)) {
      if (!isTokenProperty(k) || v === undefined || (k === 'is_owner' && v === false)) continue;
      const claim: string = TOKEN_CLAIMS[k];
      claims[claim] = v;
    }
    return signToken(claims, this.o.key);
  }

  /** GET /meeting-tokens/:token: the token's properties when it is valid. */
  inspect(token: string): Record<string, unknown> {
    const v = verifyToken(token, this.o.key);
    if (!v.ok) throw new ApiError(400, 'invalid-request-error', v.reason === 'expired' ? 'token has expired' : 'token is not valid');
    const c: Record<string, unknown> = v.claims;
    if (c.d !== this.o.domainId) throw badRequest('token is not valid');
    const props: Record<string, unknown> = {};
    for (const [claim, value] of Object.entries(c)) {
      const prop = PROPERTY_OF_CLAIM.get(claim);
      if (prop !== undefined && prop !== 'domain_id') props[prop] = value;
    }
    return { ...props, is_owner: c.o === true };
  }

  /** Checks a join's token for `roomName`; throws ActionError(code) on refusal. */
  checkJoin(token: string, roomName: string, nowSec = Date.now() / 1000): JoinGrant {
    const v = verifyToken(token, this.o.key, nowSec);
    if (!v.ok) {
      if (v.reason === 'expired') throw new ActionError('exp-token', 'The meeting token has expired.');
      throw new ActionError('invalid-token', 'The meeting token is invalid.');
    }
    const c = v.claims;
    if (c.d !== this.o.domainId) throw new ActionError('invalid-token', 'The meeting token is for another domain.');
    if (typeof c.nbf === 'number' && c.nbf > nowSec) throw new ActionError('nbf-token', 'The meeting token is not valid yet.');
    if (c.r !== undefined && c.r !== roomName) throw new ActionError('invalid-token', 'The meeting token is for another room.');
    if (c.u !== undefined && typeof c.u !== 'string') throw new ActionError('invalid-token', 'The meeting token is invalid.');
    return { owner: c.o === true, ...(c.u === undefined ? {} : { tokenUserName: c.u }) };
  }
}
