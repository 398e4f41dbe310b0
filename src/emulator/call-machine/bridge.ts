/**
 * Bridge from the call-machine stand-in to the project's Daily emulator (docs/emulator.md):
 * one emulator call-client socket per page call client. With it, the real daily-js in Chromium
 * runs end to end offline: join/actions go to the emulator, its events come back to daily-js as
 * call-machine messages, and the bot's clips reach the emulated caller as words.
 *
 *   daily-js ⇄ stand-in bundle ⇄ CallMachineStandIn (Node) ⇄ EmulatorLink ⇄ ws /_emulator/ws
 */
import WebSocket from 'ws';
import type { CallParticipant } from '../../daily/call-client.js';
import { CALL_CLIENT_WS_PATH, type ServerMessage } from '../protocol.js';

type DailyMessage = { action: string } & Record<string, unknown>;

export interface EmulatorLinkHooks {
  /** Deliver a call-machine message to daily-js. */
  post(msg: DailyMessage): void;
  /** Build a full daily-js participant object. */
  participant(p: CallParticipant): Record<string, unknown>;
  /** A remote participant's audio frame (after `receiveAudio(true)`): PCM16 LE mono, base64. */
  audio(participantId: string, sampleRate: number, pcm: string): void;
}

/** Emulator join-error codes → daily-js fatal error types (index.d.ts `DailyFatalErrorType`). */
const JOIN_ERROR_TYPES: Record<string, string> = {
  'no-room': 'no-room',
  'invalid-token': 'not-allowed',
  'exp-token': 'exp-token',
  'nbf-token': 'nbf-token',
  'exp-room': 'exp-room',
  'nbf-room': 'nbf-room',
  'not-allowed': 'not-allowed',
};

/** `ws(s)://<room URL host>/_emulator/ws`, like the emulator's own client. */
export function emulatorWsUrl(roomUrl: string): string {
  const u = new URL(roomUrl);
  return `${u.protocol === 'https:' ? 'wss:' : 'ws:'}//${u.host}${CALL_CLIENT_WS_PATH}`;
}

/** A message's `properties` object (none: empty). */
function propertiesOf(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null ? { ...v } : {};
}

export class EmulatorLink {
  private readonly ws: WebSocket;
  private seq = 0;
  private readonly acks = new Map<string, (error?: string) => void>();
  private joined = false;
  private ended = false;
  private readonly queue: string[] = [];

  constructor(
    roomUrl: string,
    join: { token?: string; userName?: string },
    private readonly hooks: EmulatorLinkHooks,
  ) {
    this.ws = new WebSocket(emulatorWsUrl(roomUrl));
    const first = JSON.stringify({
      type: 'join',
      roomUrl,
      ...(join.token ? { token: join.token } : {}),
      ...(join.userName ? { userName: join.userName } : {}),
    });
    this.ws.on('open', () => {
      this.ws.send(first);
      for (const m of this.queue.splice(0)) this.ws.send(m);
    });
    this.ws.on('message', (raw) => {
      let m: ServerMessage;
      try {
        m = JSON.parse(String(raw)) as ServerMessage;
      } catch {
        return;
      }
      this.onServer(m);
    });
    this.ws.on('error', () => undefined);
    this.ws.on('close', () => this.onClose());
  }

  /** daily-js module action → emulator action; `done` gets the ack's error, if any. */
  action(action: string, msg: Record<string, unknown>, done: (error?: string) => void): void {
    switch (action) {
      case 'send-dtmf':
        return this.send('send-dtmf', { sessionId: msg.sessionId, tones: msg.tones }, done);
      case 'sip-call-transfer':
        return this.send(
          msg.useSipRefer === true ? 'sip-refer' : 'sip-call-transfer',
          {
            sessionId: msg.sessionId,
            toEndPoint: msg.toEndPoint,
          },
          done,
        );
      case 'update-participant': {
        const props = propertiesOf(msg.properties);
        if (props.eject === true) return this.send('eject', { sessionId: msg.id }, done);
        return done();
      }
      case 'app-msg':
        return this.send('send-app-message', { data: msg.data, ...(msg.to && msg.to !== '*' ? { to: msg.to } : {}) }, done);
      case 'daily-method-start-transcription':
        // daily-js's startTranscription() returns nothing: Daily answers with a `transcription-started`
        // (or `transcription-error`) event, so the bridge does too, once the emulator has acked.
        return this.send('start-transcription', typeof msg.language === 'string' ? { language: msg.language } : {}, (error) => {
          if (error) this.hooks.post({ action: 'transcription-error', errorMsg: error });
          else this.hooks.post({ action: 'transcription-started', language: typeof msg.language === 'string' ? msg.language : 'en' });
          done(error);
        });
      case 'daily-method-stop-transcription':
        return this.send('stop-transcription', {}, done);
      case 'leave-meeting':
        this.ended = true;
        return this.send('leave', {}, done);
      default:
        // Device and log messages (set-input-devices, transmit-log …) have no emulator counterpart.
        return done();
    }
  }

  speak(id: number, text: string | undefined, durationMs: number): void {
    this.send('send-audio', { ...(text ? { text } : {}), durationMs: Math.round(durationMs) }, () => undefined, `speak-${id}`);
  }

  /** The page reads remote audio (or stopped): the emulator sends (or stops) the callers' audio frames. */
  receiveAudio(enabled: boolean): void {
    this.send('receive-audio', { enabled }, () => undefined);
  }

  cancelSpeak(id: number): void {
    this.send('cancel-audio', { actionId: `speak-${id}` }, () => undefined);
  }

  close(): void {
    this.ended = true;
    this.ws.close();
  }

  private send(action: string, args: Record<string, unknown>, done: (error?: string) => void, id?: string): void {
    const actionId = id ?? `a${++this.seq}`;
    this.acks.set(actionId, done);
    const frame = JSON.stringify({ type: 'action', id: actionId, action, args });
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(frame);
    else if (this.ws.readyState === WebSocket.CONNECTING) this.queue.push(frame);
    else {
      this.acks.delete(actionId);
      done('the emulator connection is closed');
    }
  }

  private onServer(m: ServerMessage): void {
    switch (m.type) {
      case 'joined': {
        this.joined = true;
        const participants: Record<string, unknown> = {};
        for (const p of m.participants) participants[p.local ? 'local' : p.sessionId] = this.hooks.participant(p);
        this.hooks.post({ action: 'joined-meeting', participants });
        return;
      }
      case 'join-error': {
        this.ended = true;
        const type = JOIN_ERROR_TYPES[m.code] ?? m.code;
        this.hooks.post({ action: 'error', errorMsg: m.message, error: { type, msg: m.message, details: { emulatorCode: m.code } } });
        return;
      }
      case 'ack': {
        const done = this.acks.get(String(m.id));
        this.acks.delete(String(m.id));
        done?.(m.error);
        return;
      }
      case 'event':
        this.onEvent(m);
        return;
      case 'audio':
        this.hooks.audio(m.participantId, m.sampleRate, m.pcm);
        return;
      default:
        return;
    }
  }

  private onEvent(m: Extract<ServerMessage, { type: 'event' }>): void {
    const post = this.hooks.post;
    switch (m.event) {
      case 'participant-joined': {
        const p = m.payload;
        post({ action: 'participant-joined', participant: this.hooks.participant(p.participant) });
        return;
      }
      case 'participant-left': {
        const p = m.payload;
        post({ action: 'participant-left', participant: this.hooks.participant(p.participant), ...(p.reason ? { reason: p.reason } : {}) });
        return;
      }
      case 'transcription-message': {
        const t = m.payload;
        post({
          action: 'transcription-message',
          participantId: t.participantId,
          text: t.text,
          timestamp: new Date(t.timestampMs).toISOString(),
          trackType: 'cam-audio',
          rawResponse: { is_final: t.isFinal },
        });
        return;
      }
      case 'error': {
        const e = m.payload;
        if (e.fatal) post({ action: 'error', errorMsg: e.message, error: { type: e.code ?? 'connection-error', msg: e.message } });
        else post({ action: 'nonfatal-error', type: e.code ?? 'emulator', errorMsg: e.message });
        return;
      }
      case 'left-meeting': {
        const l = m.payload;
        this.ended = true;
        post({ action: 'left-meeting', reason: l.reason });
        return;
      }
      case 'joined-meeting':
      case 'audio-frame':
        return;
      default:
        // dialin-*, dtmf-event, app-message: daily-js passes these through as sent.
        post({ action: m.event, ...(m.payload as unknown as Record<string, unknown>) });
        return;
    }
  }

  private onClose(): void {
    for (const [, done] of this.acks) done('the emulator connection closed');
    this.acks.clear();
    if (this.joined && !this.ended) {
      this.ended = true;
      this.hooks.post({
        action: 'error',
        errorMsg: 'lost the connection to the emulator',
        error: { type: 'connection-error', msg: 'emulator socket closed' },
      });
    }
  }
}
