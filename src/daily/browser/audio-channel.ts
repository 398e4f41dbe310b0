/**
 * The binary audio path between the worker and its bot page: a WebSocket on the worker's own
 * static server (127.0.0.1, same origin as the page), opened by the page with a random token.
 * Audio travels as binary frames, never as base64 inside JSON through CDP:
 *
 *   [u16 LE header length][header: UTF-8 JSON][0 or 1 pad byte to an even offset][PCM16 LE mono]
 *
 *   worker → page  binary {t:'play', id, rate, text?} + the clip   text {t:'stop', id}
 *   page → worker  binary {t:'cap', p: sessionId, d?: dropped} + one 20 ms frame of 16 kHz PCM
 *                  text   {t:'accepted', id, durationMs, startInMs} | {t:'played', id} | {t:'failed', id, error}
 *
 * Back-pressure: a clip's promise settles when the page has played it out (the page queues clips
 * back to back on the AudioContext clock, so consecutive clips are sample-contiguous); the page
 * drops capture frames (and counts them) while more than ~2 s of audio is unsent on the socket.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { isRecord } from './events.js';

export interface CapturedFrame {
  participantId: string;
  sampleRate: number;
  pcm: Int16Array;
}

export type PageAudioMessage =
  | { t: 'accepted'; id: number; durationMs: number; startInMs: number }
  | { t: 'played'; id: number }
  | { t: 'failed'; id: number; error: string };

function isPageAudioMessage(m: unknown): m is PageAudioMessage {
  return isRecord(m) && typeof m.id === 'number' && (m.t === 'accepted' || m.t === 'played' || m.t === 'failed');
}

export const CAPTURE_RATE = 16_000;

/** Encodes one binary frame (exported for tests). */
export function encodeFrame(header: Record<string, unknown>, pcm: Int16Array): Buffer {
  const h = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (2 + h.length) % 2;
  const out = Buffer.allocUnsafe(2 + h.length + pad + pcm.byteLength);
  out.writeUInt16LE(h.length, 0);
  h.copy(out, 2);
  if (pad) out[2 + h.length] = 0;
  Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength).copy(out, 2 + h.length + pad);
  return out;
}

/** Decodes one binary frame; the PCM is copied into an aligned Int16Array. */
export function decodeFrame(buf: Buffer): { header: Record<string, unknown>; pcm: Int16Array } | undefined {
  if (buf.length < 2) return undefined;
  const len = buf.readUInt16LE(0);
  if (2 + len > buf.length) return undefined;
  let header: unknown;
  try {
    header = JSON.parse(buf.toString('utf8', 2, 2 + len));
  } catch {
    return undefined;
  }
  if (!isRecord(header)) return undefined;
  const off = 2 + len + ((2 + len) % 2);
  const bytes = Math.max(0, buf.length - off) & ~1;
  const pcm = new Int16Array(bytes >> 1);
  new Uint8Array(pcm.buffer).set(buf.subarray(off, off + bytes));
  return { header, pcm };
}

export class AudioChannel {
  readonly token = randomBytes(18).toString('base64url');
  readonly path = '/audio';
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 1 << 20 });
  private socket: WebSocket | undefined;
  private opened: Promise<void>;
  private resolveOpened!: () => void;
  /** Capture frames the page dropped because the socket was backed up. */
  droppedFrames = 0;
  framesIn = 0;

  constructor(
    private readonly log: Logger,
    private readonly onFrame: (f: CapturedFrame) => void,
    private readonly onMessage: (m: PageAudioMessage) => void,
    /** The page's socket closed (the page or its browser is gone, or we closed it). */
    private readonly onClose: () => void = () => undefined,
  ) {
    this.opened = new Promise((r) => (this.resolveOpened = r));
  }

  /** Hook for the static server's `upgrade` event: accepts exactly one socket bearing our token. */
  handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const given = Buffer.from(url.searchParams.get('token') ?? '');
    const want = Buffer.from(this.token);
    const ok = url.pathname === this.path && given.length === want.length && timingSafeEqual(given, want) && !this.socket;
    if (!ok) {
      this.log.warn({ path: url.pathname }, 'audio socket refused (bad path or token, or already connected)');
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.attach(ws));
  };

  /** Resolves once the page is connected. */
  ready(): Promise<void> {
    return this.opened;
  }

  get connected(): boolean {
    return this.socket?.readyState === 1;
  }

  /** The page had connected and the socket is gone since. */
  get dropped(): boolean {
    return this.socket !== undefined && this.socket.readyState !== 1;
  }

  play(id: number, pcm: Int16Array, sampleRate: number, text: string | undefined): boolean {
    return this.sendBinary(encodeFrame({ t: 'play', id, rate: sampleRate, ...(text !== undefined ? { text } : {}) }, pcm));
  }

  stop(id: number): void {
    if (this.connected) this.socket!.send(JSON.stringify({ t: 'stop', id }));
  }

  close(): void {
    this.socket?.terminate();
    this.wss.close();
  }

  private sendBinary(b: Buffer): boolean {
    if (!this.connected) return false;
    this.socket!.send(b, { binary: true });
    return true;
  }

  private attach(ws: WebSocket): void {
    this.socket = ws;
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data, isBinary) => {
      // binaryType 'nodebuffer': one Buffer (the other shapes of RawData are for other binary types).
      const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      if (!isBinary) {
        try {
          const m: unknown = JSON.parse(buf.toString('utf8'));
          if (isPageAudioMessage(m)) this.onMessage(m);
        } catch {
          // not ours
        }
        return;
      }
      const f = decodeFrame(buf);
      if (!f || f.header.t !== 'cap' || typeof f.header.p !== 'string') return;
      this.framesIn++;
      const dropped = typeof f.header.d === 'number' ? f.header.d : 0;
      if (dropped > this.droppedFrames) {
        this.log.warn({ dropped: dropped - this.droppedFrames }, 'page dropped capture frames (audio socket backed up)');
        this.droppedFrames = dropped;
      }
      this.onFrame({ participantId: f.header.p, sampleRate: typeof f.header.r === 'number' ? f.header.r : CAPTURE_RATE, pcm: f.pcm });
    });
    ws.on('error', (err) => this.log.debug({ err: err.message }, 'audio socket error'));
    ws.on('close', () => this.onClose());
    this.resolveOpened();
  }
}
