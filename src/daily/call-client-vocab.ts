/**
 * The call-client vocabulary, in one table each for actions and events. The `CallClient`
 * interface and `CallClientEventMap` (call-client.ts) are the contract; these tables say how each
 * entry travels in each implementation, and the lists the others use are derived from them:
 *
 *  - the emulator's WebSocket protocol (src/emulator/protocol.ts: `ACTION_NAMES`, `SERVER_EVENTS`),
 *  - the daily-js page bridge (src/daily/browser: the daily-js methods called, the events listened to).
 *
 * `satisfies Record<…>` makes a new `CallClient` method or event fail to compile here until it is
 * given its wire names; a new emulator action then fails to compile in the emulator's exhaustive
 * `Actions.run` switch, and both clients fail to compile until they implement the method.
 */
import type { CallClient, CallClientEvent } from './call-client.js';

/** The `CallClient` methods that act on the call (not its life cycle or event subscription). */
export type CallClientAction = Exclude<keyof CallClient, 'kind' | 'prepare' | 'join' | 'on' | 'close'>;

/**
 * Per action: the emulator socket action that carries it, and the daily-js method behind it
 * (`custom`: done by the page's own code, e.g. audio through Web Audio).
 */
export const CALL_CLIENT_ACTIONS = {
  leave: { emulator: 'leave', daily: 'leave' },
  sendAudio: { emulator: 'send-audio', daily: 'custom' },
  receiveAudio: { emulator: 'receive-audio', daily: 'custom' },
  sendDTMF: { emulator: 'send-dtmf', daily: 'sendDTMF' },
  sipCallTransfer: { emulator: 'sip-call-transfer', daily: 'sipCallTransfer' },
  sipRefer: { emulator: 'sip-refer', daily: 'sipRefer' },
  startTranscription: { emulator: 'start-transcription', daily: 'startTranscription' },
  stopTranscription: { emulator: 'stop-transcription', daily: 'stopTranscription' },
  sendAppMessage: { emulator: 'send-app-message', daily: 'sendAppMessage' },
  ejectParticipant: { emulator: 'eject', daily: 'updateParticipant' },
  startDialOut: { emulator: 'start-dial-out', daily: 'startDialOut' },
  stopDialOut: { emulator: 'stop-dial-out', daily: 'stopDialOut' },
  setCanReceive: { emulator: 'update-permissions', daily: 'updateParticipant' },
} as const satisfies Record<CallClientAction, { emulator: string; daily: string }>;

/** Socket actions that are no `CallClient` method of their own (sendAudio's cancellation). */
export const EMULATOR_INTERNAL_ACTIONS = ['cancel-audio'] as const;

/**
 * Per event: the daily-js events it is made from (mapped in src/daily/browser/events.ts), and how
 * the emulator sends it (`event` messages, or `audio` frames).
 */
export const CALL_CLIENT_EVENTS = {
  'joined-meeting': { daily: ['joined-meeting'], emulator: 'event' },
  'dialin-ready': { daily: ['dialin-ready'], emulator: 'event' },
  'dialin-connected': { daily: ['dialin-connected'], emulator: 'event' },
  'dialin-stopped': { daily: ['dialin-stopped'], emulator: 'event' },
  'dialin-error': { daily: ['dialin-error'], emulator: 'event' },
  'dialin-warning': { daily: ['dialin-warning'], emulator: 'event' },
  'dialout-connected': { daily: ['dialout-connected'], emulator: 'event' },
  'dialout-answered': { daily: ['dialout-answered'], emulator: 'event' },
  'dialout-stopped': { daily: ['dialout-stopped'], emulator: 'event' },
  'dialout-error': { daily: ['dialout-error'], emulator: 'event' },
  'dialout-warning': { daily: ['dialout-warning'], emulator: 'event' },
  'participant-joined': { daily: ['participant-joined'], emulator: 'event' },
  'participant-left': { daily: ['participant-left'], emulator: 'event' },
  'dtmf-event': { daily: ['dtmf-event'], emulator: 'event' },
  'transcription-message': { daily: ['transcription-message'], emulator: 'event' },
  'app-message': { daily: ['app-message'], emulator: 'event' },
  'audio-frame': { daily: ['track-started', 'track-stopped'], emulator: 'audio' },
  'recording-started': { daily: ['recording-started'], emulator: 'event' },
  'recording-stopped': { daily: ['recording-stopped'], emulator: 'event' },
  'recording-error': { daily: ['recording-error'], emulator: 'event' },
  error: { daily: ['error', 'nonfatal-error'], emulator: 'event' },
  'left-meeting': { daily: ['left-meeting'], emulator: 'event' },
} as const satisfies Record<CallClientEvent, { daily: readonly string[]; emulator: 'event' | 'audio' }>;

type EventsSentAs<K extends 'event' | 'audio'> = {
  [E in CallClientEvent]: (typeof CALL_CLIENT_EVENTS)[E]['emulator'] extends K ? E : never;
}[CallClientEvent];

/** Events the emulator sends as `event` messages. */
export const EMULATOR_EVENTS = (Object.keys(CALL_CLIENT_EVENTS) as CallClientEvent[]).filter(
  (e) => CALL_CLIENT_EVENTS[e].emulator === 'event',
) as Array<EventsSentAs<'event'>>;

/** daily-js events the page bridge listens to: the table's, and those the bridge uses itself. */
export const DAILY_JS_EVENTS: readonly string[] = [
  ...new Set([
    ...Object.values(CALL_CLIENT_EVENTS).flatMap((e) => e.daily),
    // The bridge's own: load progress, the meeting's start, transcription's state, participants' tracks.
    'loading',
    'load-attempt-failed',
    'loaded',
    'joining-meeting',
    'participant-updated',
    'transcription-started',
    'transcription-stopped',
    'transcription-error',
  ]),
];
