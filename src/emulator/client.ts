/**
 * CallClient for the local Daily emulator: speaks the WebSocket protocol of
 * src/emulator/protocol.ts (documented in docs/emulator.md).
 *
 * - The socket URL is derived from the room URL's origin: `ws://<origin>/_emulator/ws`.
 * - `sendAudio` carries words, not samples: it sends `send-audio {text, durationMs}` and
 *   resolves on the ack, which comes after `durationMs` (the audio's play-out time).
 * - Remote audio: after `receiveAudio(true)`, a caller's `speak` steps arrive as `audio-frame`s (real
 *   speech, 20 ms PCM16 frames); the words of `say` and `speak` arrive as `transcription-message`
 *   events while transcription is started.
 */
import type { Logger } from 'pino';
import { WebSocket } from 'ws';
import {
  CallClientEvents,
  type AudioOut,
  type CanReceiveAudio,
  type DialOutOptions,
  type CallClient,
  type CallClientEvent,
  type CallClientListener,
  type CallClientOptions,
  type JoinOptions,
} from '../daily/call-client.js';
import { CallEndedError, PatchbayError, TimeoutError } from '../core/errors.js';
import { CALL_CLIENT_WS_PATH, SERVER_EVENTS, type ActionName, type ClientMessage, type ServerMessage } from './protocol.js';

/** Text-only audio: estimated speaking time per character, and its bounds. */
export const MS_PER_CHAR = 60;
export const MIN_TEXT_AUDIO_MS = 200;
export const MAX_TEXT_AUDIO_MS = 30_000;

/** Play-out time of an `AudioOut`, in ms. */
export function audioDurationMs(audio: AudioOut): number {
  if (audio.pcm.length > 0 && audio.sampleRate > 0) return (audio.pcm.length / audio.sampleRate) * 1000;
  if (audio.durationMs !== undefined) return Math.min(MAX_TEXT_AUDIO_MS, Math.max(0, audio.durationMs));
  const chars = audio.text?.trim().length ?? 0;
  if (chars === 0) return 0;
  return Math.min(MAX_TEXT_AUDIO_MS, Math.max(MIN_TEXT_AUDIO_MS, chars * MS_PER_CHAR));
}

/** Samples larger than this (base64) are not sent: the emulator then records the words, spoken by espeak-ng. */
const MAX_RECORDED_B64 = 192 * 1024;

/**
 * While the room records, the audio's samples travel too (only then: the emulator needs them for
 * nothing else), so that the recording holds what the bot really sent.
 */
function recordedSamples(audio: AudioOut): { pcm?: string; sampleRate?: number } {
  if (audio.pcm.length === 0 || audio.sampleRate <= 0) return {};
  const b64 = Buffer.from(audio.pcm.buffer, audio.pcm.byteOffset, audio.pcm.byteLength).toString('base64');
  return b64.length > MAX_RECORDED_B64 ? {} : { pcm: b64, sampleRate: audio.sampleRate };
}

/** Join codes the emulator sends that will not change on a retry. */
const FINAL_JOIN_CODES = new Set(['no-room', 'invalid-token', 'exp-token', 'exp-room', 'not-allowed', 'invalid-request']);

/** Closes a socket politely, and for sure within a second. */
function closeSocket(ws: WebSocket, reason: string): void {
  if (ws.readyState !== WebSocket.OPEN && ws.readyState !== WebSocket.CONNECTING) return;
  try {
    ws.close(1000, reason);
  } catch {
    ws.terminate();
  }
  // Do not wait forever for the closing handshake.
  const t = setTimeout(() => ws.terminate(), 1_000);
  t.unref();
  ws.once('close', () => clearTimeout(t));
}

interface Pending {
  resolve: (result?: unknown) => void;
  reject: (e: Error) => void;
}

export class EmulatorCallClient implements CallClient {
  readonly kind = 'emulator' as const;
  private readonly events = new CallClientEvents();
  private readonly log: Logger;
  private ws: WebSocket | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private joined = false;
  private prepared = false;
  private closed = false;
  private leftEmitted = false;
  private endReason: string | undefined;
  /** A cloud recording runs in the room (recording-started … stopped): audio samples travel with send-audio. */
  private recording = false;
  private localSessionId: string | undefined;

  constructor(private readonly opts: CallClientOptions) {
    this.log = opts.logger.child({ client: 'emulator' });
  }

  on<E extends CallClientEvent>(event: E, listener: CallClientListener<E>): () => void {
    return this.events.on(event, listener);
  }

  /**
   * The first WebSocket a process opens costs ~20 ms of code loading and JIT: pay it here, in the
   * idle worker, with a throwaway connection, not while a caller is on hold. Best effort.
   */
  async prepare(): Promise<void> {
    if (this.prepared) return;
    this.prepared = true;
    let url: string;
    try {
      const u = new URL(this.opts.apiUrl);
      url = `${u.protocol === 'https:' ? 'wss:' : 'ws:'}//${u.host}${CALL_CLIENT_WS_PATH}`;
    } catch {
      return;
    }
    await new Promise<void>((resolve) => {
      const ws = new WebSocket(url);
      const done = () => {
        clearTimeout(timer);
        ws.removeAllListeners();
        ws.on('error', () => undefined);
        ws.terminate();
        resolve();
      };
      const timer = setTimeout(done, 2_000);
      ws.once('open', done);
      ws.once('error', done);
    });
  }

  join(o: JoinOptions): Promise<{ localSessionId: string }> {
    if (this.closed) return Promise.reject(new PatchbayError('client_closed', 'the call client is closed'));
    if (this.ws) return Promise.reject(new PatchbayError('already_joined', 'join was already called on this client'));
    let wsUrl: string;
    try {
      const u = new URL(o.roomUrl);
      wsUrl = `${u.protocol === 'https:' ? 'wss:' : 'ws:'}//${u.host}${CALL_CLIENT_WS_PATH}`;
    } catch {
      return Promise.reject(new PatchbayError('invalid_room_url', `not a room URL: ${o.roomUrl}`));
    }
    const ws = new WebSocket(wsUrl, { handshakeTimeout: o.timeoutMs });
    this.ws = ws;

    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (err: Error | undefined, sessionId?: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          reject(err);
          // Forget this socket: a later join on the same client starts afresh.
          this.ws = undefined;
          closeSocket(ws, 'join-failed');
        } else {
          resolve({ localSessionId: sessionId! });
        }
      };
      const timer = setTimeout(() => settle(new TimeoutError('emulator join', o.timeoutMs, true)), o.timeoutMs);

      ws.on('open', () => {
        const msg: ClientMessage = { type: 'join', roomUrl: o.roomUrl, token: o.token, userName: o.userName };
        ws.send(JSON.stringify(msg));
      });
      ws.on('error', (err) => {
        this.log.debug({ err: err.message }, 'emulator socket error');
        settle(new PatchbayError('emulator_unreachable', `cannot reach the emulator: ${err.message}`, { retryable: true, cause: err }));
      });
      ws.on('close', (code, reasonBuf) => {
        const reason = reasonBuf.toString() || `socket closed (${code})`;
        settle(new PatchbayError('join_failed', `the emulator closed the socket during join: ${reason}`, { retryable: true }));
        if (this.ws === ws) this.onSocketClosed(reason);
      });
      ws.on('message', (data) => {
        if (this.ws !== ws) return;
        let m: ServerMessage;
        try {
          m = JSON.parse(data.toString()) as ServerMessage;
        } catch {
          return;
        }
        this.onServerMessage(m, settle);
      });
    });
  }

  /** A message from the emulator on this client's socket; `settle` ends a pending join. */
  private onServerMessage(m: ServerMessage, settle: (err: Error | undefined, sessionId?: string) => void): void {
    switch (m.type) {
      case 'joined':
        this.joined = true;
        this.localSessionId = m.localSessionId;
        settle(undefined, m.localSessionId);
        this.events.emit('joined-meeting', { localSessionId: m.localSessionId, participants: m.participants });
        return;
      case 'join-error':
        settle(
          new PatchbayError(`join_${m.code.replace(/-/g, '_')}`, `join refused: ${m.message}`, {
            retryable: !FINAL_JOIN_CODES.has(m.code),
          }),
        );
        return;
      case 'ack': {
        const p = this.pending.get(Number(m.id));
        if (!p) return;
        this.pending.delete(Number(m.id));
        if (m.error !== undefined)
          p.reject(new PatchbayError(m.code ? `emulator_${m.code.replace(/-/g, '_')}` : 'emulator_action_failed', m.error));
        else p.resolve(m.result);
        return;
      }
      case 'audio': {
        const b = Buffer.from(m.pcm, 'base64');
        const pcm = new Int16Array(Uint8Array.from(b).buffer, 0, b.byteLength >> 1);
        this.events.emit('audio-frame', { participantId: m.participantId, sampleRate: m.sampleRate, pcm });
        return;
      }
      case 'event':
        if (!SERVER_EVENTS.has(m.event)) return;
        if (m.event === 'left-meeting') {
          this.endReason = m.payload.reason;
          this.emitLeft(m.payload.reason);
          return;
        }
        if (m.event === 'recording-started') this.recording = true;
        if (m.event === 'recording-stopped' || m.event === 'recording-error') this.recording = false;
        this.events.emit(m.event, m.payload);
        return;
    }
  }

  private emitLeft(reason: string): void {
    if (this.leftEmitted || !this.joined) return;
    this.leftEmitted = true;
    this.events.emit('left-meeting', { reason });
  }

  private onSocketClosed(reason: string): void {
    const why = this.endReason ?? reason;
    this.endReason ??= why;
    this.rejectAll();
    this.emitLeft(why);
  }

  private rejectAll(): void {
    const err = new CallEndedError(this.endReason ?? 'left');
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  /** Sends an action; resolves on its ack. */
  private async action(
    action: ActionName,
    args: Record<string, unknown> = {},
    signal?: AbortSignal,
    onId?: (id: number) => void,
  ): Promise<void> {
    await this.request(action, args, signal, onId);
  }

  /** Sends an action; resolves with its ack's result. */
  private request(
    action: ActionName,
    args: Record<string, unknown> = {},
    signal?: AbortSignal,
    onId?: (id: number) => void,
  ): Promise<unknown> {
    const ws = this.ws;
    if (!this.joined || !ws) return Promise.reject(new PatchbayError('not_joined', `${action}: not in a room`));
    if (ws.readyState !== WebSocket.OPEN || this.closed || this.leftEmitted)
      return Promise.reject(new CallEndedError(this.endReason ?? 'left'));
    if (signal?.aborted) return Promise.reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    const id = this.nextId++;
    onId?.(id);
    return new Promise<unknown>((resolve, reject) => {
      const onAbort = (): void => {
        if (!this.pending.delete(id)) return;
        reject(signal!.reason instanceof Error ? signal!.reason : new Error('aborted'));
      };
      this.pending.set(id, {
        resolve: (result) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(result);
        },
        reject: (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      const msg: ClientMessage = { type: 'action', id, action, args };
      ws.send(JSON.stringify(msg));
    });
  }

  async leave(): Promise<void> {
    if (!this.joined || this.closed) return;
    if (this.ws?.readyState === WebSocket.OPEN && !this.leftEmitted) {
      await Promise.race([this.action('leave').catch(() => undefined), new Promise((r) => setTimeout(r, 2_000).unref())]);
    }
    this.endReason ??= 'left';
    this.shutdown('left', true);
  }

  async sendAudio(audio: AudioOut, signal?: AbortSignal): Promise<void> {
    const durationMs = audioDurationMs(audio);
    let actionId: number | undefined;
    const onAbort = (): void => {
      if (actionId !== undefined && this.ws?.readyState === WebSocket.OPEN) {
        const msg: ClientMessage = { type: 'action', id: this.nextId++, action: 'cancel-audio', args: { actionId } };
        this.ws.send(JSON.stringify(msg));
      }
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await this.action(
        'send-audio',
        {
          ...(audio.text ? { text: audio.text } : {}),
          ...(audio.continues ? { continues: true } : {}),
          durationMs,
          ...(this.recording ? recordedSamples(audio) : {}),
        },
        signal,
        (id) => {
          actionId = id;
        },
      );
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async receiveAudio(enabled: boolean): Promise<void> {
    await this.action('receive-audio', { enabled });
  }

  sendDTMF(o: { sessionId: string; tones: string }): Promise<void> {
    return this.action('send-dtmf', { sessionId: o.sessionId, tones: o.tones });
  }

  sipCallTransfer(o: { sessionId: string; toEndPoint: string }): Promise<void> {
    return this.action('sip-call-transfer', { sessionId: o.sessionId, toEndPoint: o.toEndPoint });
  }

  sipRefer(o: { sessionId: string; toEndPoint: string }): Promise<void> {
    return this.action('sip-refer', { sessionId: o.sessionId, toEndPoint: o.toEndPoint });
  }

  startTranscription(o?: { language?: string }): Promise<void> {
    return this.action('start-transcription', o?.language ? { language: o.language } : {});
  }

  stopTranscription(): Promise<void> {
    return this.action('stop-transcription');
  }

  sendAppMessage(data: unknown, to?: string): Promise<void> {
    return this.action('send-app-message', { data, ...(to === undefined ? {} : { to }) });
  }

  async ejectParticipant(sessionId: string): Promise<void> {
    await this.action('eject', { sessionId });
  }

  async startDialOut(opts: DialOutOptions): Promise<{ sessionId: string }> {
    const r = (await this.request('start-dial-out', { ...opts })) as { session?: { sessionId?: unknown } } | undefined;
    const sessionId = r?.session?.sessionId;
    if (typeof sessionId !== 'string') throw new PatchbayError('dialout_failed', 'startDialOut returned no session');
    return { sessionId };
  }

  async stopDialOut(sessionId: string): Promise<void> {
    await this.action('stop-dial-out', { sessionId });
  }

  async setCanReceive(sessionId: string, canReceive: CanReceiveAudio): Promise<void> {
    await this.action('update-permissions', { sessionId, canReceive });
  }

  /** The local session id once joined. */
  get sessionId(): string | undefined {
    return this.localSessionId;
  }

  private shutdown(reason: string, emit: boolean): void {
    const ws = this.ws;
    this.endReason ??= reason;
    this.rejectAll();
    if (emit) this.emitLeft(this.endReason);
    if (ws) closeSocket(ws, reason);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.shutdown('closed', true);
    this.closed = true;
    const ws = this.ws;
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        ws.once('close', () => resolve());
        setTimeout(resolve, 1_100).unref();
      });
    }
  }
}
