/**
 * Dial-out (daily-js `startDialOut` / `stopDialOut`) and who hears whom (`updateParticipant`'s
 * `canReceive` permissions), as Daily documents them:
 *  - only an owner may dial out, and only in a room created with `enable_dialout: true`;
 *  - every SIP/PSTN leg counts against `max_sip_pstn_sessions_per_room` (default 5);
 *  - `startDialOut` resolves with the leg's `sessionId`; `dialout-connected` fires when the far end
 *    is reached (ringing), `dialout-answered` when it picks up (the far end then joins the room as
 *    a participant), `dialout-error` when it cannot be reached, is busy or does not answer, and
 *    `dialout-stopped` when the leg ends for any reason.
 * The far ends are scripted like callers (`setTarget`); an unknown destination never answers.
 * A `voicemail` far end answers, plays its greeting (espeak-ng), a beep (sox) and records silence.
 * Starting a leg counts in Daily's `start` rate class (1/s, up to 5 per 5 s per domain: the REST
 * docs' "Rate limits") like `POST /rooms/:name/dialOut/start`: over it, startDialOut is refused.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { maskNumber } from '../core/logger.js';
import { CallImpl, type CallHost } from './call.js';
import type { SpeechOptions } from './speech.js';
import type { CallRegistry } from './call-registry.js';
import { ActionError } from './errors.js';
import type { LatencySettings } from './latencies.js';
import { participantJson, sipBase, type BotParticipant, type Room, type SipParticipant } from './model.js';
import type { RoomStore } from './rooms.js';
import type { Sessions } from './sessions.js';
import type { Timers } from './timers.js';
import type { CallerStep, DialOutTarget, EndReason } from './types.js';
import { beepPcm } from './beep.js';
import type { DailyRateLimits } from './rate-limits.js';
import { SPEECH_RATE, speechPcm } from './speech.js';

/** Daily's default `max_sip_pstn_sessions_per_room`. */
const DEFAULT_MAX_SIP_SESSIONS = 5;
/** How long a far end that never answers rings before the leg fails (emulator's choice). */
const DEFAULT_RING_MS = 30_000;
const E164 = /^\+[1-9]\d{6,14}$/;

interface Leg {
  call: CallImpl;
  room: Room;
  target: string;
  answered: boolean;
}

export interface DialOutDeps {
  rooms: RoomStore;
  sessions: Sessions;
  calls: CallRegistry;
  timers: Timers;
  latencies: LatencySettings;
  callDomain: string;
  dtmfGapMs: number;
  /** Daily's rate limits (a dial-out start is in the `call-start` class). */
  rateLimits?: DailyRateLimits;
  logger: Logger;
}

const DEFAULT_GREETING =
  "Hi, you've reached the voicemail of Alex Smith. I can't take your call right now. Please leave your name, number and a short message after the tone.";
/** How long a voicemail far end records after its beep (emulator's choice). */
const DEFAULT_RECORD_MS = 20_000;

function targetKey(uri: string): string {
  return uri.startsWith('+') ? uri.replace(/[^\d+]/g, '') : sipBase(uri);
}

export class DialOut implements CallHost {
  private readonly targets = new Map<string, DialOutTarget>();
  private readonly legs = new Map<string, Leg>();
  /** Every leg dialled from a room, live or ended (the most recent 1 000 rooms). */
  private readonly byRoom = new Map<string, CallImpl[]>();
  /** startDialOut calls refused by Daily's start rate class. */
  rateLimited = 0;

  constructor(private readonly d: DialOutDeps) {}

  get timers(): Timers {
    return this.d.timers;
  }
  get dtmfGapMs(): number {
    return this.d.dtmfGapMs;
  }

  /** How the far end at `uri` (SIP URI or E.164 number) behaves when dialled. */
  setTarget(uri: string, target: DialOutTarget): void {
    this.targets.set(targetKey(uri), target);
  }

  clearTargets(): void {
    this.targets.clear();
  }

  /** `start-dial-out {sipUri | phoneNumber, displayName?}` → `{session: {sessionId}}`. */
  start(p: BotParticipant, args: Record<string, unknown>): { session: { sessionId: string } } {
    const room = p.room;
    if (!p.owner) throw new ActionError('not-allowed', 'startDialOut requires a meeting owner token');
    if (room.properties.enable_dialout !== true)
      throw new ActionError('not-allowed', 'dial-out is not enabled for this room (enable_dialout)');
    const { sipUri, phoneNumber } = args;
    if ((sipUri === undefined) === (phoneNumber === undefined))
      throw new ActionError('invalid-request', 'give exactly one of sipUri and phoneNumber');
    if (sipUri !== undefined && (typeof sipUri !== 'string' || !/^sips?:[^@\s]+@[^@\s]+$/.test(sipUri.split('?')[0]!))) {
      throw new ActionError('invalid-request', 'sipUri must be a SIP URI (sip:user@host)');
    }
    if (phoneNumber !== undefined && (typeof phoneNumber !== 'string' || !E164.test(phoneNumber))) {
      throw new ActionError('invalid-request', 'phoneNumber must be an E.164 number (+15551234567)');
    }
    if (args.displayName !== undefined && typeof args.displayName !== 'string')
      throw new ActionError('invalid-request', 'displayName must be a string');
    const max =
      typeof room.properties.max_sip_pstn_sessions_per_room === 'number'
        ? room.properties.max_sip_pstn_sessions_per_room
        : DEFAULT_MAX_SIP_SESSIONS;
    const inUse =
      [...room.participants.values()].filter((q) => q.kind === 'sip').length +
      [...this.legs.values()].filter((l) => l.room === room && !l.answered).length;
    if (inUse >= max) throw new ActionError('limit', `max_sip_pstn_sessions_per_room (${max}) reached`);
    if (this.d.rateLimits && !this.d.rateLimits.take('POST', `/rooms/${room.name}/dialOut/start`, 'domain').ok) {
      this.rateLimited++;
      throw new ActionError('rate-limited', '429 Too Many Requests: dial-out starts are limited (start rate class)');
    }

    const target = (sipUri ?? phoneNumber) as string;
    const sessionId = randomUUID();
    const displayName = args.displayName ?? target.replace(/^sips?:/, '').split('@')[0]!;
    const call = new CallImpl(this, randomUUID(), sessionId, this.d.callDomain, target, room.name, {});
    call.roomName = room.name;
    this.d.calls.add(call);
    const leg: Leg = { call, room, target, answered: false };
    this.legs.set(sessionId, leg);
    const list = this.byRoom.get(room.name) ?? [];
    list.push(call);
    this.byRoom.set(room.name, list);
    if (this.byRoom.size > 1_000) this.byRoom.delete(this.byRoom.keys().next().value!);
    this.d.logger.debug({ room: room.name, to: maskNumber(target) }, 'emulator: dial-out started');

    const spec = this.targets.get(targetKey(target));
    const connectMs = this.d.latencies.values.connectMs;
    call.cancels.add(
      this.d.timers.after(connectMs, () => {
        if (call.isEnded()) return;
        if (spec?.answer === 'busy') return this.fail(leg, 'busy', 'dial-out failed: busy');
        if (spec?.answer === 'unreachable') return this.fail(leg, 'unreachable', 'dial-out failed: destination unreachable');
        this.d.sessions.broadcast(room, 'dialout-connected', { sessionId, destination: target });
        if (spec?.answer === 'answer') {
          call.cancels.add(this.d.timers.after(spec.answerAfterMs ?? 0, () => this.answer(leg, displayName, spec.script ?? [])));
        } else if (spec?.answer === 'voicemail') {
          call.cancels.add(this.d.timers.after(spec.answerAfterMs ?? 0, () => this.answer(leg, displayName, [], spec)));
        } else {
          call.cancels.add(
            this.d.timers.after(spec?.ringMs ?? DEFAULT_RING_MS, () => this.fail(leg, 'no_answer', 'dial-out failed: no answer')),
          );
        }
      }),
    );
    return { session: { sessionId } };
  }

  /** `stop-dial-out {sessionId}`. */
  stop(p: BotParticipant, args: Record<string, unknown>): void {
    if (!p.owner) throw new ActionError('not-allowed', 'stopDialOut requires a meeting owner token');
    const leg = typeof args.sessionId === 'string' ? this.legs.get(args.sessionId) : undefined;
    if (!leg || leg.room !== p.room) throw new ActionError('not-found', `no dial-out session ${String(args.sessionId)} in the room`);
    leg.call.end('stopped');
  }

  private answer(leg: Leg, userName: string, script: readonly CallerStep[], machine?: DialOutTarget): void {
    const { call, room } = leg;
    if (call.isEnded()) return;
    if (!this.d.rooms.isCurrent(room) || !room.sessionActive) return call.end('room_closed');
    leg.answered = true;
    const sessionId = call.callId;
    const sp: SipParticipant = { kind: 'sip', sessionId, userName, call, endpoint: leg.target, direction: 'out' };
    room.participants.set(sessionId, sp);
    call.markConnected(sessionId);
    call.addLine('system', `answered a call from room ${room.name}`);
    this.d.sessions.broadcast(room, 'participant-joined', { participant: participantJson(sp) });
    this.d.sessions.broadcast(room, 'dialout-answered', { sessionId, destination: leg.target });
    if (machine) void this.playMachine(leg, machine);
    else void call.runScript(script);
  }

  /** An answering machine: greeting, beep, then it records (silence) for `recordMs` and hangs up. */
  private async playMachine(leg: Leg, t: DialOutTarget): Promise<void> {
    const { call, room } = leg;
    const greeting = t.greeting ?? DEFAULT_GREETING;
    const sessionId = call.callId;
    call.addLine('system', 'voicemail: greeting');
    const speech = await speechPcm(greeting);
    if (speech && !(await this.d.sessions.sipPlays(room, sessionId, speech))) return;
    this.d.sessions.sipSpoke(room, sessionId, greeting);
    const beepHz = t.beepHz ?? 1_000;
    if (beepHz > 0) {
      if (!(await this.d.sessions.sipPlays(room, sessionId, new Int16Array(SPEECH_RATE * 0.3)))) return;
      if (!(await this.d.sessions.sipPlays(room, sessionId, beepPcm(beepHz, 500, SPEECH_RATE)))) return;
      call.addLine('system', `voicemail: beep ${beepHz} Hz; recording`);
    } else call.addLine('system', 'voicemail: recording');
    // Recording: a phone line is never quiet for long, so silence frames go on while it records.
    const recordMs = t.recordMs ?? DEFAULT_RECORD_MS;
    if (!(await this.d.sessions.sipPlays(room, sessionId, new Int16Array((SPEECH_RATE * recordMs) / 1000)))) return;
    if (!call.isEnded()) call.end('caller_hangup');
  }

  private fail(leg: Leg, reason: EndReason, errorMsg: string): void {
    if (leg.call.isEnded()) return;
    this.d.sessions.broadcast(leg.room, 'dialout-error', { sessionId: leg.call.callId, errorMsg });
    leg.call.end(reason);
  }

  // CallHost: the far end, once answered, speaks and presses keys like a caller.
  async callerSpoke(call: CallImpl, text: string, opts?: SpeechOptions): Promise<void> {
    const leg = this.legs.get(call.callId);
    if (leg?.answered) await this.d.sessions.sipSays(leg.room, call.callId, text, opts);
  }

  async callerSpeaks(call: CallImpl, text: string, opts?: SpeechOptions): Promise<void> {
    const leg = this.legs.get(call.callId);
    if (leg?.answered) await this.d.sessions.sipSpeaks(leg.room, call.callId, text, opts);
  }

  callerPressed(call: CallImpl, tone: string): void {
    const leg = this.legs.get(call.callId);
    if (leg?.answered) this.d.sessions.broadcast(leg.room, 'dtmf-event', { tone, sessionId: call.callId });
  }

  callEnded(call: CallImpl, _reason: EndReason): void {
    this.d.calls.noteEnded(call);
    const leg = this.legs.get(call.callId);
    if (!leg) return;
    this.legs.delete(call.callId);
    const { room } = leg;
    const p = room.participants.get(call.callId);
    if (p && p.kind === 'sip') {
      room.participants.delete(p.sessionId);
      this.d.sessions.broadcast(room, 'participant-left', { participant: participantJson(p), reason: 'hangup' });
    }
    this.d.sessions.broadcast(room, 'dialout-stopped', { sessionId: call.callId, destination: leg.target });
    if (room.participants.size === 0 && room.sessionActive) this.d.sessions.endSession(room);
  }

  /** The legs dialled from `roomName`, oldest first. */
  callsFrom(roomName: string): CallImpl[] {
    return [...(this.byRoom.get(roomName) ?? [])];
  }

  /** The legs dialled to `target` from any room (of the most recent 1 000 rooms), oldest first. */
  callsTo(target: string): CallImpl[] {
    return [...this.byRoom.values()].flat().filter((c) => c.to === target);
  }

  /** Ends every leg (the emulator is closing). */
  close(): void {
    for (const l of [...this.legs.values()]) l.call.end('emulator_closed');
  }
}
