/**
 * The call-client seam: how a worker's bot takes part in a Daily room.
 *
 * Two implementations exist and the worker code is the same for both:
 *  - `emulator` (src/emulator/client.ts): speaks the local emulator's WebSocket protocol;
 *  - `daily`    (src/daily/browser/): the real @daily-co/daily-js in headless Chromium.
 *
 * Event names and payload fields follow daily-js (index.d.ts of 0.92.x) so that code reading
 * Daily's documentation reads this interface too. Payloads carry only the fields we use;
 * adapters may pass more.
 */

export interface CallParticipant {
  sessionId: string;
  userName?: string;
  userId?: string;
  local: boolean;
  /** True for a participant that joined over SIP/PSTN (the caller). */
  isSip?: boolean;
}

export interface CallClientEventMap {
  /** We are in the room. */
  'joined-meeting': { localSessionId: string; participants: CallParticipant[] };
  /** The room's SIP endpoint is ready to receive the held call: forward it now. Fires once per endpoint. */
  'dialin-ready': { sipEndpoint: string };
  /** The caller is patched into the room. */
  'dialin-connected': { sessionId: string; sipFrom?: string; sipEndpoint?: string; sipHeaders?: Record<string, unknown> };
  /** The dial-in leg ended (the caller hung up, or was transferred away). */
  'dialin-stopped': { sessionId: string; sipEndpoint?: string };
  'dialin-error': { errorMsg: string; sessionId?: string };
  'dialin-warning': { errorMsg: string; sessionId?: string };
  'participant-joined': { participant: CallParticipant };
  'participant-left': { participant: CallParticipant; reason?: string };
  /** A DTMF tone from a SIP participant. */
  'dtmf-event': { tone: string; sessionId?: string };
  /** A transcript line (Daily transcription). `isFinal` false for interim results. */
  'transcription-message': { participantId: string; text: string; isFinal: boolean; timestampMs: number };
  'app-message': { data: unknown; fromId: string };
  /** A remote audio frame (PCM16 mono). Only emitted after `receiveAudio(true)`. */
  'audio-frame': { participantId: string; sampleRate: number; pcm: Int16Array };
  /** Dial-out: the far end was reached (ringing). */
  'dialout-connected': { sessionId: string; destination?: string };
  /** Dial-out: the far end answered (and joins the room as a participant). */
  'dialout-answered': { sessionId: string; destination?: string };
  /** Dial-out: the leg ended, whoever ended it. */
  'dialout-stopped': { sessionId: string; destination?: string };
  'dialout-error': { errorMsg: string; sessionId?: string };
  'dialout-warning': { errorMsg: string; sessionId?: string };
  /** A fatal or non-fatal error from the client or the platform. */
  error: { message: string; fatal: boolean; code?: string };
  /** A cloud recording started (daily-js; `recordingId` when Daily gives it). */
  'recording-started': { recordingId?: string; type?: string; instanceId?: string; startedBy?: string };
  'recording-stopped': { instanceId?: string; type?: string };
  'recording-error': { errorMsg: string; instanceId?: string };
  /** We are out of the room, whoever decided it. */
  'left-meeting': { reason: string };
}

export type CallClientEvent = keyof CallClientEventMap;
export type CallClientListener<E extends CallClientEvent> = (payload: CallClientEventMap[E]) => void;

export interface JoinOptions {
  roomUrl: string;
  token: string;
  userName: string;
  /** Reject (and leave) when not joined within this time. */
  timeoutMs: number;
}

export interface AudioOut {
  /** PCM16 mono samples. May be empty when only `text` is known (the emulator speaks text). */
  pcm: Int16Array;
  sampleRate: number;
  /** What the audio says, when known. The emulator delivers it to the caller as words. */
  text?: string;
  /** More audio of the words already sent (a streamed utterance's later pieces): no new words. */
  continues?: boolean;
  /** Text-only audio (empty `pcm`): its play-out time, when not estimated from `text` (the rest of a resumed prompt). */
  durationMs?: number;
}

export interface CallClient {
  /** Which implementation this is: 'emulator' or 'daily'. */
  readonly kind: 'emulator' | 'daily';

  /**
   * Pay start-up costs before a call is assigned (browser launch, page load). Idempotent.
   * Called in the idle worker.
   */
  prepare(): Promise<void>;

  join(opts: JoinOptions): Promise<{ localSessionId: string }>;
  leave(): Promise<void>;

  on<E extends CallClientEvent>(event: E, listener: CallClientListener<E>): () => void;

  /** Plays audio into the call; resolves when it has been played out (or accepted, for the emulator). */
  sendAudio(audio: AudioOut, signal?: AbortSignal): Promise<void>;
  /** Start or stop emitting `audio-frame` events for remote audio. */
  receiveAudio(enabled: boolean): Promise<void>;

  sendDTMF(opts: { sessionId: string; tones: string }): Promise<void>;
  sipCallTransfer(opts: { sessionId: string; toEndPoint: string }): Promise<void>;
  sipRefer(opts: { sessionId: string; toEndPoint: string }): Promise<void>;
  startTranscription(opts?: { language?: string }): Promise<void>;
  stopTranscription(): Promise<void>;
  sendAppMessage(data: unknown, to?: string): Promise<void>;
  /** `updateParticipant(sessionId, {eject: true})`: hangs up a SIP participant. */
  ejectParticipant(sessionId: string): Promise<void>;
  /** `startDialOut`: calls a SIP URI or phone number into the room (owner; room with `enable_dialout`). */
  startDialOut(opts: DialOutOptions): Promise<{ sessionId: string }>;
  stopDialOut(sessionId: string): Promise<void>;
  /**
   * `updateParticipant(sessionId, {updatePermissions: {canReceive}})`, audio part: whom a participant
   * hears (e.g. keep the caller from hearing the briefing of a warm transfer).
   */
  setCanReceive(sessionId: string, canReceive: CanReceiveAudio): Promise<void>;

  /** Releases everything (sockets, browser). Safe to call twice, and after a failed join. */
  close(): Promise<void>;
}

export type DialOutOptions = ({ sipUri: string } | { phoneNumber: string }) & { displayName?: string; callerId?: string };

/** Daily's `canReceive` permission, audio only: a base rule and per-participant exceptions. */
export interface CanReceiveAudio {
  base?: boolean;
  byParticipantId?: Record<string, boolean>;
}

/** What the worker passes to a client factory. */
export interface CallClientOptions {
  /** The Daily REST base URL (the emulator's, in emulator mode). */
  apiUrl: string;
  logger: import('pino').Logger;
  /** daily client only: Chromium executable. */
  chromiumPath?: string;
  /** daily client only: `dailyConfig.bundlePathOverride` (a local call-machine bundle), unset in production. */
  bundleUrl?: string;
}

/** Small typed event hub the implementations share. */
export class CallClientEvents {
  private readonly listeners = new Map<CallClientEvent, Set<(p: unknown) => void>>();

  on<E extends CallClientEvent>(event: E, listener: CallClientListener<E>): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    const l = listener as (p: unknown) => void;
    set.add(l);
    return () => {
      set.delete(l);
    };
  }

  emit<E extends CallClientEvent>(event: E, payload: CallClientEventMap[E]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const l of [...set]) {
      try {
        l(payload);
      } catch {
        // A listener's failure is the listener's business; the hub keeps delivering.
      }
    }
  }

  clear(): void {
    this.listeners.clear();
  }
}
