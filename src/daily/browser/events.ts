/**
 * daily-js events (as serialised by the page bridge: tracks dropped, dates as ISO strings)
 * → `CallClientEventMap` events. Pure functions, so the mapping is testable without a browser.
 */
import type { CallClientEventMap, CallParticipant } from '../call-client.js';

/** A daily-js event object after JSON: `action` plus whatever daily-js put in it. */
export type RawDailyEvent = { action: string } & Record<string, unknown>;

export type MappedEvent = {
  [E in keyof CallClientEventMap]: { event: E; payload: CallClientEventMap[E] };
}[keyof CallClientEventMap];

const SIP_TYPES = new Set(['sip-dial-in', 'sip-dial-out', 'pstn-dial-in', 'pstn-dial-out']);

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** A JSON object (what the page and CDP send), as a record to read fields from. */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

/** daily-js `DailyParticipant` → `CallParticipant`. */
export function toCallParticipant(raw: unknown): CallParticipant {
  const p = isRecord(raw) ? raw : {};
  const participantType = str(p.participantType);
  const out: CallParticipant = {
    sessionId: str(p.session_id) ?? '',
    local: p.local === true,
  };
  const userName = str(p.user_name);
  if (userName !== undefined && userName !== '') out.userName = userName;
  const userId = str(p.user_id);
  if (userId !== undefined && userId !== '') out.userId = userId;
  if (participantType !== undefined) out.isSip = SIP_TYPES.has(participantType);
  return out;
}

function timestampMs(v: unknown): number {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string') {
    const t = Date.parse(v);
    if (Number.isFinite(t)) return t;
  }
  return Date.now();
}

/** Deepgram-style `rawResponse.is_final`, or `isFinal`; a line without either is final. */
function isFinalFrom(raw: Record<string, unknown>): boolean {
  const r = raw.rawResponse;
  if (isRecord(r)) {
    if (typeof r.is_final === 'boolean') return r.is_final;
    if (typeof r.isFinal === 'boolean') return r.isFinal;
  }
  if (typeof raw.isFinal === 'boolean') return raw.isFinal;
  return true;
}

function joinedMeeting(ev: RawDailyEvent): MappedEvent {
  const participants = Object.values(isRecord(ev.participants) ? ev.participants : {}).map(toCallParticipant);
  const local = participants.find((p) => p.local);
  return { event: 'joined-meeting', payload: { localSessionId: local?.sessionId ?? '', participants } };
}

function dialinConnected(ev: RawDailyEvent): MappedEvent {
  const payload: CallClientEventMap['dialin-connected'] = { sessionId: str(ev.sessionId) ?? '' };
  const sipFrom = str(ev.sipFrom);
  if (sipFrom !== undefined) payload.sipFrom = sipFrom;
  const sipEndpoint = str(ev.sipEndpoint);
  if (sipEndpoint !== undefined) payload.sipEndpoint = sipEndpoint;
  if (isRecord(ev.sipHeaders)) payload.sipHeaders = ev.sipHeaders;
  return { event: 'dialin-connected', payload };
}

function dialinStopped(ev: RawDailyEvent): MappedEvent {
  const payload: CallClientEventMap['dialin-stopped'] = { sessionId: str(ev.sessionId) ?? '' };
  const sipEndpoint = str(ev.sipEndpoint);
  if (sipEndpoint !== undefined) payload.sipEndpoint = sipEndpoint;
  return { event: 'dialin-stopped', payload };
}

/** The payload of dialin-/dialout- errors and warnings. */
function legError(ev: RawDailyEvent): { errorMsg: string; sessionId?: string } {
  const payload: { errorMsg: string; sessionId?: string } = { errorMsg: str(ev.errorMsg) ?? ev.action };
  const sessionId = str(ev.sessionId);
  if (sessionId !== undefined) payload.sessionId = sessionId;
  return payload;
}

/** The payload of dialout-connected, -answered and -stopped. */
function dialoutLeg(ev: RawDailyEvent): { sessionId: string; destination?: string } {
  const payload: { sessionId: string; destination?: string } = { sessionId: str(ev.sessionId) ?? '' };
  const destination = str(ev.destination);
  if (destination !== undefined) payload.destination = destination;
  return payload;
}

function participantLeft(ev: RawDailyEvent): MappedEvent {
  const payload: CallClientEventMap['participant-left'] = { participant: toCallParticipant(ev.participant) };
  const reason = str(ev.reason);
  if (reason !== undefined) payload.reason = reason;
  return { event: 'participant-left', payload };
}

function dtmf(ev: RawDailyEvent): MappedEvent {
  const payload: CallClientEventMap['dtmf-event'] = { tone: str(ev.tone) ?? '' };
  const sessionId = str(ev.sessionId);
  if (sessionId !== undefined) payload.sessionId = sessionId;
  return { event: 'dtmf-event', payload };
}

function transcription(ev: RawDailyEvent): MappedEvent {
  return {
    event: 'transcription-message',
    payload: {
      participantId: str(ev.participantId) ?? '',
      text: str(ev.text) ?? '',
      isFinal: isFinalFrom(ev),
      timestampMs: timestampMs(ev.timestamp),
    },
  };
}

/** daily-js's `error` event is its fatal error: the meeting state becomes `error`. */
function fatalError(ev: RawDailyEvent): MappedEvent {
  const err = isRecord(ev.error) ? ev.error : {};
  const payload: CallClientEventMap['error'] = { message: str(ev.errorMsg) ?? str(err.msg) ?? 'daily-js error', fatal: true };
  const code = str(err.type);
  if (code !== undefined) payload.code = code;
  return { event: 'error', payload };
}

function nonfatalError(ev: RawDailyEvent): MappedEvent {
  const payload: CallClientEventMap['error'] = { message: str(ev.errorMsg) ?? 'daily-js non-fatal error', fatal: false };
  const code = str(ev.type);
  if (code !== undefined) payload.code = code;
  return { event: 'error', payload };
}

/** The defined fields only (exactOptionalPropertyTypes). */
function optional(o: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out;
}

function recordingStarted(ev: RawDailyEvent): MappedEvent {
  const payload = optional({
    recordingId: str(ev.recordingId),
    type: str(ev.type),
    instanceId: str(ev.instanceId),
    startedBy: str(ev.startedBy),
  });
  return { event: 'recording-started', payload };
}

/** One mapper per daily-js event the interface carries. */
const MAPPERS = new Map<string, (ev: RawDailyEvent) => MappedEvent>([
  ['joined-meeting', joinedMeeting],
  ['dialin-ready', (ev) => ({ event: 'dialin-ready', payload: { sipEndpoint: str(ev.sipEndpoint) ?? '' } })],
  ['dialin-connected', dialinConnected],
  ['dialin-stopped', dialinStopped],
  ['dialin-error', (ev) => ({ event: 'dialin-error', payload: legError(ev) })],
  ['dialin-warning', (ev) => ({ event: 'dialin-warning', payload: legError(ev) })],
  ['dialout-connected', (ev) => ({ event: 'dialout-connected', payload: dialoutLeg(ev) })],
  ['dialout-answered', (ev) => ({ event: 'dialout-answered', payload: dialoutLeg(ev) })],
  ['dialout-stopped', (ev) => ({ event: 'dialout-stopped', payload: dialoutLeg(ev) })],
  ['dialout-error', (ev) => ({ event: 'dialout-error', payload: legError(ev) })],
  ['dialout-warning', (ev) => ({ event: 'dialout-warning', payload: legError(ev) })],
  ['participant-joined', (ev) => ({ event: 'participant-joined', payload: { participant: toCallParticipant(ev.participant) } })],
  ['participant-left', participantLeft],
  ['dtmf-event', dtmf],
  ['transcription-message', transcription],
  ['app-message', (ev) => ({ event: 'app-message', payload: { data: ev.data, fromId: str(ev.fromId) ?? '' } })],
  ['recording-started', recordingStarted],
  [
    'recording-stopped',
    (ev) => ({ event: 'recording-stopped', payload: optional({ instanceId: str(ev.instanceId), type: str(ev.type) }) }),
  ],
  [
    'recording-error',
    (ev) => ({
      event: 'recording-error',
      payload: { errorMsg: str(ev.errorMsg) ?? 'recording error', ...optional({ instanceId: str(ev.instanceId) }) },
    }),
  ],
  ['error', fatalError],
  ['nonfatal-error', nonfatalError],
  ['left-meeting', (ev) => ({ event: 'left-meeting', payload: { reason: str(ev.reason) ?? 'left' } })],
]);

export function isRawDailyEvent(v: unknown): v is RawDailyEvent {
  return isRecord(v) && typeof v.action === 'string';
}

/**
 * Maps one daily-js event. Returns null for events the interface does not carry
 * (loading, participant-updated, track-started …).
 */
export function mapDailyEvent(ev: RawDailyEvent): MappedEvent | null {
  return MAPPERS.get(ev.action)?.(ev) ?? null;
}
