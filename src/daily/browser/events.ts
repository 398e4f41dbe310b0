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

/** daily-js `DailyParticipant` → `CallParticipant`. */
export function toCallParticipant(raw: unknown): CallParticipant {
  const p = (raw ?? {}) as Record<string, unknown>;
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
  const rr = raw.rawResponse;
  if (rr && typeof rr === 'object') {
    const r = rr as Record<string, unknown>;
    if (typeof r.is_final === 'boolean') return r.is_final;
    if (typeof r.isFinal === 'boolean') return r.isFinal;
  }
  if (typeof raw.isFinal === 'boolean') return raw.isFinal;
  return true;
}

/**
 * Maps one daily-js event. Returns null for events the interface does not carry
 * (loading, participant-updated, track-started …).
 */
export function mapDailyEvent(ev: RawDailyEvent): MappedEvent | null {
  switch (ev.action) {
    case 'joined-meeting': {
      const ps = (ev.participants ?? {}) as Record<string, unknown>;
      const participants = Object.values(ps).map(toCallParticipant);
      const local = participants.find((p) => p.local);
      return { event: 'joined-meeting', payload: { localSessionId: local?.sessionId ?? '', participants } };
    }
    case 'dialin-ready':
      return { event: 'dialin-ready', payload: { sipEndpoint: str(ev.sipEndpoint) ?? '' } };
    case 'dialin-connected': {
      const payload: CallClientEventMap['dialin-connected'] = { sessionId: str(ev.sessionId) ?? '' };
      const sipFrom = str(ev.sipFrom);
      if (sipFrom !== undefined) payload.sipFrom = sipFrom;
      const sipEndpoint = str(ev.sipEndpoint);
      if (sipEndpoint !== undefined) payload.sipEndpoint = sipEndpoint;
      if (ev.sipHeaders && typeof ev.sipHeaders === 'object') payload.sipHeaders = ev.sipHeaders as Record<string, unknown>;
      return { event: 'dialin-connected', payload };
    }
    case 'dialin-stopped': {
      const payload: CallClientEventMap['dialin-stopped'] = { sessionId: str(ev.sessionId) ?? '' };
      const sipEndpoint = str(ev.sipEndpoint);
      if (sipEndpoint !== undefined) payload.sipEndpoint = sipEndpoint;
      return { event: 'dialin-stopped', payload };
    }
    case 'dialin-error':
    case 'dialin-warning': {
      const payload: { errorMsg: string; sessionId?: string } = { errorMsg: str(ev.errorMsg) ?? ev.action };
      const sessionId = str(ev.sessionId);
      if (sessionId !== undefined) payload.sessionId = sessionId;
      return ev.action === 'dialin-error' ? { event: 'dialin-error', payload } : { event: 'dialin-warning', payload };
    }
    case 'dialout-connected':
    case 'dialout-answered':
    case 'dialout-stopped': {
      const payload: { sessionId: string; destination?: string } = { sessionId: str(ev.sessionId) ?? '' };
      const destination = str(ev.destination);
      if (destination !== undefined) payload.destination = destination;
      return { event: ev.action, payload };
    }
    case 'dialout-error':
    case 'dialout-warning': {
      const payload: { errorMsg: string; sessionId?: string } = { errorMsg: str(ev.errorMsg) ?? ev.action };
      const sessionId = str(ev.sessionId);
      if (sessionId !== undefined) payload.sessionId = sessionId;
      return ev.action === 'dialout-error' ? { event: 'dialout-error', payload } : { event: 'dialout-warning', payload };
    }
    case 'participant-joined':
      return { event: 'participant-joined', payload: { participant: toCallParticipant(ev.participant) } };
    case 'participant-left': {
      const payload: CallClientEventMap['participant-left'] = { participant: toCallParticipant(ev.participant) };
      const reason = str(ev.reason);
      if (reason !== undefined) payload.reason = reason;
      return { event: 'participant-left', payload };
    }
    case 'dtmf-event': {
      const payload: CallClientEventMap['dtmf-event'] = { tone: str(ev.tone) ?? '' };
      const sessionId = str(ev.sessionId);
      if (sessionId !== undefined) payload.sessionId = sessionId;
      return { event: 'dtmf-event', payload };
    }
    case 'transcription-message':
      return {
        event: 'transcription-message',
        payload: {
          participantId: str(ev.participantId) ?? '',
          text: str(ev.text) ?? '',
          isFinal: isFinalFrom(ev),
          timestampMs: timestampMs(ev.timestamp),
        },
      };
    case 'app-message':
      return { event: 'app-message', payload: { data: ev.data, fromId: str(ev.fromId) ?? '' } };
    case 'error': {
      // daily-js's `error` event is its fatal error: the meeting state becomes `error`.
      const err = (ev.error ?? {}) as Record<string, unknown>;
      const payload: CallClientEventMap['error'] = {
        message: str(ev.errorMsg) ?? str(err.msg) ?? 'daily-js error',
        fatal: true,
      };
      const code = str(err.type);
      if (code !== undefined) payload.code = code;
      return { event: 'error', payload };
    }
    case 'nonfatal-error': {
      const payload: CallClientEventMap['error'] = { message: str(ev.errorMsg) ?? 'daily-js non-fatal error', fatal: false };
      const code = str(ev.type);
      if (code !== undefined) payload.code = code;
      return { event: 'error', payload };
    }
    case 'left-meeting':
      return { event: 'left-meeting', payload: { reason: str(ev.reason) ?? 'left' } };
    default:
      return null;
  }
}
