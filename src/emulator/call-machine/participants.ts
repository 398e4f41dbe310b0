/** Participant objects as Daily's call machine sends them to daily-js (the stand-in's data shapes). */
import type { CallParticipant } from '../../daily/call-client.js';

const trackOff = { subscribed: false, state: 'off', off: { byUser: true } };

/** A daily-js `DailyParticipant` as the call machine sends it (tracks are attached by daily-js). */
export function fullParticipant(p: {
  sessionId: string;
  userName?: string;
  userId?: string;
  local: boolean;
  participantType?: string;
  audio: boolean;
}): Record<string, unknown> {
  return {
    session_id: p.sessionId,
    user_id: p.userId ?? p.sessionId,
    user_name: p.userName ?? '',
    local: p.local,
    owner: false,
    record: false,
    joined_at: new Date().toISOString(),
    will_eject_at: new Date(0).toISOString(),
    audio: p.audio,
    video: false,
    screen: false,
    cam_info: {},
    screen_info: {},
    networkThreshold: 'good',
    networkQualityState: 'good',
    permissions: { hasPresence: true, canSend: true, canReceive: { base: true }, canAdmin: false },
    ...(p.participantType ? { participantType: p.participantType } : {}),
    tracks: {
      audio: p.audio ? { subscribed: true, state: 'playable' } : { ...trackOff },
      video: { ...trackOff },
      screenAudio: { ...trackOff },
      screenVideo: { ...trackOff },
    },
  };
}

/** An emulator `CallParticipant` as a daily-js participant object. */
export function participantFrom(p: CallParticipant): Record<string, unknown> {
  return fullParticipant({
    sessionId: p.sessionId,
    local: p.local,
    audio: true,
    ...(p.userName !== undefined ? { userName: p.userName } : {}),
    ...(p.userId !== undefined ? { userId: p.userId } : {}),
    ...(p.isSip ? { participantType: 'sip-dial-in' } : p.isSip === false ? { participantType: 'unknown' } : {}),
  });
}
