/**
 * Held calls and pinless dial-in: a call placed to a configured number is held, its webhook sent,
 * and `pinlessCallUpdate` patches it into a room's SIP endpoint — once that endpoint is ready.
 * Daily accepts an update to an endpoint that is not ready, and the call then drops.
 * This is also the `CallHost` of every call (caller speech, DTMF, end).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { dtmfTone } from './recordings.js';
import { SPEECH_RATE } from './speech.js';
import { maskNumber } from '../core/logger.js';
import { CallImpl, type CallHost } from './call.js';
import type { SpeechOptions } from './speech.js';
import type { CallRegistry } from './call-registry.js';
import { ApiError } from './errors.js';
import type { LatencySettings } from './latencies.js';
import { participantJson, randomDigits, type Room, type SipEndpoint, type SipParticipant } from './model.js';
import type { PinlessStore } from './pinless.js';
import type { PinlessWebhookSender } from './pinless-webhook.js';
import type { RoomStore } from './rooms.js';
import type { Sessions } from './sessions.js';
import type { Timers } from './timers.js';
import type { EndReason, PinlessDialinEntry, PlaceCallOptions, WithheldStyle } from './types.js';
import type { PlatformObserver } from './webhooks.js';

/** The webhook's `From` for each withheld style (`undefined`: no `From` at all). */
export const WITHHELD_FROM: Readonly<Record<WithheldStyle, string | undefined>> = Object.freeze({
  anonymous: 'anonymous',
  Anonymous: 'Anonymous',
  restricted: 'restricted',
  unavailable: 'unavailable',
  empty: '',
  'sip-anonymous': 'sip:anonymous@anonymous.invalid',
  absent: undefined,
});

export interface DialInDeps {
  callDomain: string;
  rooms: RoomStore;
  sessions: Sessions;
  calls: CallRegistry;
  pinless: PinlessStore;
  webhook: PinlessWebhookSender;
  timers: Timers;
  latencies: LatencySettings;
  observer: PlatformObserver;
  holdTimeoutMs: number;
  dtmfGapMs: number;
  logger: Logger;
}

export class DialIn implements CallHost {
  private closed = false;
  /** Calls whose webhook carries no `From` (withheld: 'absent'). */
  private readonly noFrom = new WeakSet<CallImpl>();
  /** `x-daily_display_name` of a call's pinlessCallUpdate SIP URI. */
  private readonly displayNames = new WeakMap<CallImpl, string>();

  constructor(private readonly d: DialInDeps) {}

  get timers(): Timers {
    return this.d.timers;
  }

  get dtmfGapMs(): number {
    return this.d.dtmfGapMs;
  }

  placeCall(o: PlaceCallOptions): CallImpl {
    if (this.closed) throw new Error('the emulator is closed');
    if (typeof o.to !== 'string' || o.to.length === 0) throw new TypeError('placeCall: to is required');
    if (o.withheld !== undefined && !(o.withheld in WITHHELD_FROM))
      throw new TypeError(`placeCall: unknown withheld style ${String(o.withheld)}`);
    const from = o.withheld !== undefined ? (WITHHELD_FROM[o.withheld] ?? '') : (o.from ?? `+1555${randomDigits(7)}`);
    const call = new CallImpl(this, randomUUID(), randomUUID(), this.d.callDomain, o.to, from, { ...(o.sipHeaders ?? {}) });
    if (o.withheld === 'absent') this.noFrom.add(call);
    this.d.calls.add(call);
    const entry = this.d.pinless.route(o.to);
    this.d.logger.debug(
      { callId: call.callId, to: maskNumber(o.to), from: maskNumber(from), configured: !!entry },
      'emulator: call placed',
    );
    if (!entry) {
      call.addLine('system', 'The number you have dialed is not in service.');
      call.end('not_in_service');
      return call;
    }
    call.addLine('system', `on hold (hold music: ${entry.hold_music_url ?? 'default'})`);
    call.cancels.add(
      this.d.timers.after(this.d.holdTimeoutMs, () => {
        if (call.state !== 'held' || call.roomName !== undefined) return;
        call.addLine('system', entry.timeout_config?.message ?? 'No one is available to take your call. Please try again later.');
        call.end('hold_timeout');
      }),
    );
    call.cancels.add(this.d.timers.after(this.d.latencies.values.webhookMs, () => void this.sendWebhook(call, entry)));
    if (o.script && o.script.length > 0) void call.runScript(o.script);
    return call;
  }

  private async sendWebhook(call: CallImpl, entry: PinlessDialinEntry): Promise<void> {
    if (call.state === 'ended') return;
    const body = JSON.stringify({
      To: call.to,
      ...(this.noFrom.has(call) ? {} : { From: call.from }),
      callId: call.callId,
      callDomain: call.callDomain,
      ...(Object.keys(call.sipHeaders).length > 0 ? { sipHeaders: call.sipHeaders } : {}),
    });
    const rec: NonNullable<CallImpl['webhook']> = { url: entry.room_creation_api, sentAtMs: Date.now() - call.startedAt };
    call.webhook = rec;
    const r = await this.d.webhook.post(entry, body, 'call', call.callId);
    if (r.status !== undefined) rec.status = r.status;
    if (r.error !== undefined) rec.error = r.error;
  }

  /** POST /dialin/pinlessCallUpdate. */
  pinlessCallUpdate(body: { callId: string; callDomain: string; sipUri: string }): void {
    const call = this.d.calls.getByCallId(body.callId);
    if (!call || call.state === 'ended') throw new ApiError(404, 'not-found', `call ${body.callId} not found or no longer active`);
    if (body.callDomain !== call.callDomain) throw new ApiError(400, 'invalid-request-error', 'callDomain does not match the call');
    const found = this.d.rooms.findEndpoint(body.sipUri);
    if (!found) throw new ApiError(404, 'not-found', `no room has the SIP endpoint ${body.sipUri}`);
    const { room: r, endpoint } = found;
    if (endpoint.callId !== undefined && endpoint.callId !== call.callId) {
      throw new ApiError(409, 'invalid-request-error', `SIP endpoint ${body.sipUri} is already in use by another call`);
    }
    if (call.state !== 'held' || call.roomName !== undefined)
      throw new ApiError(409, 'invalid-request-error', `call ${body.callId} is not on hold`);
    call.roomName = r.name;
    call.sipEndpoint = endpoint.uri;
    const name = uriParam(body.sipUri, 'x-daily_display_name');
    if (name !== undefined) this.displayNames.set(call, name);
    endpoint.callId = call.callId;
    const wasReady = endpoint.ready;
    call.cancels.add(
      this.d.timers.after(this.d.latencies.values.connectMs, () => {
        if (call.state !== 'held') return;
        if (!wasReady || !endpoint.ready) {
          // Daily accepted the update, but the SIP endpoint was not registered: the call drops.
          call.addLine('system', 'call failed: the SIP endpoint was not ready');
          this.d.observer.dialinError(r.name, { sessionId: randomUUID(), from: call.from }, `SIP endpoint ${endpoint.uri} is not ready`);
          call.end('forwarded_before_ready');
          return;
        }
        if (!this.d.rooms.isCurrent(r) || !r.sessionActive) {
          call.end('room_closed');
          return;
        }
        this.connect(call, r, endpoint);
      }),
    );
  }

  private connect(call: CallImpl, room: Room, ep: SipEndpoint): void {
    const sessionId = randomUUID();
    // Daily: `x-daily_display_name` on the SIP URI names the caller; without it, the room's sip.display_name.
    const userName = this.displayNames.get(call) ?? room.sip?.display_name ?? call.from;
    const p: SipParticipant = { kind: 'sip', sessionId, userName, call, endpoint: ep.uri };
    room.participants.set(sessionId, p);
    call.markConnected(sessionId);
    call.addLine('system', `connected to room ${room.name}`);
    this.d.sessions.broadcast(room, 'participant-joined', { participant: participantJson(p) });
    this.d.sessions.broadcast(room, 'dialin-connected', {
      sessionId,
      sipFrom: call.from,
      sipEndpoint: ep.uri,
      sipHeaders: { ...call.sipHeaders },
    });
    this.d.observer.participantJoined(room.name, { sessionId, userName: p.userName, isSip: true });
    this.d.observer.dialinConnected(room.name, { sessionId, from: call.from, displayName: p.userName, sipHeaders: call.sipHeaders });
  }

  private roomOf(call: CallImpl): Room | undefined {
    return call.roomName ? this.d.rooms.get(call.roomName) : undefined;
  }

  // CallHost
  async callerSpoke(call: CallImpl, text: string, opts?: SpeechOptions): Promise<void> {
    const room = this.roomOf(call);
    if (!room || !call.sessionId) return;
    await this.d.sessions.sipSays(room, call.sessionId, text, opts);
  }

  async callerSpeaks(call: CallImpl, text: string, opts?: SpeechOptions): Promise<void> {
    const room = this.roomOf(call);
    if (!room || !call.sessionId) return;
    await this.d.sessions.sipSpeaks(room, call.sessionId, text, opts);
  }

  callerPressed(call: CallImpl, tone: string): void {
    const room = this.roomOf(call);
    if (!room || !call.sessionId) return;
    this.d.sessions.broadcast(room, 'dtmf-event', { tone, sessionId: call.sessionId });
    // A recording hears the key (in-band, as on a phone line); bots get the event only.
    room.recorder?.add('caller', dtmfTone(tone), SPEECH_RATE);
  }

  callEnded(call: CallImpl, reason: EndReason): void {
    this.d.calls.noteEnded(call);
    const room = this.roomOf(call);
    if (room) {
      for (const ep of room.endpoints) if (ep.callId === call.callId) delete ep.callId;
      const sid = call.sessionId;
      const p = sid ? room.participants.get(sid) : undefined;
      if (p && p.kind === 'sip') {
        room.participants.delete(p.sessionId);
        const why = reason === 'caller_hangup' ? 'hangup' : reason;
        this.d.sessions.broadcast(room, 'participant-left', { participant: participantJson(p), reason: why });
        this.d.sessions.broadcast(room, 'dialin-stopped', { sessionId: p.sessionId, sipEndpoint: p.endpoint });
        this.d.observer.participantLeft(room.name, { sessionId: p.sessionId, userName: p.userName, isSip: true });
        this.d.observer.dialinStopped(room.name, {
          sessionId: p.sessionId,
          from: call.from,
          displayName: p.userName,
          sipHeaders: call.sipHeaders,
        });
        if (room.participants.size === 0 && room.sessionActive) this.d.sessions.endSession(room);
      }
    }
    this.d.logger.debug({ callId: call.callId, reason }, 'emulator: call ended');
  }

  /** Ends every call (the emulator is closing); no call can be placed after. */
  close(): void {
    this.closed = true;
    for (const c of this.d.calls.values()) c.end('emulator_closed');
  }
}

/** A URL-encoded parameter of a SIP URI's `?a=b&c=d` part (a malformed encoding is kept as it is). */
export function uriParam(uri: string, name: string): string | undefined {
  const q = uri.indexOf('?');
  if (q < 0) return undefined;
  for (const part of uri.slice(q + 1).split('&')) {
    const eq = part.indexOf('=');
    const k = eq < 0 ? part : part.slice(0, eq);
    if (k.toLowerCase() !== name.toLowerCase()) continue;
    const v = eq < 0 ? '' : part.slice(eq + 1);
    try {
      return decodeURIComponent(v);
    } catch {
      return v;
    }
  }
  return undefined;
}
