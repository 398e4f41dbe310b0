/** Shapes of what Daily sends us and what we send Daily (the subset we use). */
import { Type, type Static } from 'typebox';
import { isWithheldCaller, WITHHELD_CALLER } from './sip.js';

/** The pinless dial-in webhook body (also probe bodies, hence every field optional here). */
export const PinlessWebhookBody = Type.Object(
  {
    To: Type.Optional(Type.String({ maxLength: 256 })),
    /** Missing, null, empty or `anonymous`-like: a withheld caller ID (see toPinlessCall). */
    From: Type.Optional(Type.Union([Type.String({ maxLength: 256 }), Type.Null()])),
    callId: Type.Optional(Type.String({ maxLength: 128 })),
    callDomain: Type.Optional(Type.String({ maxLength: 128 })),
    sipHeaders: Type.Optional(
      Type.Record(
        Type.String({ maxLength: 128 }),
        Type.Union([Type.String({ maxLength: 2048 }), Type.Number(), Type.Boolean(), Type.Null()]),
        {
          maxProperties: 64,
        },
      ),
    ),
    test: Type.Optional(Type.Unknown()),
    Test: Type.Optional(Type.Unknown()),
  },
  { additionalProperties: true },
);
export type PinlessWebhookBody = Static<typeof PinlessWebhookBody>;

/** A webhook that announces a real call. */
export interface PinlessCall {
  to: string;
  /** The caller's number or URI; `withheld` (WITHHELD_CALLER) when the caller ID is withheld. */
  from: string;
  callId: string;
  callDomain: string;
  sipHeaders: Record<string, string>;
}

/** Probe bodies: Daily's `{"To": "<number>"}` when dial-in is configured, and the webhook test body. */
export function isProbeBody(body: PinlessWebhookBody): boolean {
  if (body.callId !== undefined || body.callDomain !== undefined || body.From !== undefined) return false;
  if ('test' in body || 'Test' in body) return true;
  const keys = Object.keys(body);
  return keys.length === 1 && keys[0] === 'To';
}

/**
 * Validates a call webhook; returns the missing field names when it is incomplete. A `From` that
 * carries no caller ID (missing, empty, `anonymous`, `sip:anonymous@…`, `restricted`, …) is a real
 * call whose `from` is `withheld`.
 */
export function toPinlessCall(body: PinlessWebhookBody): PinlessCall | { missing: string[] } {
  const missing = (['callId', 'callDomain', 'To'] as const).filter((k) => {
    const v = body[k];
    return typeof v !== 'string' || v.trim().length === 0;
  });
  if (missing.length > 0) return { missing };
  const sipHeaders: Record<string, string> = {};
  for (const [k, v] of Object.entries(body.sipHeaders ?? {})) {
    if (v !== null && v !== undefined) sipHeaders[k] = String(v);
  }
  const from = isWithheldCaller(body.From) ? WITHHELD_CALLER : body.From!.trim();
  return { to: body.To!, from, callId: body.callId!, callDomain: body.callDomain!, sipHeaders };
}

export interface SipRoomProperties {
  display_name: string;
  video: boolean;
  sip_mode: 'dial-in';
  num_endpoints: number;
}

export interface DailyRoom {
  id: string;
  name: string;
  url: string;
  privacy?: string;
  created_at?: string;
  config: {
    exp?: number;
    sip?: SipRoomProperties;
    sip_uri?: { endpoint: string; extra_endpoints?: string[] };
    [k: string]: unknown;
  };
}

/** POST /rooms, as patchbay creates its dial-in rooms. */
export interface CreateDialinRoomRequest {
  name?: string;
  displayName: string;
  /** Room expiry (epoch seconds). */
  expSec: number;
  numEndpoints?: number;
  /** `enable_dialout` (DAILY_DIALOUT): the bot may dial out (warm transfer). */
  enableDialout?: boolean;
  /** `enable_recording` (DAILY_RECORDING_ROOMS): the room may be recorded in Daily's cloud. */
  enableRecording?: RecordingType;
}

/** GET /rooms (one page). */
export interface DailyRoomList {
  total_count?: number;
  data: DailyRoom[];
}

/** One participant of `GET /rooms/:name/presence` (Daily's data trails the room by up to 15 s). */
export interface DailyPresenceParticipant {
  room: string;
  id: string;
  userId: string;
  userName: string;
  mtgSessionId?: string;
  joinTime: string;
  /** Seconds in the room. */
  duration: number;
}

export interface DailyRoomPresence {
  total_count: number;
  data: DailyPresenceParticipant[];
}

/** POST /meeting-tokens properties patchbay sets (the same ones it self-signs, see token.ts). */
export interface MeetingTokenRequest {
  roomName: string;
  userName: string;
  /** Token expiry (epoch seconds). */
  expSec: number;
  isOwner?: boolean;
}

/** POST /dialin/pinlessCallUpdate. */
export interface PinlessCallUpdateRequest {
  callId: string;
  callDomain: string;
  /** The room's SIP endpoint, with or without its `sip:` scheme (sent with exactly one). */
  sipUri: string;
}

/** GET / (the fields patchbay reads). */
export interface DailyDomain {
  domain_name?: string;
  domain_id?: string;
  config?: { pinless_dialin?: PinlessDialinEntry[]; [k: string]: unknown };
  [k: string]: unknown;
}

/** One pinless dial-in entry (domain property or `/domain-dialin-config` object's `config`). */
export interface PinlessDialinEntry {
  phone_number?: string;
  sip_uri?: string;
  name_prefix?: string;
  room_creation_api?: string;
  hmac?: string;
  hold_music_url?: string;
  timeout_config?: { message?: string };
  ivr_greeting?: { message?: string };
  [k: string]: unknown;
}

/** GET/POST /domain-dialin-config. */
export interface DialinConfig {
  id: string;
  type?: 'pinless_dialin' | 'pin_dialin' | string;
  config?: PinlessDialinEntry;
}

/** A domain webhook (GET/POST /webhooks). */
export interface DailyWebhook {
  uuid: string;
  url: string;
  hmac?: string;
  basicAuth?: string | null;
  retryType?: string;
  eventTypes?: string[];
  state?: string;
  failedCount?: number;
  lastMomentPushed?: string | null;
  [k: string]: unknown;
}

export interface CreateWebhookRequest {
  url: string;
  eventTypes: string[];
  retryType?: string;
  hmac?: string;
  basicAuth?: string;
}

/** Daily's cloud recording types (`startRecording({type})`, `enable_recording`). */
export type RecordingType = 'cloud' | 'cloud-audio-only' | 'raw-tracks';

/** POST /rooms/:name/recordings/start's answer (Daily documents none beyond success; the id comes with `recording-started` or GET /recordings). */
export interface RecordingStartAnswer {
  recordingId?: string;
  status?: string;
}

/** A recording object (GET /recordings, GET /recordings/:id). */
export interface DailyRecording {
  id: string;
  room_name: string;
  start_ts: number;
  status: 'finished' | 'in-progress' | 'canceled' | string;
  duration?: number;
  max_participants?: number;
  share_token?: string;
}
