/** Rooms: `POST/GET/DELETE /rooms`, their validation (Daily's room properties) and their SIP endpoints. */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { ApiError, badRequest } from './errors.js';
import { isObj, randomDigits, randomName, sipBase, type Room, type RoomSip, type SipEndpoint } from './model.js';
import { Participants } from './presence.js';
import { ROOM_NAME_RE } from './tokens.js';

const ROOM_PROPERTIES = new Set([
  'nbf',
  'exp',
  'max_participants',
  'enable_people_ui',
  'enable_pip_ui',
  'enable_emoji_reactions',
  'enable_hand_raising',
  'enable_prejoin_ui',
  'enable_live_captions_ui',
  'enable_network_ui',
  'enable_noise_cancellation_ui',
  'enable_breakout_rooms',
  'enable_knocking',
  'enable_screenshare',
  'enable_video_processing_ui',
  'enable_chat',
  'enable_shared_chat_history',
  'start_video_off',
  'start_audio_off',
  'owner_only_broadcast',
  'enable_recording',
  'eject_at_room_exp',
  'eject_after_elapsed',
  'enable_advanced_chat',
  'enable_hidden_participants',
  'enable_mesh_sfu',
  'sfu_switchover',
  'enable_adaptive_simulcast',
  'enable_multiparty_adaptive_simulcast',
  'enforce_unique_user_ids',
  'experimental_optimize_large_calls',
  'lang',
  'meeting_join_hook',
  'geo',
  'rtmp_geo',
  'disable_rtmp_geo_fallback',
  'recordings_bucket',
  'enable_terse_logging',
  'auto_transcription_settings',
  'enable_transcription_storage',
  'transcription_bucket',
  'recordings_template',
  'enable_dialout',
  'dialout_config',
  'dialin',
  'sip',
  'streaming_endpoints',
  'permissions',
  'auto_start_transcription',
]);

/** Daily's default max_sip_pstn_sessions_per_room. */
export const MAX_SIP_ENDPOINTS = 5;

export interface RoomStoreOptions {
  /** The emulated domain's name (SIP hosts). */
  domainName: string;
  /** The emulator's HTTP origin (room URLs); known once the server listens. */
  origin: () => string;
  logger: Logger;
}

export class RoomStore {
  private readonly rooms = new Map<string, Room>();

  constructor(private readonly o: RoomStoreOptions) {}

  /** The domain's SIP host: `<domain>.sip.daily.co` (Daily's example), `<domain>.sip-us.daily.co` with provider `daily`. */
  sipHostFor(provider?: string): string {
    return provider === 'daily' ? `${this.o.domainName}.sip-us.daily.co` : `${this.o.domainName}.sip.daily.co`;
  }

  get sipHost(): string {
    return this.sipHostFor();
  }

  values(): IterableIterator<Room> {
    return this.rooms.values();
  }

  get(name: string): Room | undefined {
    return this.rooms.get(name);
  }

  /** Still this room (not deleted, not replaced by another of the same name). */
  isCurrent(r: Room): boolean {
    return this.rooms.get(r.name) === r;
  }

  require(name: string): Room {
    const r = this.rooms.get(name);
    if (!r) throw new ApiError(404, 'not-found', `room ${name} not found`);
    return r;
  }

  remove(r: Room): void {
    if (this.isCurrent(r)) this.rooms.delete(r.name);
  }

  /** The room and endpoint `sipUri` (query ignored) names. */
  findEndpoint(sipUri: string): { room: Room; endpoint: SipEndpoint } | undefined {
    const uri = sipBase(sipUri);
    for (const room of this.rooms.values()) {
      const endpoint = room.endpoints.find((e) => sipBase(e.uri) === uri);
      if (endpoint) return { room, endpoint };
    }
    return undefined;
  }

  toJson(r: Room): Record<string, unknown> {
    const config: Record<string, unknown> = { ...r.properties };
    if (r.sip) {
      config.sip = { ...r.sip };
      const [first, ...extra] = r.endpoints.map((e) => e.uri);
      config.sip_uri = { endpoint: first, ...(extra.length > 0 ? { extra_endpoints: extra } : {}) };
    }
    return { id: r.id, name: r.name, api_created: true, privacy: r.privacy, url: r.url, created_at: r.createdAt, config };
  }

  create(body: unknown): Room {
    const b = body === undefined || body === null ? {} : body;
    if (!isObj(b)) throw badRequest('body must be a JSON object');
    for (const k of Object.keys(b)) if (!['name', 'privacy', 'properties'].includes(k)) throw badRequest(`unknown parameter '${k}'`);
    let name: string;
    if (b.name === undefined) {
      do name = randomName();
      while (this.rooms.has(name));
    } else {
      if (typeof b.name !== 'string' || !ROOM_NAME_RE.test(b.name))
        throw badRequest('name must be 1-128 characters: letters, digits, - and _');
      name = b.name;
      if (this.rooms.has(name)) throw badRequest(`a room named ${name} already exists`);
    }
    const privacy = b.privacy ?? 'public';
    if (privacy !== 'public' && privacy !== 'private' && privacy !== 'org')
      throw badRequest("privacy must be 'public', 'private' or 'org'");
    const props = b.properties ?? {};
    if (!isObj(props)) throw badRequest('properties must be an object');
    for (const k of Object.keys(props)) if (!ROOM_PROPERTIES.has(k)) throw badRequest(`unknown room property '${k}'`);
    validateTimes(props);
    const sip = props.sip !== undefined && props.sip !== null ? validateSip(props.sip) : undefined;
    const { sip: _sip, ...rest } = props;
    const room: Room = {
      id: randomUUID(),
      name,
      url: `${this.o.origin()}/${name}`,
      privacy,
      createdAt: new Date().toISOString(),
      properties: rest,
      ...(sip ? { sip } : {}),
      endpoints: sip
        ? Array.from({ length: sip.num_endpoints }, () => ({
            uri: `sip:${randomDigits(10)}@${this.sipHostFor(sip.provider)}`,
            ready: false,
          }))
        : [],
      participants: new Participants(),
      sessionActive: false,
      sessionCancels: new Set(),
      transcription: false,
    };
    this.rooms.set(name, room);
    this.o.logger.debug({ room: name, sipEndpoints: room.endpoints.length }, 'emulator: room created');
    return room;
  }

  /**
   * POST /rooms/:name (Daily's "set room configuration"): `privacy` and `properties`, merged into the
   * room's. Changing `sip` of an existing room is not emulated (400, said so).
   */
  update(name: string, body: unknown): Room {
    const room = this.require(name);
    const b = body === undefined || body === null ? {} : body;
    if (!isObj(b)) throw badRequest('body must be a JSON object');
    for (const k of Object.keys(b)) if (!['privacy', 'properties'].includes(k)) throw badRequest(`unknown parameter '${k}'`);
    if (b.privacy !== undefined && b.privacy !== 'public' && b.privacy !== 'private' && b.privacy !== 'org')
      throw badRequest("privacy must be 'public', 'private' or 'org'");
    const props = b.properties ?? {};
    if (!isObj(props)) throw badRequest('properties must be an object');
    for (const k of Object.keys(props)) if (!ROOM_PROPERTIES.has(k)) throw badRequest(`unknown room property '${k}'`);
    if (props.sip !== undefined) throw badRequest('the emulator does not change the sip settings of an existing room');
    validateTimes(props);
    if (b.privacy !== undefined) room.privacy = b.privacy;
    Object.assign(room.properties, props);
    return room;
  }
}

/** `exp`, `nbf`, and the boolean properties, as create and update check them. */
function validateTimes(props: Record<string, unknown>): void {
  const nowSec = Date.now() / 1000;
  if (props.exp !== undefined) {
    if (typeof props.exp !== 'number' || !Number.isFinite(props.exp)) throw badRequest('exp must be a unix timestamp in seconds');
    if (props.exp <= nowSec) throw badRequest('exp must be in the future');
  }
  if (props.nbf !== undefined && (typeof props.nbf !== 'number' || !Number.isFinite(props.nbf)))
    throw badRequest('nbf must be a unix timestamp in seconds');
  for (const k of ['eject_at_room_exp', 'enable_dialout'] as const) {
    if (props[k] !== undefined && typeof props[k] !== 'boolean') throw badRequest(`${k} must be a boolean`);
  }
}

/** Daily's SIP codecs (docs: SIP dial-in and dial-out): audio PCMU, PCMA, G722, Opus; video H264, VP8. */
const SIP_CODECS = { audio: ['PCMU', 'PCMA', 'G722', 'OPUS'], video: ['H264', 'VP8'] } as const;
/** `daily` (Daily's own SIP infrastructure) or `signalwire` (the default when unset). */
export const SIP_PROVIDERS = ['daily', 'signalwire'] as const;
const SIP_KEYS = ['display_name', 'video', 'sip_mode', 'num_endpoints', 'codecs', 'provider'];

/**
 * `properties.sip` as Daily documents it: `{sip_mode: 'dial-in', display_name?, video?, num_endpoints? (1..5),
 * codecs? {audio?: [...], video?: [...]}, provider? ('daily' | 'signalwire')}`. Wrong types → 400. Daily documents
 * no length limit for `display_name`, so there is none here.
 */
export function validateSip(s: unknown): RoomSip {
  if (!isObj(s)) throw badRequest('sip must be an object or null');
  for (const k of Object.keys(s)) if (!SIP_KEYS.includes(k)) throw badRequest(`unknown sip property '${k}'`);
  if (s.sip_mode !== 'dial-in') throw badRequest("sip.sip_mode must be 'dial-in'");
  if (s.display_name !== undefined && typeof s.display_name !== 'string') throw badRequest('sip.display_name must be a string');
  if (s.video !== undefined && typeof s.video !== 'boolean') throw badRequest('sip.video must be a boolean');
  const n = s.num_endpoints ?? 1;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_SIP_ENDPOINTS) {
    throw badRequest(`sip.num_endpoints must be an integer from 1 to ${MAX_SIP_ENDPOINTS} (max_sip_pstn_sessions_per_room)`);
  }
  if (s.provider !== undefined && !(SIP_PROVIDERS as readonly unknown[]).includes(s.provider)) {
    throw badRequest(`sip.provider must be one of ${SIP_PROVIDERS.join(', ')}`);
  }
  if (s.codecs !== undefined) validateCodecs(s.codecs);
  return {
    display_name: s.display_name ?? 'sip-dialin',
    video: s.video ?? false,
    sip_mode: 'dial-in',
    num_endpoints: n,
    ...(s.provider === undefined ? {} : { provider: s.provider as string }),
    ...(s.codecs === undefined ? {} : { codecs: s.codecs }),
  };
}

function validateCodecs(c: unknown): void {
  if (!isObj(c)) throw badRequest('sip.codecs must be an object {audio?, video?}');
  for (const [kind, list] of Object.entries(c)) {
    if (kind !== 'audio' && kind !== 'video') throw badRequest(`unknown sip.codecs property '${kind}'`);
    const known: readonly string[] = SIP_CODECS[kind];
    if (!Array.isArray(list) || list.some((x) => typeof x !== 'string' || !known.includes(x.toUpperCase()))) {
      throw badRequest(`sip.codecs.${kind} must be an array of ${known.join(', ')}`);
    }
  }
}
