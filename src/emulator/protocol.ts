/**
 * The emulator's call-client WebSocket protocol (see docs/emulator.md).
 *
 * One socket = one participant. The client sends `join` once, then `action`s; the server
 * answers `joined` (or `join-error` and closes), `ack`s every action by id, and pushes
 * `event`s named and shaped like `CallClientEventMap` (src/daily/call-client.ts).
 * Shared by the server (src/emulator/ws.ts) and the client (src/emulator/client.ts).
 */
import type { CallClientEvent, CallClientEventMap, CallParticipant } from '../daily/call-client.js';
import { CALL_CLIENT_ACTIONS, EMULATOR_EVENTS, EMULATOR_INTERNAL_ACTIONS } from '../daily/call-client-vocab.js';

/** Path of the call-client socket on the emulator's origin. */
export const CALL_CLIENT_WS_PATH = '/_emulator/ws';

/**
 * The actions a call client may send (args and effects: docs/emulator.md, "Actions"). The server
 * accepts exactly these (ws.ts), the core carries them out (actions.ts, a switch over this type).
 */
export const ACTION_NAMES = [...Object.values(CALL_CLIENT_ACTIONS).map((a) => a.emulator), ...EMULATOR_INTERNAL_ACTIONS] as Array<
  (typeof CALL_CLIENT_ACTIONS)[keyof typeof CALL_CLIENT_ACTIONS]['emulator'] | (typeof EMULATOR_INTERNAL_ACTIONS)[number]
>;

export type ActionName = (typeof ACTION_NAMES)[number];

export type ClientMessage =
  | { type: 'join'; roomUrl: string; token?: string; userName?: string }
  | { type: 'action'; id: string | number; action: ActionName; args?: Record<string, unknown> };

export type ServerEventMessage = {
  [E in CallClientEvent]: { type: 'event'; event: E; payload: CallClientEventMap[E] };
}[CallClientEvent];

export type ServerMessage =
  | { type: 'joined'; localSessionId: string; participants: CallParticipant[] }
  | { type: 'join-error'; code: string; message: string }
  /** `result`: what the action returns (start-dial-out: `{session: {sessionId}}`). */
  | { type: 'ack'; id: string | number; error?: string; code?: string; result?: unknown }
  /** A phone participant's audio: one 20 ms frame of PCM16 mono, little-endian, base64 (after `receive-audio`). */
  | { type: 'audio'; participantId: string; sampleRate: number; pcm: string }
  | ServerEventMessage;

/** Event names the server may push (a subset of CallClientEventMap; never `audio-frame`). */
export const SERVER_EVENTS: ReadonlySet<string> = new Set<CallClientEvent>(EMULATOR_EVENTS);

/** WebSocket close codes the server uses. */
export const WS_CLOSE = {
  normal: 1000,
  goingAway: 1001,
  /** Join refused (bad token, no such room…). */
  joinRefused: 4001,
  /** Ejected, room deleted, or room expired. */
  removed: 4002,
  protocolError: 4003,
} as const;
