/**
 * Participants and room sessions: joins, the session that starts with the first participant
 * (and registers the SIP endpoints: `dialin-ready`), leaving, ejection at room deletion or expiry.
 *
 * As on Daily, a session lasts while anyone is in the room: a caller left alone by the bot stays
 * (in silence) until they hang up or the room is deleted or expires; when the session ends,
 * endpoints unregister and a connected caller is dropped.
 */
import type { Logger } from 'pino';
import type { CallClientEvent, CallClientEventMap } from '../daily/call-client.js';
import type { CallRegistry } from './call-registry.js';
import { ActionError } from './errors.js';
import type { Faults } from './faults.js';
import type { LatencySettings } from './latencies.js';
import { hears, participantJson, type BotParticipant, type Room } from './model.js';
import { FRAME_SAMPLES, SPEECH_RATE, speechPcm, withNoise, type SpeechOptions } from './speech.js';
import { WS_CLOSE, type ServerMessage } from './protocol.js';
import type { RoomStore } from './rooms.js';
import type { Timers } from './timers.js';
import type { JoinGrant, MeetingTokens } from './tokens.js';
import type { PlatformObserver } from './webhooks.js';
import type { CallerSignal } from './types.js';

export interface SessionsDeps {
  rooms: RoomStore;
  calls: CallRegistry;
  tokens: MeetingTokens;
  timers: Timers;
  latencies: LatencySettings;
  faults: Faults;
  observer: PlatformObserver;
  logger: Logger;
  /** Cloud recordings: a session's end stops its recording. */
  recordings?: { sessionEnded(room: Room): void };
}

export class Sessions {
  private readonly watchers = new Set<(e: CallerSignal) => void>();

  constructor(private readonly d: SessionsDeps) {}

  /** Emulator.watchCaller: `fn` sees what leaves the callers for the bots; returns the unsubscribe. */
  watch(fn: (e: CallerSignal) => void): () => void {
    this.watchers.add(fn);
    return () => void this.watchers.delete(fn);
  }

  /** Validates a join; throws ActionError(code) on refusal. */
  checkJoin(roomUrl: unknown, token: unknown): JoinGrant & { room: Room } {
    if (typeof roomUrl !== 'string') throw new ActionError('invalid-request', 'roomUrl is required');
    let name: string;
    try {
      const u = new URL(roomUrl);
      name = decodeURIComponent(u.pathname.replace(/^\/+|\/+$/g, ''));
    } catch {
      throw new ActionError('invalid-request', 'roomUrl is not a URL');
    }
    const room = this.d.rooms.get(name);
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
    return { room, ...this.d.tokens.checkJoin(token, room.name, nowSec) };
  }

  broadcast<E extends CallClientEvent>(room: Room, event: E, payload: CallClientEventMap[E], exceptSessionId?: string): void {
    for (const p of room.participants.values()) {
      if (p.kind === 'bot' && p.sessionId !== exceptSessionId) p.send({ type: 'event', event, payload } as ServerMessage);
    }
  }

  /**
   * A phone participant spoke: the other phone participants who may hear them get the words
   * (`peer` lines), and the bots get a transcript when transcription runs.
   */
  sipSpoke(room: Room, fromSessionId: string, text: string): void {
    for (const q of room.participants.values()) {
      if (q.kind === 'sip' && q.sessionId !== fromSessionId && hears(q, fromSessionId)) q.call.peerSaid(text);
    }
    if (!room.transcription) return;
    this.broadcast(room, 'transcription-message', { participantId: fromSessionId, text, isFinal: true, timestampMs: Date.now() });
    if (this.watchers.size > 0) this.tell(room, fromSessionId, { kind: 'transcript', text });
  }

  /** A phone participant says something (`say` step): out loud when a bot receives audio, else as words at once. */
  async sipSays(room: Room, fromSessionId: string, text: string, opts: SpeechOptions = {}): Promise<void> {
    const listening = [...room.participants.values()].some((p) => p.kind === 'bot' && p.receivesAudio);
    if (listening) await this.sipSpeaks(room, fromSessionId, text, opts);
    else this.sipSpoke(room, fromSessionId, text);
  }

  /**
   * A phone participant speaks out loud (`speak` step): the audio goes as 20 ms frames, in real
   * time, to the bots that receive audio, followed by a second of silence (a phone line is never
   * quiet for long); then the words arrive like `sipSpoke` (transcript at the end of the speech).
   * With `noise`, white noise is mixed into both; `words` false: a sound with no words (a laugh, a
   * cough), so no transcript.
   */
  async sipSpeaks(room: Room, fromSessionId: string, text: string, opts: SpeechOptions = {}): Promise<void> {
    const speech = await speechPcm(text);
    if (speech) {
      const [pcm, silence] = withNoise([speech, new Int16Array(SPEECH_RATE)], opts.noise ?? 0);
      if (!(await this.sipPlays(room, fromSessionId, pcm!))) return;
      if (opts.words !== false) this.sipSpoke(room, fromSessionId, text);
      await this.sipPlays(room, fromSessionId, silence!);
      return;
    }
    if (opts.words !== false) this.sipSpoke(room, fromSessionId, text);
  }

  /**
   * A phone participant's audio (16 kHz PCM16), as whole 20 ms frames in real time, to the bots that
   * receive audio; false when the participant left meanwhile.
   */
  async sipPlays(room: Room, fromSessionId: string, pcm: Int16Array): Promise<boolean> {
    const startMs = Date.now();
    for (let off = 0, n = 1; off < pcm.length; off += FRAME_SAMPLES, n++) {
      if (!room.participants.has(fromSessionId)) return false;
      // Whole 20 ms frames, as call clients deliver them: a clip's last part is padded with silence.
      let f = pcm.subarray(off, off + FRAME_SAMPLES);
      if (f.length < FRAME_SAMPLES) (f = new Int16Array(FRAME_SAMPLES)).set(pcm.subarray(off));
      room.recorder?.add('caller', f, SPEECH_RATE);
      const b64 = Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString('base64');
      for (const p of room.participants.values()) {
        if (p.kind === 'bot' && p.receivesAudio) p.send({ type: 'audio', participantId: fromSessionId, sampleRate: SPEECH_RATE, pcm: b64 });
      }
      if (this.watchers.size > 0) this.tell(room, fromSessionId, { kind: 'frame', pcm: f, sampleRate: SPEECH_RATE });
      // Paced by the clock, not 20 ms per frame: a late timer (a busy machine) is made up by the next
      // frames, as a phone line's packets would be, so the speech never drifts slower than real time.
      await this.d.timers.sleep(startMs + n * 20 - Date.now());
    }
    return room.participants.has(fromSessionId);
  }

  private tell(
    room: Room,
    fromSessionId: string,
    what: { kind: 'frame'; pcm: Int16Array; sampleRate: number } | { kind: 'transcript'; text: string },
  ): void {
    const sip = room.participants.get(fromSessionId);
    if (sip?.kind !== 'sip') return;
    const e: CallerSignal = { ...what, callId: sip.call.callId, roomName: room.name, sentAtMs: Date.now() };
    for (const fn of this.watchers) fn(e);
  }

  /** Adds a joined bot; starts the session (and SIP worker registration) for the first one. */
  addBot(p: BotParticipant): void {
    const room = p.room;
    if (!room.sessionActive) this.d.observer.meetingStarted(room.name);
    room.participants.set(p.sessionId, p);
    this.broadcast(room, 'participant-joined', { participant: participantJson(p) }, p.sessionId);
    this.d.observer.participantJoined(room.name, { sessionId: p.sessionId, userName: p.userName, owner: p.owner });
    if (!room.sessionActive) {
      room.sessionActive = true;
      if (room.endpoints.length > 0) this.scheduleDialinReady(room);
    }
  }

  private scheduleDialinReady(room: Room): void {
    const delay = this.d.latencies.values.dialinReadyMs + this.d.faults.dialinReadyDelayMs;
    const cancel = this.d.timers.after(delay, () => {
      room.sessionCancels.delete(cancel);
      if (!room.sessionActive || !this.d.rooms.isCurrent(room)) return;
      const mode = this.d.faults.dialinReady;
      if (mode === 'never') return;
      for (const ep of room.endpoints) {
        ep.ready = true;
        this.broadcast(room, 'dialin-ready', { sipEndpoint: ep.uri });
        this.d.observer.dialinReady(room.name, ep.uri);
        if (mode === 'twice') this.broadcast(room, 'dialin-ready', { sipEndpoint: ep.uri });
      }
    });
    room.sessionCancels.add(cancel);
  }

  endSession(room: Room): void {
    this.d.recordings?.sessionEnded(room);
    room.sessionActive = false;
    room.transcription = false;
    for (const c of room.sessionCancels) c();
    room.sessionCancels.clear();
    for (const ep of room.endpoints) ep.ready = false;
    for (const p of [...room.participants.values()]) if (p.kind === 'sip') p.call.end('room_closed');
    this.d.calls.endBoundFor(room.name);
    this.d.observer.meetingEnded(room.name);
  }

  /** A bot left (leave, socket closed, ejected). */
  removeBot(p: BotParticipant, reason: string, o: { notify: boolean } = { notify: true }): void {
    const room = p.room;
    if (room.participants.get(p.sessionId) !== p) return;
    for (const cancel of p.audio.values()) cancel();
    p.audio.clear();
    room.participants.delete(p.sessionId);
    if (o.notify) this.broadcast(room, 'participant-left', { participant: participantJson(p), reason });
    this.d.observer.participantLeft(room.name, { sessionId: p.sessionId, userName: p.userName, owner: p.owner });
    if (room.participants.size === 0 && room.sessionActive) this.endSession(room);
  }

  /** Ejects a bot with a fatal `error` and `left-meeting {reason: code}`, and closes its socket. */
  ejectBot(p: BotParticipant, code: string, message: string, notify: boolean): void {
    p.send({ type: 'event', event: 'error', payload: { message, fatal: true, code } });
    p.send({ type: 'event', event: 'left-meeting', payload: { reason: code } });
    this.removeBot(p, code, { notify });
    p.close(WS_CLOSE.removed, code);
  }

  /** Arms the room's `exp`: with `eject_at_room_exp`, everyone is ejected then. */
  armExpiry(room: Room): void {
    const exp = room.properties.exp;
    if (typeof exp !== 'number') return;
    room.expCancel = this.d.timers.after(exp * 1000 - Date.now(), () => {
      if (!this.d.rooms.isCurrent(room)) return;
      if (room.properties.eject_at_room_exp === true) this.closeRoom(room, 'exp-eject', 'Meeting has ended (room expired)');
    });
  }

  /** DELETE /rooms/:name. */
  deleteRoom(name: string): void {
    const r = this.d.rooms.require(name);
    this.closeRoom(r, 'room-deleted', 'The room was deleted');
    this.d.rooms.remove(r);
    this.d.logger.debug({ room: name }, 'emulator: room deleted');
  }

  /** Ejects every participant and ends calls bound for the room. */
  private closeRoom(r: Room, code: string, message: string): void {
    r.expCancel?.();
    this.d.calls.endBoundFor(r.name);
    for (const p of [...r.participants.values()]) if (p.kind === 'bot') this.ejectBot(p, code, message, false);
    this.endSession(r);
  }
}
