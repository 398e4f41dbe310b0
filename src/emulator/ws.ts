/**
 * WebSockets on the emulator's HTTP server (`noServer` + 'upgrade'):
 *  - /_emulator/ws                   one call client (bot participant) per socket;
 *  - /_emulator/calls/:id/events     a call's state changes and transcript lines (control API).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import type { EmulatorCore, SocketCounts } from './core.js';
import { ActionError } from './errors.js';
import { participantJson, type BotParticipant } from './model.js';
import { ACTION_NAMES, CALL_CLIENT_WS_PATH, WS_CLOSE, type ActionName, type ServerMessage } from './protocol.js';
import { errorCode, errorMessage } from '../core/errors.js';

const MAX_MESSAGE_BYTES = 256 * 1024;
const isActionName = (a: unknown): a is ActionName => ACTION_NAMES.some((n) => n === a);
const isRecordLike = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/** One call client's socket: the bot it joined (once joined). */
interface ClientConn {
  ws: WebSocket;
  participant: BotParticipant | undefined;
  joining: boolean;
  send(m: ServerMessage): void;
}

export class EmulatorSockets {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  private readonly sockets = new Set<WebSocket>();
  /** Call-client sockets only (subset of `sockets`). */
  private readonly clientSockets = new Set<WebSocket>();
  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => this.upgrade(req, socket, head);

  constructor(
    private readonly core: EmulatorCore,
    private readonly server: Server,
  ) {
    server.on('upgrade', this.onUpgrade);
  }

  /** Open call-client sockets and all open sockets. */
  counts(): SocketCounts {
    return { clients: this.clientSockets.size, sockets: this.sockets.size };
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const events = /^\/_emulator\/calls\/([^/]+)\/events$/.exec(path);
    if (path !== CALL_CLIENT_WS_PATH && !events) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    if (events) {
      const call = this.core.calls.get(decodeURIComponent(events[1]!));
      if (!call) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.sockets.add(ws);
      ws.on('close', () => this.sockets.delete(ws));
      ws.on('error', () => ws.terminate());
      if (events) {
        this.streamCall(ws, decodeURIComponent(events[1]!));
      } else {
        this.clientSockets.add(ws);
        ws.on('close', () => this.clientSockets.delete(ws));
        this.callClient(ws);
      }
    });
  }

  private streamCall(ws: WebSocket, id: string): void {
    const call = this.core.calls.get(id);
    if (!call) {
      ws.close(WS_CLOSE.protocolError, 'no such call');
      return;
    }
    const send = (m: unknown): void => {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(m));
    };
    send({ type: 'state', state: call.state, callId: call.callId });
    for (const line of call.transcript) send({ type: 'transcript', line });
    if (call.state === 'ended') {
      send({ type: 'ended', reason: call.reason });
      ws.close(WS_CLOSE.normal, 'ended');
      return;
    }
    const offs = [
      call.on('transcript', (line) => send({ type: 'transcript', line })),
      call.on('state', (state) => {
        if (state !== 'ended') send({ type: 'state', state });
      }),
      call.on('ended', (e) => {
        send({ type: 'state', state: 'ended' });
        send({ type: 'ended', reason: e.reason });
        ws.close(WS_CLOSE.normal, 'ended');
      }),
    ];
    ws.on('close', () => offs.forEach((off) => off()));
  }

  private callClient(ws: WebSocket): void {
    const conn: ClientConn = {
      ws,
      participant: undefined,
      joining: false,
      send: (m) => {
        if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(m));
      },
    };

    ws.on('close', () => {
      if (conn.participant) this.core.sessions.removeBot(conn.participant, 'disconnected');
      conn.participant = undefined;
    });

    ws.on('message', (data: RawData) => {
      let msg: Record<string, unknown>;
      try {
        const parsed: unknown = JSON.parse(data.toString());
        if (!isRecordLike(parsed)) throw new Error('not an object');
        msg = parsed;
      } catch {
        ws.close(WS_CLOSE.protocolError, 'invalid JSON');
        return;
      }
      if (msg.type === 'join') {
        if (conn.participant || conn.joining) {
          conn.send({ type: 'join-error', code: 'already-joined', message: 'this socket has already joined' });
          return;
        }
        conn.joining = true;
        void this.joinBot(conn, msg);
        return;
      }
      if (msg.type === 'action') return this.runAction(conn, msg);
      ws.close(WS_CLOSE.protocolError, 'unknown message type');
    });
  }

  /** A `join` message: after the join latency, the token is checked and the bot joins its room. */
  private async joinBot(conn: ClientConn, msg: Record<string, unknown>): Promise<void> {
    const { ws, send } = conn;
    await this.core.timers.sleep(this.core.latencies.values.joinMs);
    if (ws.readyState !== WebSocket.OPEN) return;
    let checked: ReturnType<EmulatorCore['sessions']['checkJoin']>;
    try {
      checked = this.core.sessions.checkJoin(msg.roomUrl, msg.token);
    } catch (err) {
      const code = errorCode(err);
      send({ type: 'join-error', code: code ?? 'error', message: errorMessage(err) });
      ws.close(WS_CLOSE.joinRefused, code ?? 'join refused');
      return;
    }
    const sessionId = randomUUID();
    const userName = typeof msg.userName === 'string' && msg.userName ? msg.userName : (checked.tokenUserName ?? 'guest');
    const p: BotParticipant = {
      kind: 'bot',
      sessionId,
      userName,
      owner: checked.owner,
      room: checked.room,
      joinedAt: Date.now(),
      audio: new Map(),
      send,
      close: (code, reason) => {
        if (conn.participant === p) conn.participant = undefined;
        if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(code, reason);
      },
    };
    conn.participant = p;
    conn.joining = false;
    const others = [...checked.room.participants.values()].map((q) => participantJson(q, sessionId));
    send({ type: 'joined', localSessionId: sessionId, participants: [participantJson(p, sessionId), ...others] });
    this.core.sessions.addBot(p);
    this.core.log.debug({ room: checked.room.name, sessionId, owner: p.owner }, 'emulator: bot joined');
  }

  /** An `action` message: run for the joined bot, answered with an `ack`. */
  private runAction(conn: ClientConn, msg: Record<string, unknown>): void {
    const { ws, send } = conn;
    const id = msg.id;
    if (typeof id !== 'string' && typeof id !== 'number') {
      ws.close(WS_CLOSE.protocolError, 'action without id');
      return;
    }
    const p = conn.participant;
    if (!p) {
      send({ type: 'ack', id, error: 'not joined', code: 'not-joined' });
      return;
    }
    const action = msg.action;
    if (!isActionName(action)) {
      send({ type: 'ack', id, error: `unknown action ${String(msg.action)}`, code: 'unknown-action' });
      return;
    }
    const args = isRecordLike(msg.args) ? msg.args : {};
    this.core.actions.run(p, id, action, args).then(
      (result) => {
        send({ type: 'ack', id, ...(result === undefined ? {} : { result }) });
        if (action === 'leave') {
          if (conn.participant === p) conn.participant = undefined;
          ws.close(WS_CLOSE.normal, 'left');
        }
      },
      (err: unknown) => {
        const e = err instanceof ActionError ? err : new ActionError('error', errorMessage(err));
        send({ type: 'ack', id, error: e.message, code: e.code });
      },
    );
  }

  /** Closes every socket and stops accepting upgrades. */
  async close(): Promise<void> {
    this.server.off('upgrade', this.onUpgrade);
    for (const ws of this.sockets) {
      ws.close(WS_CLOSE.goingAway, 'emulator closing');
    }
    // Give the close handshakes a moment, then cut what is left.
    if (this.sockets.size > 0) {
      await new Promise((r) => setTimeout(r, 50));
      for (const ws of this.sockets) ws.terminate();
    }
    this.sockets.clear();
    this.clientSockets.clear();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}
