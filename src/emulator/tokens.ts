/** Meeting tokens: `POST /meeting-tokens`, `GET /meeting-tokens/:token`, and the token check of a join. */
import { ActionError, ApiError, badRequest } from './errors.js';
import { isObj } from './model.js';
import { signToken, verifyToken, type TokenClaims } from './token.js';

const TOKEN_PROPERTIES = new Set([
  'room_name', 'eject_at_token_exp', 'eject_after_elapsed', 'nbf', 'exp', 'is_owner', 'user_name', 'user_id',
  'enable_screenshare', 'start_video_off', 'start_audio_off', 'enable_recording', 'enable_prejoin_ui',
  'enable_live_captions_ui', 'enable_recording_ui', 'enable_terse_logging', 'knocking', 'start_cloud_recording',
  'start_cloud_recording_opts', 'auto_start_transcription', 'close_tab_on_exit', 'redirect_on_meeting_exit', 'lang',
  'permissions',
]);

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
    for (const k of Object.keys(p)) if (!TOKEN_PROPERTIES.has(k)) throw badRequest(`unknown token property '${k}'`);
    if (p.room_name !== undefined && (typeof p.room_name !== 'string' || !ROOM_NAME_RE.test(p.room_name))) throw badRequest('room_name must be a room name');
    for (const k of ['exp', 'nbf'] as const) {
      if (p[k] !== undefined && (typeof p[k] !== 'number' || !Number.isFinite(p[k]))) throw badRequest(`${k} must be a unix timestamp in seconds`);
    }
    if (p.is_owner !== undefined && typeof p.is_owner !== 'boolean') throw badRequest('is_owner must be a boolean');
    if (p.user_name !== undefined && typeof p.user_name !== 'string') throw badRequest('user_name must be a string');
    const claims: TokenClaims = {
      d: this.o.domainId,
      iat: Math.floor(Date.now() / 1000),
      ...(p.room_name === undefined ? {} : { r: p.room_name as string }),
      ...(p.user_name === undefined ? {} : { u: p.user_name as string }),
      ...(p.is_owner === true ? { o: true } : {}),
      ...(p.exp === undefined ? {} : { exp: p.exp as number }),
      ...(p.nbf === undefined ? {} : { nbf: p.nbf as number }),
    };
    return signToken(claims, this.o.key);
  }

  /** GET /meeting-tokens/:token: the token's properties when it is valid. */
  inspect(token: string): Record<string, unknown> {
    const v = verifyToken(token, this.o.key);
    if (!v.ok) throw new ApiError(400, 'invalid-request-error', v.reason === 'expired' ? 'token has expired' : 'token is not valid');
    const c = v.claims;
    if (c.d !== this.o.domainId) throw badRequest('token is not valid');
    return {
      ...(c.r === undefined ? {} : { room_name: c.r }),
      ...(c.u === undefined ? {} : { user_name: c.u }),
      is_owner: c.o === true,
      ...(c.exp === undefined ? {} : { exp: c.exp }),
      ...(c.nbf === undefined ? {} : { nbf: c.nbf }),
    };
  }

  /** Checks a join's token for `roomName`; throws ActionError(code) on refusal. */
  checkJoin(token: string, roomName: string, nowSec = Date.now() / 1000): JoinGrant {
    const v = verifyToken(token, this.o.key, nowSec);
    if (!v.ok) {
      throw new ActionError(v.reason === 'expired' ? 'exp-token' : 'invalid-token', v.reason === 'expired' ? 'The meeting token has expired.' : 'The meeting token is invalid.');
    }
    const c = v.claims;
    if (c.d !== this.o.domainId) throw new ActionError('invalid-token', 'The meeting token is for another domain.');
    if (typeof c.nbf === 'number' && c.nbf > nowSec) throw new ActionError('nbf-token', 'The meeting token is not valid yet.');
    if (c.r !== undefined && c.r !== roomName) throw new ActionError('invalid-token', 'The meeting token is for another room.');
    return { owner: c.o === true, ...(c.u === undefined ? {} : { tokenUserName: c.u }) };
  }
}
