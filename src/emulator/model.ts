/** The emulated platform's data: rooms, participants, SIP endpoints, and small shared helpers. */
import { randomBytes } from 'node:crypto';
import type { CallParticipant } from '../daily/call-client.js';
import type { CallImpl } from './call.js';
import type { ServerMessage } from './protocol.js';

export interface BotParticipant {
  kind: 'bot';
  sessionId: string;
  userName: string;
  owner: boolean;
  room: Room;
  joinedAt: number;
  /** Audio still playing, by action id: cancel functions. */
  audio: Map<string | number, () => void>;
  /** `receive-audio {enabled: true}`: the phone participants' speech reaches it as audio frames. */
  receivesAudio?: boolean;
  send(msg: ServerMessage): void;
  /** Closes the socket (server side). */
  close(code: number, reason: string): void;
}

/** What a room's session carries while it records (recordings.ts): PCM16 mono heard now, or words without samples (spoken by espeak-ng). */
export interface RoomRecorder {
  add(leg: 'caller' | 'bot', pcm: Int16Array, sampleRate: number): void;
  addWords(leg: 'caller' | 'bot', text: string): void;
}

export interface SipParticipant {
  kind: 'sip';
  sessionId: string;
  userName: string;
  call: CallImpl;
  /** The dial-in SIP endpoint, or the dialled destination for a dial-out leg. */
  endpoint: string;
  /** `out`: a dial-out leg (startDialOut); dial-in otherwise. */
  direction?: 'out';
  /** `updateParticipant({updatePermissions: {canReceive}})`: whose audio this participant hears. */
  canReceive?: CanReceive;
}

/** Audio part of Daily's `canReceive` permission: a base rule and per-participant exceptions. */
export interface CanReceive {
  base: boolean;
  byParticipantId: Record<string, boolean>;
}

/** Whether phone participant `listener` hears participant `fromSessionId` (Daily's `canReceive`). */
export function hears(listener: SipParticipant, fromSessionId: string): boolean {
  const c = listener.canReceive;
  if (!c) return true;
  return c.byParticipantId[fromSessionId] ?? c.base;
}

export type Participant = BotParticipant | SipParticipant;

/** One participant's stay in a room, for `GET /rooms/:name/presence`. */
export interface PresenceEntry {
  sessionId: string;
  userName: string;
  joinedAtMs: number;
  leftAtMs?: number;
}

export interface ParticipantList extends Map<string, Participant> {
  /** Who was in the room at `atMs`. */
  presentAt(atMs: number): PresenceEntry[];
}

export interface SipEndpoint {
  uri: string;
  ready: boolean;
  /** The call forwarded to (or connected through) this endpoint. */
  callId?: string;
}

/** A room's `properties.sip`, as validated (rooms.ts) and returned in `config.sip`. */
export interface RoomSip {
  display_name: string;
  video: boolean;
  sip_mode: 'dial-in';
  num_endpoints: number;
  provider?: string;
  codecs?: unknown;
}

export interface Room {
  id: string;
  name: string;
  url: string;
  privacy: 'public' | 'private' | 'org';
  createdAt: string;
  properties: Record<string, unknown>;
  sip?: RoomSip;
  endpoints: SipEndpoint[];
  /** Every participant (bots, dial-in and dial-out legs), with who was in the room when (presence.ts). */
  participants: ParticipantList;
  sessionActive: boolean;
  sessionCancels: Set<() => void>;
  transcription: boolean;
  expCancel?: () => void;
  /** A cloud recording is running (recordings.ts): what the room carries goes into it. */
  recorder?: RoomRecorder;
}

export const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function randomName(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  const b = randomBytes(20);
  return [...b].map((x) => alphabet[x % alphabet.length]).join('');
}

export function randomDigits(n: number): string {
  return [...randomBytes(n)].map((x) => String(x % 10)).join('');
}

/** `sip:user@host?params` → `sip:user@host` (Daily accepts e.g. `?x-daily_display_name=`). */
export function sipBase(uri: string): string {
  const q = uri.indexOf('?');
  const s = q < 0 ? uri : uri.slice(0, q);
  return s.trim().toLowerCase();
}

export function participantJson(p: Participant, localSessionId?: string): CallParticipant {
  return {
    sessionId: p.sessionId,
    userName: p.userName,
    local: p.sessionId === localSessionId,
    ...(p.kind === 'sip' ? { isSip: true } : { isSip: false }),
  };
}
