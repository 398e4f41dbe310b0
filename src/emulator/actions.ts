/** What a bot can do in a room (the call-client actions of protocol.ts), with Daily's refusals. Owners only: eject, transcription, SIP transfer/refer. */
import type { Logger } from 'pino';
import { maskNumber } from '../core/logger.js';
import { ActionError } from './errors.js';
import type { DialOut } from './dialout.js';
import { hears, isObj, type BotParticipant, type CanReceive, type Room, type SipParticipant } from './model.js';
import type { ActionName } from './protocol.js';
import type { Sessions } from './sessions.js';
import type { Timers } from './timers.js';

const MAX_APP_MESSAGE_BYTES = 4096;
const MAX_AUDIO_MS = 600_000;

function sipParticipant(room: Room, sessionId: unknown): SipParticipant {
  if (typeof sessionId !== 'string') throw new ActionError('invalid-request', 'sessionId is required');
  const p = room.participants.get(sessionId);
  if (!p) throw new ActionError('not-found', `no participant ${sessionId} in the room`);
  if (p.kind !== 'sip') throw new ActionError('invalid-request', `participant ${sessionId} is not a SIP participant`);
  return p;
}

function requireOwner(p: BotParticipant, what: string): void {
  if (!p.owner) throw new ActionError('not-allowed', `${what} requires a meeting owner token`);
}

/** A recording room hears the bot: the samples it sent (`pcm`, base64 PCM16 at `sampleRate`), else its words spoken. */
function recordBotAudio(room: Room, args: Record<string, unknown>, text: string): void {
  const rec = room.recorder;
  if (!rec) return;
  if (typeof args.pcm === 'string' && typeof args.sampleRate === 'number' && args.sampleRate > 0) {
    const b = Buffer.from(args.pcm, 'base64');
    rec.add('bot', new Int16Array(Uint8Array.from(b).buffer, 0, b.byteLength >> 1), args.sampleRate);
  } else if (args.continues !== true && typeof args.text === 'string' && args.text.trim()) {
    rec.addWords('bot', text);
  }
}

export class Actions {
  constructor(private readonly d: { sessions: Sessions; dialOut: DialOut; timers: Timers; logger: Logger }) {}

  /** Carries out an action; resolves when it is done (send-audio: after its play-out), with its result if it has one. */
  async run(p: BotParticipant, id: string | number, action: ActionName, args: Record<string, unknown>): Promise<unknown> {
    const room = p.room;
    switch (action) {
      case 'leave':
        this.d.sessions.removeBot(p, 'left');
        return;
      case 'send-audio':
        return this.sendAudio(p, id, args);
      case 'cancel-audio': {
        const cancel = p.audio.get(args.actionId as string | number);
        if (cancel) {
          cancel();
          for (const q of room.participants.values()) if (q.kind === 'sip') q.call.addLine('system', 'bot audio interrupted');
        }
        return;
      }
      case 'send-dtmf': {
        const sp = sipParticipant(room, args.sessionId);
        if (typeof args.tones !== 'string' || !/^[0-9*#A-Da-dwW]+$/.test(args.tones)) {
          throw new ActionError('invalid-request', 'tones must be DTMF digits (0-9 * # A-D)');
        }
        sp.call.botSaid(`[dtmf ${args.tones}]`);
        return;
      }
      case 'sip-call-transfer':
      case 'sip-refer': {
        requireOwner(p, action);
        const sp = sipParticipant(room, args.sessionId);
        const to = args.toEndPoint;
        if (typeof to !== 'string' || !/^(sips?:|tel:|\+\d)/.test(to)) {
          throw new ActionError('invalid-request', 'toEndPoint must be a sip:, sips:, tel: URI or an E.164 number');
        }
        sp.call.addLine('system', `${action === 'sip-refer' ? 'referred' : 'transferred'} to ${to}`);
        this.d.logger.debug({ callId: sp.call.callId, to: maskNumber(to) }, `emulator: ${action}`);
        sp.call.end('transferred');
        return;
      }
      case 'start-transcription':
        requireOwner(p, 'start-transcription');
        if (room.transcription) throw new ActionError('invalid-request', 'transcription is already started');
        room.transcription = true;
        return;
      case 'stop-transcription':
        requireOwner(p, 'stop-transcription');
        if (!room.transcription) throw new ActionError('invalid-request', 'transcription is not started');
        room.transcription = false;
        return;
      case 'send-app-message':
        return this.sendAppMessage(p, args);
      case 'eject': {
        requireOwner(p, 'eject');
        const target = typeof args.sessionId === 'string' ? room.participants.get(args.sessionId) : undefined;
        if (!target) throw new ActionError('not-found', `no participant ${String(args.sessionId)} in the room`);
        if (target.kind === 'sip') target.call.end('ejected');
        else this.d.sessions.ejectBot(target, 'ejected', 'You were ejected from the meeting', true);
        return;
      }
      case 'start-dial-out':
        return this.d.dialOut.start(p, args);
      case 'stop-dial-out':
        this.d.dialOut.stop(p, args);
        return;
      case 'receive-audio':
        if (typeof args.enabled !== 'boolean') throw new ActionError('invalid-request', 'enabled must be a boolean');
        p.receivesAudio = args.enabled;
        return;
      case 'update-permissions': {
        requireOwner(p, 'update-permissions');
        const sp = sipParticipant(room, args.sessionId);
        sp.canReceive = parseCanReceive(args.canReceive, sp.canReceive);
        return;
      }
      default: {
        // Every ActionName is handled above: a new one fails to compile here.
        const unknown: never = action;
        throw new ActionError('unknown-action', `unknown action ${String(unknown)}`);
      }
    }
  }

  private async sendAudio(p: BotParticipant, id: string | number, args: Record<string, unknown>): Promise<void> {
    const durationMs = args.durationMs;
    if (typeof durationMs !== 'number' || !Number.isFinite(durationMs) || durationMs < 0 || durationMs > MAX_AUDIO_MS) {
      throw new ActionError('invalid-request', `durationMs must be a number from 0 to ${MAX_AUDIO_MS}`);
    }
    if (args.text !== undefined && typeof args.text !== 'string') throw new ActionError('invalid-request', 'text must be a string');
    const text = args.text?.trim() || `[audio ${Math.round(durationMs)} ms]`;
    // `continues`: more audio of words already said (a streamed utterance): no new line.
    if (args.continues !== true) {
      for (const q of p.room.participants.values()) if (q.kind === 'sip' && hears(q, p.sessionId)) q.call.botSaid(text);
    }
    recordBotAudio(p.room, args, text);
    if (durationMs === 0) return;
    await new Promise<void>((resolve, reject) => {
      const cancelTimer = this.d.timers.after(durationMs, () => {
        p.audio.delete(id);
        resolve();
      });
      p.audio.set(id, () => {
        cancelTimer();
        p.audio.delete(id);
        reject(new ActionError('cancelled', 'audio cancelled'));
      });
    });
  }

  private sendAppMessage(p: BotParticipant, args: Record<string, unknown>): void {
    let size: number;
    try {
      size = Buffer.byteLength(JSON.stringify(args.data ?? null));
    } catch {
      throw new ActionError('invalid-request', 'data must be JSON-serialisable');
    }
    if (size > MAX_APP_MESSAGE_BYTES) throw new ActionError('invalid-request', `app message larger than ${MAX_APP_MESSAGE_BYTES} bytes`);
    const to = args.to;
    for (const q of p.room.participants.values()) {
      if (q.kind !== 'bot' || q.sessionId === p.sessionId) continue;
      if (to !== undefined && to !== '*' && to !== q.sessionId) continue;
      q.send({ type: 'event', event: 'app-message', payload: { data: args.data, fromId: p.sessionId } });
    }
  }
}

/** Daily's `canReceive` (audio part): `{base: boolean | {audio}, byParticipantId?: {id: boolean | {audio}}}`, merged over `prev`. */
function parseCanReceive(v: unknown, prev: CanReceive | undefined): CanReceive {
  const audioOf = (x: unknown, what: string): boolean => {
    if (typeof x === 'boolean') return x;
    if (isObj(x) && typeof x.audio === 'boolean') return x.audio;
    throw new ActionError('invalid-request', `${what} must be a boolean or {audio: boolean}`);
  };
  if (!isObj(v)) throw new ActionError('invalid-request', 'canReceive must be an object');
  const out: CanReceive = { base: prev?.base ?? true, byParticipantId: { ...(prev?.byParticipantId ?? {}) } };
  if (v.base !== undefined) out.base = audioOf(v.base, 'canReceive.base');
  if (v.byParticipantId !== undefined) {
    if (!isObj(v.byParticipantId)) throw new ActionError('invalid-request', 'canReceive.byParticipantId must be an object');
    for (const [id, x] of Object.entries(v.byParticipantId)) out.byParticipantId[id] = audioOf(x, `canReceive.byParticipantId.${id}`);
  }
  return out;
}
