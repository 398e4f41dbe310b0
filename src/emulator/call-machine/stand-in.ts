/**
 * A local stand-in for Daily's call machine, for tests and offline runs of the real daily-js.
 *
 * `CallMachineStandIn.start()` serves `call-machine-object-bundle.js` (a relay, see
 * bundle-source.ts) and a control WebSocket on 127.0.0.1. Point daily-js at it with
 * `dailyConfig.bundlePathOverride = standIn.bundleUrl` (the daily client's `bundleUrl` option).
 *
 * The Node side plays the platform: it answers `join-meeting` (join, fail, or hang), records
 * every action the page performs (`actions`), and exposes a small script API (`dialinReady`,
 * `dialinConnected`, `addParticipant`, `dtmf`, `transcription`, `removeParticipant`, …) that
 * makes the real daily-js emit the matching events to the page's listeners.
 *
 * Bridging to the project emulator: subclass or wrap, and in `handleAction` relay the recorded
 * actions to the emulator's WebSocket while turning its events into `post(...)` calls; the bundle
 * does not change.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { EmulatorLink } from './bridge.js';
import { callMachineBundleSource } from './bundle-source.js';
import { fullParticipant, participantFrom } from './participants.js';

export { fullParticipant } from './participants.js';
import { CALL_MACHINE_BUNDLE_FILE, DAILY_JS_VERSION, type BundleToServer, type ServerToBundle } from './protocol.js';
import { errorMessage } from '../../core/errors.js';

export type JoinBehaviour =
  | 'join'
  /** Never answer: daily-js waits forever (our client's join timeout must fire). */
  | 'hang'
  /** A fatal daily-js error (e.g. `{type: 'exp-token', msg: 'meeting token expired'}`). */
  | { errorType: string; errorMsg: string };

export interface StandInOptions {
  /**
   * `'emulator'`: relay each page's call to the project emulator (docs/emulator.md) found at the
   * joined room URL's origin; the emulator then plays the platform (join, events, actions) and
   * `onJoin`/`dialinReadyEndpoint`/`failActions` are ignored. Actions are still recorded.
   */
  bridge?: 'emulator';
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  onJoin?: JoinBehaviour;
  /** Post `dialin-ready` with this SIP endpoint right after `joined-meeting`. */
  dialinReadyEndpoint?: string;
  /** Answer these actions (e.g. `send-dtmf`) with an error carrying this message. */
  failActions?: Record<string, string>;
}

export interface RecordedAction {
  callClientId: string;
  action: string;
  msg: Record<string, unknown>;
  atMs: number;
}

export interface StandInParticipant {
  sessionId: string;
  userName?: string;
  userId?: string;
  /** daily-js `participantType`, e.g. `sip-dial-in` for a caller. */
  participantType?: string;
  /** Give the participant an audio track: a sine of this frequency. */
  toneHz?: number;
  /** Give the participant the bot's own microphone as its audio track (audio path tests). */
  loopback?: boolean;
}

export interface StandInSession {
  callClientId: string;
  ws: WebSocket;
  localSessionId: string | undefined;
  userName: string | undefined;
  participants: Map<string, Record<string, unknown>>;
  /** Set in bridge mode once the page joins. */
  link?: EmulatorLink | undefined;
  /** The page reads remote audio (bridge mode: the emulator is asked for the callers' frames). */
  receiveAudio?: boolean;
}

/** A message's `properties` object (none: empty). */
function propertiesOf(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null ? { ...v } : {};
}

export class CallMachineStandIn {
  /** Every action daily-js sent to the call machine, in order. */
  readonly actions: RecordedAction[] = [];
  /** Clips the page announced (text and duration), in order. */
  readonly speeches: { callClientId: string; text: string | undefined; durationMs: number; atMs: number }[] = [];
  /** Bot microphone activity changes seen by the bundle. */
  readonly micActivity: { callClientId: string; active: boolean; rms: number; atMs: number }[] = [];
  readonly options: StandInOptions;

  private readonly sessions = new Map<string, StandInSession>();
  private readonly waiters = new Set<() => void>();
  private server: http.Server | undefined;
  private wss: WebSocketServer | undefined;
  private origin = '';

  private constructor(opts: StandInOptions) {
    this.options = { ...opts };
  }

  static async start(opts: StandInOptions = {}): Promise<CallMachineStandIn> {
    const s = new CallMachineStandIn(opts);
    await s.listen();
    return s;
  }

  /** For `dailyConfig.bundlePathOverride`. */
  get bundleUrl(): string {
    return `${this.origin}/call-machine`;
  }

  /** Session ids of the page's call clients that reached the stand-in. */
  get callClientIds(): string[] {
    return [...this.sessions.keys()];
  }

  private async listen(): Promise<void> {
    const server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      if (req.method === 'GET' && url.pathname.endsWith(`/${CALL_MACHINE_BUNDLE_FILE}`)) {
        const body = callMachineBundleSource({
          controlUrl: `${this.origin.replace(/^http/, 'ws')}/control`,
          dailyJsVersion: DAILY_JS_VERSION,
        });
        res
          .writeHead(200, {
            'content-type': 'text/javascript; charset=utf-8',
            'access-control-allow-origin': '*',
            'cache-control': 'no-store',
          })
          .end(body);
        return;
      }
      res.writeHead(404, { 'access-control-allow-origin': '*' }).end();
    });
    const wss = new WebSocketServer({ server, path: '/control' });
    wss.on('connection', (ws) => this.onConnection(ws));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port ?? 0, this.options.host ?? '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.wss = wss;
    const addr = server.address() as AddressInfo;
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    this.origin = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${addr.port}`;
  }

  private onConnection(ws: WebSocket): void {
    let session: StandInSession | undefined;
    ws.on('message', (raw) => {
      let m: BundleToServer;
      try {
        m = JSON.parse(String(raw)) as BundleToServer;
      } catch {
        return;
      }
      if (m.t === 'hello') {
        session = { callClientId: m.callClientId, ws, localSessionId: undefined, userName: undefined, participants: new Map() };
        this.sessions.set(m.callClientId, session);
      } else if (session && m.t === 'action') {
        this.actions.push({ callClientId: m.callClientId, action: m.action, msg: m.msg, atMs: Date.now() });
        this.handleAction(session, m.action, m.msg, m.callbackStamp);
      } else if (m.t === 'mic') {
        this.micActivity.push({ callClientId: m.callClientId, active: m.active, rms: m.rms, atMs: Date.now() });
      } else if (session && m.t === 'speak') {
        this.speeches.push({ callClientId: m.callClientId, text: m.text, durationMs: m.durationMs, atMs: Date.now() });
        session.link?.speak(m.id, m.text, m.durationMs);
      } else if (session && m.t === 'speak-cancel') {
        session.link?.cancelSpeak(m.id);
      } else if (session && m.t === 'receive-audio') {
        session.receiveAudio = m.enabled;
        session.link?.receiveAudio(m.enabled);
      }
      this.wake();
    });
    ws.on('close', () => {
      session?.link?.close();
      if (session && this.sessions.get(session.callClientId) === session) this.sessions.delete(session.callClientId);
    });
  }

  /** The platform's side of each action. Override to bridge to another backend. */
  protected handleAction(s: StandInSession, action: string, msg: Record<string, unknown>, callbackStamp: string | undefined): void {
    if (this.options.bridge === 'emulator') {
      this.bridgeAction(s, action, msg, callbackStamp);
      return;
    }
    const failure = this.options.failActions?.[action];
    if (failure !== undefined) {
      if (callbackStamp) this.send(s, { t: 'reply', callbackStamp, error: { msg: failure, type: 'stand-in-failure' } });
      return;
    }
    switch (action) {
      case 'join-meeting':
        this.onJoin(s, msg, callbackStamp);
        return;
      case 'update-participant': {
        const props = propertiesOf(msg.properties);
        if (props.eject === true && typeof msg.id === 'string') this.removeParticipant(msg.id, undefined, s.callClientId);
        break;
      }
      case 'daily-method-start-transcription':
        this.send(s, { t: 'post', msg: { action: 'transcription-started', transcriptId: randomUUID(), language: msg.language ?? 'en' } });
        break;
      case 'daily-method-stop-transcription':
        this.send(s, { t: 'post', msg: { action: 'transcription-stopped', updatedBy: s.localSessionId } });
        break;
      case 'leave-meeting':
        s.localSessionId = undefined;
        s.participants.clear();
        break;
      default:
        break;
    }
    if (callbackStamp) this.send(s, { t: 'reply', callbackStamp });
  }

  private bridgeAction(s: StandInSession, action: string, msg: Record<string, unknown>, callbackStamp: string | undefined): void {
    const reply = (error?: string): void => {
      if (!callbackStamp) return;
      this.send(
        s,
        error === undefined ? { t: 'reply', callbackStamp } : { t: 'reply', callbackStamp, error: { msg: error, type: 'emulator' } },
      );
    };
    if (action === 'join-meeting') {
      const props = propertiesOf(msg.properties);
      s.link?.close();
      const url = typeof props.url === 'string' ? props.url : '';
      try {
        s.link = new EmulatorLink(
          url,
          {
            ...(typeof props.token === 'string' ? { token: props.token } : {}),
            ...(typeof props.userName === 'string' ? { userName: props.userName } : {}),
          },
          {
            post: (m) => this.send(s, { t: 'post', msg: m, feed: true }),
            participant: (p) => participantFrom(p),
            audio: (p, r, pcm) => this.send(s, { t: 'audio', p, r, pcm }),
          },
        );
        if (s.receiveAudio) s.link.receiveAudio(true);
      } catch (err) {
        const text = `cannot reach the emulator for ${url}: ${errorMessage(err)}`;
        this.send(s, { t: 'post', msg: { action: 'error', errorMsg: text, error: { type: 'connection-error', msg: text } } });
      }
      reply();
      return;
    }
    if (!s.link) {
      reply();
      return;
    }
    s.link.action(action, msg, reply);
    if (action === 'leave-meeting') s.link = undefined;
  }

  private onJoin(s: StandInSession, msg: Record<string, unknown>, callbackStamp: string | undefined): void {
    const behaviour = this.options.onJoin ?? 'join';
    if (behaviour === 'hang') return;
    if (typeof behaviour === 'object') {
      if (callbackStamp) this.send(s, { t: 'reply', callbackStamp });
      this.send(s, {
        t: 'post',
        msg: { action: 'error', errorMsg: behaviour.errorMsg, error: { type: behaviour.errorType, msg: behaviour.errorMsg } },
      });
      return;
    }
    const props = propertiesOf(msg.properties);
    s.localSessionId = randomUUID();
    s.userName = typeof props.userName === 'string' ? props.userName : undefined;
    if (callbackStamp) this.send(s, { t: 'reply', callbackStamp });
    const local = fullParticipant({
      sessionId: s.localSessionId,
      userName: s.userName ?? '',
      local: true,
      audio: true,
    });
    const participants: Record<string, unknown> = { local };
    for (const [id, p] of s.participants) participants[id] = p;
    this.send(s, { t: 'post', msg: { action: 'joined-meeting', participants } });
    if (this.options.dialinReadyEndpoint) this.dialinReady(this.options.dialinReadyEndpoint, s.callClientId);
  }

  // ---- script API: make daily-js emit events ----

  /** Posts any call-machine message to one session (default: the only or latest one). */
  post(msg: { action: string } & Record<string, unknown>, callClientId?: string, toneHz?: number): void {
    const s = this.session(callClientId);
    this.send(s, { t: 'post', msg, ...(toneHz !== undefined ? { toneHz } : {}) });
  }

  dialinReady(sipEndpoint: string, callClientId?: string): void {
    this.post({ action: 'dialin-ready', sipEndpoint, provider: 'daily' }, callClientId);
  }

  /** A caller appears: `participant-joined` (a SIP dial-in participant with a tone unless told otherwise). */
  addParticipant(p: StandInParticipant, callClientId?: string): void {
    const s = this.session(callClientId);
    const full = fullParticipant({
      sessionId: p.sessionId,
      userName: p.userName ?? '',
      userId: p.userId ?? p.sessionId,
      local: false,
      participantType: p.participantType ?? 'sip-dial-in',
      audio: p.toneHz !== undefined || p.loopback === true,
    });
    s.participants.set(p.sessionId, full);
    this.send(s, {
      t: 'post',
      msg: { action: 'participant-joined', participant: full },
      ...(p.toneHz !== undefined ? { toneHz: p.toneHz } : {}),
      ...(p.loopback ? { loopback: true } : {}),
    });
  }

  dialinConnected(
    p: { sessionId: string; sipFrom?: string; sipEndpoint?: string; sipHeaders?: Record<string, unknown> },
    callClientId?: string,
  ): void {
    this.post({ action: 'dialin-connected', provider: 'daily', sipCallId: randomUUID(), ...p }, callClientId);
  }

  dialinStopped(p: { sessionId: string; sipEndpoint?: string }, callClientId?: string): void {
    this.post({ action: 'dialin-stopped', provider: 'daily', ...p }, callClientId);
  }

  /** `participant-left` (and `dialin-stopped` for a SIP participant). */
  removeParticipant(sessionId: string, reason?: string, callClientId?: string): void {
    const s = this.session(callClientId);
    const p = s.participants.get(sessionId) ?? fullParticipant({ sessionId, local: false, audio: false });
    s.participants.delete(sessionId);
    this.send(s, { t: 'post', msg: { action: 'participant-left', participant: p, ...(reason ? { reason } : {}) } });
    const type = p.participantType;
    if (typeof type === 'string' && type.includes('dial-in')) this.dialinStopped({ sessionId }, s.callClientId);
  }

  dtmf(tone: string, sessionId?: string, callClientId?: string): void {
    this.post({ action: 'dtmf-event', tone, volume: 10, method: 'telephone-event', ...(sessionId ? { sessionId } : {}) }, callClientId);
  }

  transcription(t: { participantId: string; text: string; isFinal?: boolean; timestamp?: Date }, callClientId?: string): void {
    this.post(
      {
        action: 'transcription-message',
        participantId: t.participantId,
        text: t.text,
        timestamp: (t.timestamp ?? new Date()).toISOString(),
        trackType: 'cam-audio',
        rawResponse: t.isFinal === undefined ? {} : { is_final: t.isFinal },
      },
      callClientId,
    );
  }

  appMessage(data: unknown, fromId: string, callClientId?: string): void {
    this.post({ action: 'app-message', data, fromId }, callClientId);
  }

  /** A fatal error from the platform (daily-js moves to meeting state `error`). */
  fatalError(type: string, msg: string, callClientId?: string): void {
    this.post({ action: 'error', errorMsg: msg, error: { type, msg } }, callClientId);
  }

  // ---- waiting ----

  /** Resolves with the first recorded action matching, waiting up to `timeoutMs`. */
  async waitForAction(action: string, timeoutMs = 5_000, pred: (a: RecordedAction) => boolean = () => true): Promise<RecordedAction> {
    return this.waitFor(() => this.actions.find((a) => a.action === action && pred(a)), timeoutMs, `action ${action}`);
  }

  async waitFor<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const first = check();
    if (first !== undefined) return first;
    return new Promise<T>((resolve, reject) => {
      const waker = (): void => {
        const v = check();
        if (v === undefined) return;
        cleanup();
        resolve(v);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`stand-in: ${what} not seen within ${timeoutMs} ms`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.waiters.delete(waker);
      };
      this.waiters.add(waker);
    });
  }

  async close(): Promise<void> {
    for (const s of this.sessions.values()) {
      s.link?.close();
      s.ws.terminate();
    }
    this.sessions.clear();
    await new Promise<void>((resolve) => (this.wss ? this.wss.close(() => resolve()) : resolve()));
    await new Promise<void>((resolve) => {
      if (!this.server) return resolve();
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  private session(callClientId?: string): StandInSession {
    if (callClientId !== undefined) {
      const s = this.sessions.get(callClientId);
      if (!s) throw new Error(`stand-in: no session ${callClientId}`);
      return s;
    }
    const all = [...this.sessions.values()];
    const s = all[all.length - 1];
    if (!s) throw new Error('stand-in: no page has loaded the call machine yet');
    return s;
  }

  private send(s: StandInSession, m: ServerToBundle): void {
    if (s.ws.readyState === s.ws.OPEN) s.ws.send(JSON.stringify(m));
  }
}
