/**
 * The emulated platform, independent of HTTP: rooms, meeting tokens, participants, SIP
 * endpoints, held calls and pinless dial-in. REST (rest.ts) and WebSocket (ws.ts) layers
 * call into it; it talks back to bots through `BotParticipant.send`.
 *
 * Fidelity notes (what Daily does, so the emulator does it too):
 *  - a SIP endpoint is ready only after a participant session started and `dialin-ready` fired;
 *    pinlessCallUpdate to an endpoint that is not ready is *accepted* and the call then drops;
 *  - a session ends when the last participant leaves (a caller left alone by the bot stays, as on
 *    Daily, until they hang up or the room goes): then endpoints unregister, a
 *    connected caller is dropped;
 *  - owners only: eject, transcription, SIP transfer/refer.
 */
import { randomBytes, randomUUID, createHmac } from 'node:crypto';
import type { Logger } from 'pino';
import type { CallClientEvent, CallClientEventMap, CallParticipant } from '../daily/call-client.js';
import { maskNumber } from '../logger.js';
import { CallImpl, type CallHost } from './call.js';
import { Faults } from './faults.js';
import type { ActionName, ServerMessage } from './protocol.js';
import { WS_CLOSE } from './protocol.js';
import { Timers } from './timers.js';
import { signToken, verifyToken, type TokenClaims } from './token.js';
import type { DomainWebhooks, PlatformObserver } from './webhooks.js';
import {
  zeroLatencies,
  type EmulatorSnapshot,
  type EndReason,
  type Latencies,
  type PinlessDialinEntry,
  type PlaceCallOptions,
  type RequestLogEntry,
  type WebhookLogEntry,
} from './types.js';

/** A REST error with Daily's `{error, info}` body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly info: string,
    readonly retryAfterSec?: number,
  ) {
    super(`${status} ${error}: ${info}`);
  }
}

/** The `error` field Daily uses for a status. */
export function dailyErrorName(status: number): string {
  if (status === 401) return 'authentication-error';
  if (status === 403) return 'forbidden-error';
  if (status === 404) return 'not-found';
  if (status === 429) return 'rate-limit-error';
  if (status >= 500) return 'server-error';
  return 'invalid-request-error';
}

/** An action refused by the platform (sent back as `ack {id, error, code}`). */
export class ActionError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface BotParticipant {
  kind: 'bot';
  sessionId: string;
  userName: string;
  owner: boolean;
  room: Room;
  joinedAt: number;
  /** Audio still playing, by action id: cancel functions. */
  audio: Map<string | number, () => void>;
  send(msg: ServerMessage): void;
  /** Closes the socket (server side). */
  close(code: number, reason: string): void;
}

export interface SipParticipant {
  kind: 'sip';
  sessionId: string;
  userName: string;
  call: CallImpl;
  endpoint: string;
}

export type Participant = BotParticipant | SipParticipant;

export interface SipEndpoint {
  uri: string;
  ready: boolean;
  /** The call forwarded to (or connected through) this endpoint. */
  callId?: string;
}

export interface Room {
  id: string;
  name: string;
  url: string;
  privacy: 'public' | 'private' | 'org';
  createdAt: string;
  properties: Record<string, unknown>;
  sip?: { display_name: string; video: boolean; sip_mode: 'dial-in'; num_endpoints: number; codecs?: unknown };
  endpoints: SipEndpoint[];
  participants: Map<string, Participant>;
  sessionActive: boolean;
  sessionCancels: Set<() => void>;
  transcription: boolean;
  expCancel?: () => void;
}

const ROOM_PROPERTIES = new Set([
  'nbf', 'exp', 'max_participants', 'enable_people_ui', 'enable_pip_ui', 'enable_emoji_reactions', 'enable_hand_raising',
  'enable_prejoin_ui', 'enable_live_captions_ui', 'enable_network_ui', 'enable_noise_cancellation_ui', 'enable_breakout_rooms',
  'enable_knocking', 'enable_screenshare', 'enable_video_processing_ui', 'enable_chat', 'enable_shared_chat_history',
  'start_video_off', 'start_audio_off', 'owner_only_broadcast', 'enable_recording', 'eject_at_room_exp', 'eject_after_elapsed',
  'enable_advanced_chat', 'enable_hidden_participants', 'enable_mesh_sfu', 'sfu_switchover', 'enable_adaptive_simulcast',
  'enable_multiparty_adaptive_simulcast', 'enforce_unique_user_ids', 'experimental_optimize_large_calls', 'lang',
  'meeting_join_hook', 'geo', 'rtmp_geo', 'disable_rtmp_geo_fallback', 'recordings_bucket', 'enable_terse_logging',
  'auto_transcription_settings', 'enable_transcription_storage', 'transcription_bucket', 'recordings_template',
  'enable_dialout', 'dialout_config', 'dialin', 'sip', 'streaming_endpoints', 'permissions', 'auto_start_transcription',
]);

const TOKEN_PROPERTIES = new Set([
  'room_name', 'eject_at_token_exp', 'eject_after_elapsed', 'nbf', 'exp', 'is_owner', 'user_name', 'user_id',
  'enable_screenshare', 'start_video_off', 'start_audio_off', 'enable_recording', 'enable_prejoin_ui',
  'enable_live_captions_ui', 'enable_recording_ui', 'enable_terse_logging', 'knocking', 'start_cloud_recording',
  'start_cloud_recording_opts', 'auto_start_transcription', 'close_tab_on_exit', 'redirect_on_meeting_exit', 'lang',
  'permissions',
]);

const ROOM_NAME_RE = /^[A-Za-z0-9_-]{1,128}$/;
/** Daily's default max_sip_pstn_sessions_per_room. */
const MAX_SIP_ENDPOINTS = 5;
const MAX_APP_MESSAGE_BYTES = 4096;
const MAX_AUDIO_MS = 600_000;
/** Ended calls kept for inspection (control API, snapshot, tests). */
const MAX_ENDED_CALLS = 1_000;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A domain-dialin-config body: `{type?, config: {...}}` or flat `{type?, phone_number, …}` (both appear in Daily's docs). */
function dialinConfigBody(body: unknown): unknown {
  if (!isObj(body)) return body;
  if (body.type !== undefined && body.type !== 'pinless_dialin') {
    throw new ApiError(400, 'invalid-request-error', 'the emulator supports type pinless_dialin only');
  }
  if (isObj(body.config)) return body.config;
  const { type: _type, ...flat } = body;
  return flat;
}

function randomName(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  const b = randomBytes(20);
  return [...b].map((x) => alphabet[x % alphabet.length]).join('');
}

function randomDigits(n: number): string {
  return [...randomBytes(n)].map((x) => String(x % 10)).join('');
}

/** `sip:user@host?params` → `sip:user@host` (Daily accepts e.g. `?x-daily_display_name=`). */
export function sipBase(uri: string): string {
  const q = uri.indexOf('?');
  const s = q < 0 ? uri : uri.slice(0, q);
  return s.trim().toLowerCase();
}

export interface CoreOptions {
  domainName: string;
  logger: Logger;
  latencies: Latencies;
  holdTimeoutMs: number;
  dtmfGapMs: number;
  webhookTimeoutMs: number;
}

export class EmulatorCore implements CallHost {
  readonly timers = new Timers();
  readonly faults = new Faults();
  readonly domainId = randomUUID();
  /** The domain's SIP network identity, sent as `callDomain` in webhooks. */
  readonly callDomain = randomUUID();
  readonly rooms = new Map<string, Room>();
  readonly calls = new Map<string, CallImpl>();
  private readonly callsByCallId = new Map<string, CallImpl>();
  /** Ids of ended calls, oldest first (for pruning). */
  private readonly endedCalls: string[] = [];
  private readonly tokenKey = randomBytes(32);
  private pinless: Array<PinlessDialinEntry & { id: string }> = [];
  private readonly webhookAborts = new Set<AbortController>();
  latencies: Latencies;
  readonly requestLog: RequestLogEntry[] = [];
  /** Domain webhooks (webhooks.ts), set by server.ts; `observer` turns platform happenings into their events. */
  webhooks: DomainWebhooks | undefined;
  observer: PlatformObserver | undefined;
  readonly webhookLog: WebhookLogEntry[] = [];
  origin = 'http://127.0.0.1:0';
  private closed = false;
  readonly log: Logger;
  readonly dtmfGapMs: number;
  /** Open sockets (set by ws.ts). */
  socketCount = (): number => 0;
  /** Open call-client sockets (set by ws.ts). */
  clientCount = (): number => 0;

  constructor(private readonly opts: CoreOptions) {
    this.latencies = { ...zeroLatencies, ...opts.latencies };
    this.log = opts.logger;
    this.dtmfGapMs = opts.dtmfGapMs;
  }

  get domainName(): string {
    return this.opts.domainName;
  }

  private get sipHost(): string {
    return `${this.opts.domainName}.sip.daily.co`;
  }

  // ───────────────────────── domain / pinless dial-in ─────────────────────────

  /** Validates and normalises pinless entries (fills `sip_uri`). Throws ApiError 400. */
  normalisePinless(entries: unknown, keepIds: Array<string | undefined> = []): Array<PinlessDialinEntry & { id: string }> {
    if (!Array.isArray(entries)) throw new ApiError(400, 'invalid-request-error', 'pinless_dialin must be an array');
    const seen = new Set<string>();
    return entries.map((e, i) => {
      const where = `pinless_dialin[${i}]`;
      if (!isObj(e)) throw new ApiError(400, 'invalid-request-error', `${where} must be an object`);
      const known = new Set(['phone_number', 'sip_uri', 'name_prefix', 'room_creation_api', 'hmac', 'hold_music_url', 'timeout_config', 'ivr_greeting']);
      for (const k of Object.keys(e)) if (!known.has(k)) throw new ApiError(400, 'invalid-request-error', `${where}: unknown property '${k}'`);
      const api = e.room_creation_api;
      if (typeof api !== 'string' || !/^https?:\/\//.test(api)) throw new ApiError(400, 'invalid-request-error', `${where}.room_creation_api must be an http(s) URL`);
      for (const k of ['phone_number', 'sip_uri', 'name_prefix', 'hmac', 'hold_music_url'] as const) {
        if (e[k] !== undefined && typeof e[k] !== 'string') throw new ApiError(400, 'invalid-request-error', `${where}.${k} must be a string`);
      }
      if (e.phone_number !== undefined && !/^\+[1-9]\d{4,15}$/.test(e.phone_number as string)) {
        throw new ApiError(400, 'invalid-request-error', `${where}.phone_number must be E.164 (+ and digits)`);
      }
      if (e.hmac !== undefined && !/^[A-Za-z0-9+/]+={0,2}$/.test(e.hmac as string)) throw new ApiError(400, 'invalid-request-error', `${where}.hmac must be base64`);
      if (e.timeout_config !== undefined && !(isObj(e.timeout_config) && (e.timeout_config.message === undefined || typeof e.timeout_config.message === 'string'))) {
        throw new ApiError(400, 'invalid-request-error', `${where}.timeout_config must be {message}`);
      }
      const phone = e.phone_number as string | undefined;
      const sipUri = (e.sip_uri as string | undefined) ?? `sip:${randomDigits(10)}@${this.sipHost}`;
      for (const key of [phone, sipBase(sipUri)]) {
        if (key === undefined) continue;
        if (seen.has(key)) throw new ApiError(400, 'invalid-request-error', `${where}: ${key} is already configured`);
        seen.add(key);
      }
      return { ...(e as unknown as PinlessDialinEntry), sip_uri: sipUri, id: keepIds[i] ?? randomUUID() };
    });
  }

  setPinless(entries: unknown): void {
    this.pinless = this.normalisePinless(entries);
  }

  getPinless(): Array<PinlessDialinEntry & { id: string }> {
    return this.pinless.map((e) => ({ ...e }));
  }

  /** Domain object as GET / returns it. */
  domainJson(): Record<string, unknown> {
    return {
      domain_name: this.opts.domainName,
      domain_id: this.domainId,
      sfu_impl: 'mediasoup',
      config: {
        pinless_dialin: this.pinless.map(({ id: _id, ...e }) => e),
      },
    };
  }

  // domain-dialin-config (one store with pinless_dialin)
  dialinConfigJson(e: PinlessDialinEntry & { id: string }): Record<string, unknown> {
    const { id, ...config } = e;
    return { id, type: 'pinless_dialin', config };
  }

  createDialinConfig(body: unknown): Record<string, unknown> {
    const cfg = dialinConfigBody(body);
    const [entry] = this.normalisePinless([cfg]);
    const { id: newId, ...fresh } = entry!;
    const all = this.normalisePinless(
      [...this.pinless.map(({ id: _id, ...e }) => e), fresh],
      [...this.pinless.map((p) => p.id), newId],
    );
    this.pinless = all;
    return this.dialinConfigJson(all[all.length - 1]!);
  }

  updateDialinConfig(id: string, body: unknown): Record<string, unknown> {
    const i = this.pinless.findIndex((p) => p.id === id);
    if (i < 0) throw new ApiError(404, 'not-found', `dialin config ${id} not found`);
    const cfg = dialinConfigBody(body);
    if (!isObj(cfg)) throw new ApiError(400, 'invalid-request-error', 'body must be an object');
    const { id: _old, ...prev } = this.pinless[i]!;
    const next = [...this.pinless];
    next[i] = { ...prev, ...cfg, id } as PinlessDialinEntry & { id: string };
    this.pinless = this.normalisePinless(
      next.map(({ id: _x, ...e }) => e),
      next.map((p) => p.id),
    );
    return this.dialinConfigJson(this.pinless[i]!);
  }

  deleteDialinConfig(id: string): void {
    const i = this.pinless.findIndex((p) => p.id === id);
    if (i < 0) throw new ApiError(404, 'not-found', `dialin config ${id} not found`);
    this.pinless.splice(i, 1);
  }

  // ───────────────────────────────── rooms ─────────────────────────────────

  roomJson(r: Room): Record<string, unknown> {
    const config: Record<string, unknown> = { ...r.properties };
    if (r.sip) {
      config.sip = { ...r.sip };
      const [first, ...extra] = r.endpoints.map((e) => e.uri);
      config.sip_uri = { endpoint: first, ...(extra.length > 0 ? { extra_endpoints: extra } : {}) };
    }
    return { id: r.id, name: r.name, api_created: true, privacy: r.privacy, url: r.url, created_at: r.createdAt, config };
  }

  createRoom(body: unknown): Room {
    const b = body === undefined || body === null ? {} : body;
    if (!isObj(b)) throw new ApiError(400, 'invalid-request-error', 'body must be a JSON object');
    for (const k of Object.keys(b)) {
      if (!['name', 'privacy', 'properties'].includes(k)) throw new ApiError(400, 'invalid-request-error', `unknown parameter '${k}'`);
    }
    let name: string;
    if (b.name === undefined) {
      do name = randomName();
      while (this.rooms.has(name));
    } else {
      if (typeof b.name !== 'string' || !ROOM_NAME_RE.test(b.name)) {
        throw new ApiError(400, 'invalid-request-error', 'name must be 1-128 characters: letters, digits, - and _');
      }
      name = b.name;
      if (this.rooms.has(name)) throw new ApiError(400, 'invalid-request-error', `a room named ${name} already exists`);
    }
    const privacy = b.privacy ?? 'public';
    if (privacy !== 'public' && privacy !== 'private' && privacy !== 'org') {
      throw new ApiError(400, 'invalid-request-error', "privacy must be 'public', 'private' or 'org'");
    }
    const props = b.properties ?? {};
    if (!isObj(props)) throw new ApiError(400, 'invalid-request-error', 'properties must be an object');
    for (const k of Object.keys(props)) {
      if (!ROOM_PROPERTIES.has(k)) throw new ApiError(400, 'invalid-request-error', `unknown room property '${k}'`);
    }
    const nowSec = Date.now() / 1000;
    if (props.exp !== undefined) {
      if (typeof props.exp !== 'number' || !Number.isFinite(props.exp)) throw new ApiError(400, 'invalid-request-error', 'exp must be a unix timestamp in seconds');
      if (props.exp <= nowSec) throw new ApiError(400, 'invalid-request-error', 'exp must be in the future');
    }
    if (props.nbf !== undefined && (typeof props.nbf !== 'number' || !Number.isFinite(props.nbf))) {
      throw new ApiError(400, 'invalid-request-error', 'nbf must be a unix timestamp in seconds');
    }
    for (const k of ['eject_at_room_exp', 'enable_dialout'] as const) {
      if (props[k] !== undefined && typeof props[k] !== 'boolean') throw new ApiError(400, 'invalid-request-error', `${k} must be a boolean`);
    }
    let sip: Room['sip'];
    if (props.sip !== undefined && props.sip !== null) {
      sip = this.validateSip(props.sip);
    }
    const { sip: _sip, ...rest } = props;
    const room: Room = {
      id: randomUUID(),
      name,
      url: `${this.origin}/${name}`,
      privacy,
      createdAt: new Date().toISOString(),
      properties: rest,
      ...(sip ? { sip } : {}),
      endpoints: sip
        ? Array.from({ length: sip.num_endpoints }, () => ({ uri: `sip:${randomDigits(10)}@${this.sipHost}`, ready: false }))
        : [],
      participants: new Map(),
      sessionActive: false,
      sessionCancels: new Set(),
      transcription: false,
    };
    this.rooms.set(name, room);
    if (typeof props.exp === 'number') {
      room.expCancel = this.timers.after(props.exp * 1000 - Date.now(), () => this.roomExpired(room));
    }
    this.log.debug({ room: name, sipEndpoints: room.endpoints.length }, 'emulator: room created');
    return room;
  }

  private validateSip(s: unknown): NonNullable<Room['sip']> {
    if (!isObj(s)) throw new ApiError(400, 'invalid-request-error', 'sip must be an object or null');
    for (const k of Object.keys(s)) {
      if (!['display_name', 'video', 'sip_mode', 'num_endpoints', 'codecs'].includes(k)) {
        throw new ApiError(400, 'invalid-request-error', `unknown sip property '${k}'`);
      }
    }
    if (s.sip_mode !== 'dial-in') throw new ApiError(400, 'invalid-request-error', "sip.sip_mode must be 'dial-in'");
    if (s.display_name !== undefined && (typeof s.display_name !== 'string' || s.display_name.length === 0 || s.display_name.length > 128)) {
      throw new ApiError(400, 'invalid-request-error', 'sip.display_name must be a non-empty string');
    }
    if (s.video !== undefined && typeof s.video !== 'boolean') throw new ApiError(400, 'invalid-request-error', 'sip.video must be a boolean');
    const n = s.num_endpoints ?? 1;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_SIP_ENDPOINTS) {
      throw new ApiError(400, 'invalid-request-error', `sip.num_endpoints must be an integer from 1 to ${MAX_SIP_ENDPOINTS} (max_sip_pstn_sessions_per_room)`);
    }
    return {
      display_name: (s.display_name as string | undefined) ?? 'sip-dialin',
      video: (s.video as boolean | undefined) ?? false,
      sip_mode: 'dial-in',
      num_endpoints: n,
      ...(s.codecs === undefined ? {} : { codecs: s.codecs }),
    };
  }

  getRoom(name: string): Room {
    const r = this.rooms.get(name);
    if (!r) throw new ApiError(404, 'not-found', `room ${name} not found`);
    return r;
  }

  deleteRoom(name: string): void {
    const r = this.getRoom(name);
    this.closeRoom(r, 'room-deleted', 'The room was deleted');
    this.rooms.delete(name);
    this.log.debug({ room: name }, 'emulator: room deleted');
  }

  private roomExpired(r: Room): void {
    if (this.rooms.get(r.name) !== r) return;
    if (r.properties.eject_at_room_exp === true) this.closeRoom(r, 'exp-eject', 'Meeting has ended (room expired)');
  }

  /** Ejects every participant and ends calls bound for the room. */
  private closeRoom(r: Room, code: string, message: string): void {
    r.expCancel?.();
    for (const call of this.calls.values()) {
      if (call.roomName === r.name && call.state !== 'ended') call.end('room_closed');
    }
    for (const p of [...r.participants.values()]) {
      if (p.kind === 'bot') {
        p.send({ type: 'event', event: 'error', payload: { message, fatal: true, code } });
        p.send({ type: 'event', event: 'left-meeting', payload: { reason: code } });
        this.removeBot(p, code, { notify: false });
        p.close(WS_CLOSE.removed, code);
      }
    }
    this.endSession(r);
  }

  // ───────────────────────────── meeting tokens ─────────────────────────────

  createToken(body: unknown): string {
    if (!isObj(body) || !isObj(body.properties)) throw new ApiError(400, 'invalid-request-error', 'properties is required');
    const p = body.properties;
    for (const k of Object.keys(p)) {
      if (!TOKEN_PROPERTIES.has(k)) throw new ApiError(400, 'invalid-request-error', `unknown token property '${k}'`);
    }
    if (p.room_name !== undefined && (typeof p.room_name !== 'string' || !ROOM_NAME_RE.test(p.room_name))) {
      throw new ApiError(400, 'invalid-request-error', 'room_name must be a room name');
    }
    for (const k of ['exp', 'nbf'] as const) {
      if (p[k] !== undefined && (typeof p[k] !== 'number' || !Number.isFinite(p[k]))) throw new ApiError(400, 'invalid-request-error', `${k} must be a unix timestamp in seconds`);
    }
    if (p.is_owner !== undefined && typeof p.is_owner !== 'boolean') throw new ApiError(400, 'invalid-request-error', 'is_owner must be a boolean');
    if (p.user_name !== undefined && typeof p.user_name !== 'string') throw new ApiError(400, 'invalid-request-error', 'user_name must be a string');
    const claims: TokenClaims & { nbf?: number } = {
      d: this.domainId,
      iat: Math.floor(Date.now() / 1000),
      ...(p.room_name === undefined ? {} : { r: p.room_name as string }),
      ...(p.user_name === undefined ? {} : { u: p.user_name as string }),
      ...(p.is_owner === true ? { o: true } : {}),
      ...(p.exp === undefined ? {} : { exp: p.exp as number }),
      ...(p.nbf === undefined ? {} : { nbf: p.nbf as number }),
    };
    return signToken(claims, this.tokenKey);
  }

  /** GET /meeting-tokens/:token: the token's properties when it is valid. */
  inspectToken(token: string): Record<string, unknown> {
    const v = verifyToken(token, this.tokenKey);
    if (!v.ok) throw new ApiError(400, 'invalid-request-error', v.reason === 'expired' ? 'token has expired' : 'token is not valid');
    const c = v.claims as TokenClaims & { nbf?: number };
    if (c.d !== this.domainId) throw new ApiError(400, 'invalid-request-error', 'token is not valid');
    return {
      ...(c.r === undefined ? {} : { room_name: c.r }),
      ...(c.u === undefined ? {} : { user_name: c.u }),
      is_owner: c.o === true,
      ...(c.exp === undefined ? {} : { exp: c.exp }),
      ...(c.nbf === undefined ? {} : { nbf: c.nbf }),
    };
  }

  // ─────────────────────────────── participants ───────────────────────────────

  /** Validates a join; throws ActionError(code) on refusal. */
  checkJoin(roomUrl: unknown, token: unknown): { room: Room; owner: boolean; tokenUserName?: string } {
    if (typeof roomUrl !== 'string') throw new ActionError('invalid-request', 'roomUrl is required');
    let name: string;
    try {
      const u = new URL(roomUrl);
      name = decodeURIComponent(u.pathname.replace(/^\/+|\/+$/g, ''));
    } catch {
      throw new ActionError('invalid-request', 'roomUrl is not a URL');
    }
    const room = this.rooms.get(name);
    if (!room) throw new ActionError('no-room', "The meeting you're trying to join does not exist.");
    const nowSec = Date.now() / 1000;
    const exp = room.properties.exp;
    if (typeof exp === 'number' && exp <= nowSec) throw new ActionError('exp-room', 'The meeting has expired.');
    const nbf = room.properties.nbf;
    if (typeof nbf === 'number' && nbf > nowSec) throw new ActionError('nbf-room', 'The meeting is not available yet.');
    if (token === undefined || token === null || token === '') {
      if (room.privacy !== 'public') throw new ActionError('not-allowed', 'This room is private: a meeting token is required.');
      return { room, owner: false };
    }
    if (typeof token !== 'string') throw new ActionError('invalid-token', 'token must be a string');
    const v = verifyToken(token, this.tokenKey, nowSec);
    if (!v.ok) {
      throw new ActionError(v.reason === 'expired' ? 'exp-token' : 'invalid-token', v.reason === 'expired' ? 'The meeting token has expired.' : 'The meeting token is invalid.');
    }
    const c = v.claims as TokenClaims & { nbf?: number };
    if (c.d !== this.domainId) throw new ActionError('invalid-token', 'The meeting token is for another domain.');
    if (typeof c.nbf === 'number' && c.nbf > nowSec) throw new ActionError('nbf-token', 'The meeting token is not valid yet.');
    if (c.r !== undefined && c.r !== room.name) throw new ActionError('invalid-token', 'The meeting token is for another room.');
    return { room, owner: c.o === true, ...(c.u === undefined ? {} : { tokenUserName: c.u }) };
  }

  participantJson(p: Participant, localSessionId?: string): CallParticipant {
    return {
      sessionId: p.sessionId,
      userName: p.userName,
      local: p.sessionId === localSessionId,
      ...(p.kind === 'sip' ? { isSip: true } : { isSip: false }),
    };
  }

  broadcast<E extends CallClientEvent>(room: Room, event: E, payload: CallClientEventMap[E], exceptSessionId?: string): void {
    for (const p of room.participants.values()) {
      if (p.kind === 'bot' && p.sessionId !== exceptSessionId) {
        p.send({ type: 'event', event, payload } as ServerMessage);
      }
    }
  }

  private botCount(room: Room): number {
    let n = 0;
    for (const p of room.participants.values()) if (p.kind === 'bot') n++;
    return n;
  }

  /** Adds a joined bot; starts the session (and SIP worker registration) for the first one. */
  addBot(p: BotParticipant): void {
    const room = p.room;
    if (!room.sessionActive) this.observer?.meetingStarted(room.name);
    room.participants.set(p.sessionId, p);
    this.broadcast(room, 'participant-joined', { participant: this.participantJson(p) }, p.sessionId);
    this.observer?.participantJoined(room.name, { sessionId: p.sessionId, userName: p.userName, owner: p.owner });
    if (!room.sessionActive) {
      room.sessionActive = true;
      if (room.endpoints.length > 0) this.scheduleDialinReady(room);
    }
  }

  private scheduleDialinReady(room: Room): void {
    const delay = this.latencies.dialinReadyMs + this.faults.dialinReadyDelayMs;
    const cancel = this.timers.after(delay, () => {
      room.sessionCancels.delete(cancel);
      if (!room.sessionActive || this.rooms.get(room.name) !== room) return;
      const mode = this.faults.dialinReady;
      if (mode === 'never') return;
      for (const ep of room.endpoints) {
        ep.ready = true;
        this.broadcast(room, 'dialin-ready', { sipEndpoint: ep.uri });
        this.observer?.dialinReady(room.name, ep.uri);
        if (mode === 'twice') this.broadcast(room, 'dialin-ready', { sipEndpoint: ep.uri });
      }
    });
    room.sessionCancels.add(cancel);
  }

  private endSession(room: Room): void {
    room.sessionActive = false;
    room.transcription = false;
    for (const c of room.sessionCancels) c();
    room.sessionCancels.clear();
    for (const ep of room.endpoints) ep.ready = false;
    for (const p of [...room.participants.values()]) {
      if (p.kind === 'sip') p.call.end('room_closed');
    }
    for (const call of this.calls.values()) {
      if (call.roomName === room.name && call.state !== 'ended') call.end('room_closed');
    }
    this.observer?.meetingEnded(room.name);
  }

  /** A bot left (leave, socket closed, ejected). */
  removeBot(p: BotParticipant, reason: string, o: { notify: boolean } = { notify: true }): void {
    const room = p.room;
    if (room.participants.get(p.sessionId) !== p) return;
    for (const cancel of p.audio.values()) cancel();
    p.audio.clear();
    room.participants.delete(p.sessionId);
    if (o.notify) this.broadcast(room, 'participant-left', { participant: this.participantJson(p), reason });
    this.observer?.participantLeft(room.name, { sessionId: p.sessionId, userName: p.userName, owner: p.owner });
    // As on Daily, the session lasts while anyone is in the room: a caller left alone by the bot
    // stays there (in silence) until they hang up or the room is deleted or expires.
    if (room.participants.size === 0 && room.sessionActive) this.endSession(room);
  }

  // ───────────────────────────────── actions ─────────────────────────────────

  private sipParticipant(room: Room, sessionId: unknown): SipParticipant {
    if (typeof sessionId !== 'string') throw new ActionError('invalid-request', 'sessionId is required');
    const p = room.participants.get(sessionId);
    if (!p) throw new ActionError('not-found', `no participant ${sessionId} in the room`);
    if (p.kind !== 'sip') throw new ActionError('invalid-request', `participant ${sessionId} is not a SIP participant`);
    return p;
  }

  private requireOwner(p: BotParticipant, what: string): void {
    if (!p.owner) throw new ActionError('not-allowed', `${what} requires a meeting owner token`);
  }

  /** Carries out an action; resolves when it is done (send-audio: after its play-out). */
  async action(p: BotParticipant, id: string | number, action: ActionName, args: Record<string, unknown>): Promise<void> {
    const room = p.room;
    switch (action) {
      case 'leave':
        this.removeBot(p, 'left');
        return;
      case 'send-audio': {
        const durationMs = args.durationMs;
        if (typeof durationMs !== 'number' || !Number.isFinite(durationMs) || durationMs < 0 || durationMs > MAX_AUDIO_MS) {
          throw new ActionError('invalid-request', `durationMs must be a number from 0 to ${MAX_AUDIO_MS}`);
        }
        if (args.text !== undefined && typeof args.text !== 'string') throw new ActionError('invalid-request', 'text must be a string');
        const text = (args.text as string | undefined)?.trim() || `[audio ${Math.round(durationMs)} ms]`;
        // `continues`: more audio of words already said (a streamed utterance): no new line.
        if (args.continues !== true) for (const q of room.participants.values()) if (q.kind === 'sip') q.call.botSaid(text);
        if (durationMs === 0) return;
        await new Promise<void>((resolve, reject) => {
          const cancelTimer = this.timers.after(durationMs, () => {
            p.audio.delete(id);
            resolve();
          });
          p.audio.set(id, () => {
            cancelTimer();
            p.audio.delete(id);
            reject(new ActionError('cancelled', 'audio cancelled'));
          });
        });
        return;
      }
      case 'cancel-audio': {
        const cancel = p.audio.get(args.actionId as string | number);
        if (cancel) {
          cancel();
          for (const q of room.participants.values()) if (q.kind === 'sip') q.call.addLine('system', 'bot audio interrupted');
        }
        return;
      }
      case 'send-dtmf': {
        const sp = this.sipParticipant(room, args.sessionId);
        if (typeof args.tones !== 'string' || !/^[0-9*#A-Da-dwW]+$/.test(args.tones)) {
          throw new ActionError('invalid-request', 'tones must be DTMF digits (0-9 * # A-D)');
        }
        sp.call.botSaid(`[dtmf ${args.tones}]`);
        return;
      }
      case 'sip-call-transfer':
      case 'sip-refer': {
        this.requireOwner(p, action);
        const sp = this.sipParticipant(room, args.sessionId);
        const to = args.toEndPoint;
        if (typeof to !== 'string' || !/^(sips?:|tel:|\+\d)/.test(to)) {
          throw new ActionError('invalid-request', 'toEndPoint must be a sip:, sips:, tel: URI or an E.164 number');
        }
        sp.call.addLine('system', `${action === 'sip-refer' ? 'referred' : 'transferred'} to ${to}`);
        this.log.debug({ callId: sp.call.callId, to: maskNumber(to) }, `emulator: ${action}`);
        sp.call.end('transferred');
        return;
      }
      case 'start-transcription':
        this.requireOwner(p, 'start-transcription');
        if (room.transcription) throw new ActionError('invalid-request', 'transcription is already started');
        room.transcription = true;
        return;
      case 'stop-transcription':
        this.requireOwner(p, 'stop-transcription');
        if (!room.transcription) throw new ActionError('invalid-request', 'transcription is not started');
        room.transcription = false;
        return;
      case 'send-app-message': {
        let size: number;
        try {
          size = Buffer.byteLength(JSON.stringify(args.data ?? null));
        } catch {
          throw new ActionError('invalid-request', 'data must be JSON-serialisable');
        }
        if (size > MAX_APP_MESSAGE_BYTES) throw new ActionError('invalid-request', `app message larger than ${MAX_APP_MESSAGE_BYTES} bytes`);
        const to = args.to;
        for (const q of room.participants.values()) {
          if (q.kind !== 'bot' || q.sessionId === p.sessionId) continue;
          if (to !== undefined && to !== '*' && to !== q.sessionId) continue;
          q.send({ type: 'event', event: 'app-message', payload: { data: args.data, fromId: p.sessionId } });
        }
        return;
      }
      case 'eject': {
        this.requireOwner(p, 'eject');
        const target = typeof args.sessionId === 'string' ? room.participants.get(args.sessionId) : undefined;
        if (!target) throw new ActionError('not-found', `no participant ${String(args.sessionId)} in the room`);
        if (target.kind === 'sip') {
          target.call.end('ejected');
        } else {
          target.send({ type: 'event', event: 'error', payload: { message: 'You were ejected from the meeting', fatal: true, code: 'ejected' } });
          target.send({ type: 'event', event: 'left-meeting', payload: { reason: 'ejected' } });
          this.removeBot(target, 'ejected');
          target.close(WS_CLOSE.removed, 'ejected');
        }
        return;
      }
      default:
        throw new ActionError('unknown-action', `unknown action ${String(action)}`);
    }
  }

  // ────────────────────────────── calls (caller side) ──────────────────────────────

  placeCall(o: PlaceCallOptions): CallImpl {
    if (this.closed) throw new Error('the emulator is closed');
    if (typeof o.to !== 'string' || o.to.length === 0) throw new TypeError('placeCall: to is required');
    const from = o.from ?? `+1555${randomDigits(7)}`;
    const call = new CallImpl(this, randomUUID(), randomUUID(), this.callDomain, o.to, from, { ...(o.sipHeaders ?? {}) });
    this.calls.set(call.id, call);
    this.callsByCallId.set(call.callId, call);
    const target = o.to.startsWith('sip:') || o.to.startsWith('sips:') ? sipBase(o.to) : o.to;
    const entry = this.pinless.find((e) => e.phone_number === target || (e.sip_uri !== undefined && sipBase(e.sip_uri) === target));
    this.log.debug({ callId: call.callId, to: maskNumber(o.to), from: maskNumber(from), configured: !!entry }, 'emulator: call placed');
    if (!entry) {
      call.addLine('system', 'The number you have dialed is not in service.');
      call.end('not_in_service');
      return call;
    }
    call.addLine('system', `on hold (hold music: ${entry.hold_music_url ?? 'default'})`);
    call.cancels.add(
      this.timers.after(this.opts.holdTimeoutMs, () => {
        if (call.state !== 'held' || call.roomName !== undefined) return;
        call.addLine('system', entry.timeout_config?.message ?? 'No one is available to take your call. Please try again later.');
        call.end('hold_timeout');
      }),
    );
    call.cancels.add(this.timers.after(this.latencies.webhookMs, () => void this.sendWebhook(call, entry)));
    if (o.script && o.script.length > 0) void call.runScript(o.script);
    return call;
  }

  private async sendWebhook(call: CallImpl, entry: PinlessDialinEntry): Promise<void> {
    if (call.state === 'ended') return;
    const body = JSON.stringify({
      To: call.to,
      From: call.from,
      callId: call.callId,
      callDomain: call.callDomain,
      ...(Object.keys(call.sipHeaders).length > 0 ? { sipHeaders: call.sipHeaders } : {}),
    });
    const rec: NonNullable<CallImpl['webhook']> = { url: entry.room_creation_api, sentAtMs: Date.now() - call.startedAt };
    call.webhook = rec;
    const r = await this.postSigned(entry, body, 'call', call.callId);
    if (r.status !== undefined) rec.status = r.status;
    if (r.error !== undefined) rec.error = r.error;
  }

  /** Daily's probe when pinless dial-in is configured: a signed `{"To": <number>}`. */
  probe(entries: readonly PinlessDialinEntry[]): void {
    if (this.closed) return;
    for (const e of entries) {
      const to = e.phone_number ?? e.sip_uri;
      if (to !== undefined) void this.postSigned(e, JSON.stringify({ To: to }), 'probe');
    }
  }

  /** POSTs a JSON body to `room_creation_api`, signed when the entry has an hmac; records it in webhookLog. */
  private async postSigned(entry: PinlessDialinEntry, body: string, kind: WebhookLogEntry['kind'], callId?: string): Promise<{ status?: number; error?: string }> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (entry.hmac) {
      const ts = String(Math.floor(Date.now() / 1000));
      headers['x-pinless-timestamp'] = ts;
      headers['x-pinless-signature'] = createHmac('sha256', Buffer.from(entry.hmac, 'base64')).update(`${ts}.${body}`).digest('base64');
    }
    const log: WebhookLogEntry = { atMs: Date.now(), kind, url: entry.room_creation_api, ...(callId ? { callId } : {}) };
    this.webhookLog.push(log);
    if (this.webhookLog.length > 10_000) this.webhookLog.splice(0, this.webhookLog.length - 10_000);
    const ac = new AbortController();
    this.webhookAborts.add(ac);
    const cancelTimeout = this.timers.after(this.opts.webhookTimeoutMs, () => ac.abort(new Error('webhook timed out')));
    try {
      const res = await fetch(entry.room_creation_api, { method: 'POST', headers, body, signal: ac.signal });
      log.status = res.status;
      await res.arrayBuffer().catch(() => undefined);
      this.log.debug({ callId, kind, status: res.status }, 'emulator: webhook answered');
    } catch (err) {
      log.error = ac.signal.aborted ? String((ac.signal.reason as Error)?.message ?? 'aborted') : (err as Error).message;
      this.log.debug({ callId, kind, err: log.error }, 'emulator: webhook failed');
    } finally {
      cancelTimeout();
      this.webhookAborts.delete(ac);
    }
    return { ...(log.status === undefined ? {} : { status: log.status }), ...(log.error === undefined ? {} : { error: log.error }) };
  }

  logRequest(e: RequestLogEntry): void {
    this.requestLog.push(e);
    if (this.requestLog.length > 10_000) this.requestLog.splice(0, this.requestLog.length - 10_000);
  }

  get webhooksInFlight(): number {
    return this.webhookAborts.size;
  }

  /** POST /dialin/pinlessCallUpdate. */
  pinlessCallUpdate(body: { callId: string; callDomain: string; sipUri: string }): void {
    const call = this.callsByCallId.get(body.callId);
    if (!call || call.state === 'ended') throw new ApiError(404, 'not-found', `call ${body.callId} not found or no longer active`);
    if (body.callDomain !== call.callDomain) throw new ApiError(400, 'invalid-request-error', 'callDomain does not match the call');
    const uri = sipBase(body.sipUri);
    let room: Room | undefined;
    let ep: SipEndpoint | undefined;
    for (const r of this.rooms.values()) {
      ep = r.endpoints.find((e) => sipBase(e.uri) === uri);
      if (ep) {
        room = r;
        break;
      }
    }
    if (!room || !ep) throw new ApiError(404, 'not-found', `no room has the SIP endpoint ${body.sipUri}`);
    if (ep.callId !== undefined && ep.callId !== call.callId) {
      throw new ApiError(409, 'invalid-request-error', `SIP endpoint ${body.sipUri} is already in use by another call`);
    }
    if (call.state !== 'held' || call.roomName !== undefined) {
      throw new ApiError(409, 'invalid-request-error', `call ${body.callId} is not on hold`);
    }
    const r = room;
    const endpoint = ep;
    call.roomName = r.name;
    call.sipEndpoint = endpoint.uri;
    endpoint.callId = call.callId;
    const wasReady = endpoint.ready;
    call.cancels.add(
      this.timers.after(this.latencies.connectMs, () => {
        if (call.state !== 'held') return;
        if (!wasReady || !endpoint.ready) {
          // Daily accepted the update, but the SIP endpoint was not registered: the call drops.
          call.addLine('system', 'call failed: the SIP endpoint was not ready');
          this.observer?.dialinError(r.name, { sessionId: randomUUID(), from: call.from }, `SIP endpoint ${endpoint.uri} is not ready`);
          call.end('forwarded_before_ready');
          return;
        }
        if (this.rooms.get(r.name) !== r || !r.sessionActive) {
          call.end('room_closed');
          return;
        }
        this.connect(call, r, endpoint);
      }),
    );
  }

  private connect(call: CallImpl, room: Room, ep: SipEndpoint): void {
    const sessionId = randomUUID();
    const p: SipParticipant = { kind: 'sip', sessionId, userName: room.sip?.display_name ?? call.from, call, endpoint: ep.uri };
    room.participants.set(sessionId, p);
    call.markConnected(sessionId);
    call.addLine('system', `connected to room ${room.name}`);
    this.broadcast(room, 'participant-joined', { participant: this.participantJson(p) });
    this.broadcast(room, 'dialin-connected', {
      sessionId,
      sipFrom: call.from,
      sipEndpoint: ep.uri,
      sipHeaders: { ...call.sipHeaders },
    });
    this.observer?.participantJoined(room.name, { sessionId, userName: p.userName, isSip: true });
    this.observer?.dialinConnected(room.name, { sessionId, from: call.from, displayName: p.userName, sipHeaders: call.sipHeaders });
  }

  // CallHost
  callerSpoke(call: CallImpl, text: string): void {
    const room = call.roomName ? this.rooms.get(call.roomName) : undefined;
    if (!room || !call.sessionId || !room.transcription) return;
    this.broadcast(room, 'transcription-message', { participantId: call.sessionId, text, isFinal: true, timestampMs: Date.now() });
  }

  callerPressed(call: CallImpl, tone: string): void {
    const room = call.roomName ? this.rooms.get(call.roomName) : undefined;
    if (!room || !call.sessionId) return;
    this.broadcast(room, 'dtmf-event', { tone, sessionId: call.sessionId });
  }

  callEnded(call: CallImpl, reason: EndReason): void {
    this.endedCalls.push(call.id);
    this.timers.after(0, () => this.pruneCalls());
    const room = call.roomName ? this.rooms.get(call.roomName) : undefined;
    if (room) {
      for (const ep of room.endpoints) if (ep.callId === call.callId) delete ep.callId;
      const sid = call.sessionId;
      const p = sid ? room.participants.get(sid) : undefined;
      if (p && p.kind === 'sip') {
        room.participants.delete(p.sessionId);
        const why = reason === 'caller_hangup' ? 'hangup' : reason;
        this.broadcast(room, 'participant-left', { participant: this.participantJson(p), reason: why });
        this.broadcast(room, 'dialin-stopped', { sessionId: p.sessionId, sipEndpoint: p.endpoint });
        this.observer?.participantLeft(room.name, { sessionId: p.sessionId, userName: p.userName, isSip: true });
        this.observer?.dialinStopped(room.name, { sessionId: p.sessionId, from: call.from, displayName: p.userName, sipHeaders: call.sipHeaders });
        if (room.participants.size === 0 && room.sessionActive) this.endSession(room);
      }
    }
    this.log.debug({ callId: call.callId, reason }, 'emulator: call ended');
  }

  /** Forgets the oldest ended calls beyond MAX_ENDED_CALLS (a long-running embedded emulator must not grow). */
  private pruneCalls(): void {
    while (this.endedCalls.length > MAX_ENDED_CALLS) {
      const id = this.endedCalls.shift()!;
      const c = this.calls.get(id);
      if (!c) continue;
      this.calls.delete(id);
      this.callsByCallId.delete(c.callId);
    }
  }

  // ─────────────────────────────── lifecycle ───────────────────────────────

  snapshot(): EmulatorSnapshot {
    return {
      rooms: [...this.rooms.values()].map((r) => ({
        name: r.name,
        sipEndpoints: r.endpoints.map((e) => ({ uri: e.uri, ready: e.ready, ...(e.callId ? { callId: e.callId } : {}) })),
        participants: [...r.participants.values()].map((p) => ({
          sessionId: p.sessionId,
          userName: p.userName,
          isSip: p.kind === 'sip',
          owner: p.kind === 'bot' && p.owner,
        })),
        transcription: r.transcription,
      })),
      calls: [...this.calls.values()].map((c) => ({
        id: c.id,
        callId: c.callId,
        to: c.to,
        state: c.state,
        ...(c.reason ? { reason: c.reason } : {}),
      })),
      clients: this.clientCount(),
      sockets: this.socketCount(),
      timers: this.timers.size,
      webhooksInFlight: this.webhookAborts.size + (this.webhooks?.inFlight ?? 0),
    };
  }

  getCallByCallId(callId: string): CallImpl | undefined {
    return this.callsByCallId.get(callId);
  }

  /** Ends calls, closes rooms' sessions, cancels timers and webhooks. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.webhooks?.close();
    for (const c of this.calls.values()) c.end('emulator_closed');
    for (const ac of this.webhookAborts) ac.abort(new Error('emulator closed'));
    this.timers.clearAll();
  }
}
