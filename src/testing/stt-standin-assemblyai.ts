/**
 * A stand-in of AssemblyAI's Universal Streaming API (v3, `wss://…/v3/ws`), for tests.
 *
 * The official `assemblyai` SDK refuses any URL but wss:// ("Invalid protocol, must be wss"), so
 * this serves TLS with a self-signed certificate made by openssl for 127.0.0.1; a process that
 * talks to it trusts it through NODE_EXTRA_CA_CERTS=`certPath` (read when Node starts).
 *
 *  - Handshake: `Authorization: <key>` (the raw key, what the SDK sends) or `?token=`; a bad key
 *    is accepted then closed with 4001 "Not Authorized" (the SDK maps that close code, before
 *    `Begin`, to a non-retryable error); a `sample_rate` that is not a positive integer: 4000.
 *  - `Begin` first; then binary PCM16 (`encoding=pcm_s16le`, the default; anything else closes
 *    3006), each message 50–1000 ms of audio or the session closes with 3007 "Audio chunk duration
 *    violation".
 *  - A voiced segment (speech-energy.ts) gives `SpeechStarted`, a partial `Turn`
 *    (`end_of_turn: false`) and, `latencyMs` after the segment ended, the final `Turn`
 *    (`end_of_turn: true`, `turn_is_formatted` when `format_turns=true`) with the words registered
 *    for audio of that voiced length; silence gives none.
 *  - `ForceEndpoint` ends the turn in progress; `Terminate` ends it, sends `Termination` and closes
 *    1000; `inactivity_timeout=<s>` closes 3005 after that long without audio (`KeepAlive` resets it).
 */
import { selfSignedTls } from './tls.js';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { EnergySegmenter, PhraseBook, type EnergyOptions, type VoicedSegment } from './speech-energy.js';
import { recordFinal, type DeepgramConnection as StreamConnection } from './stt-standin-common.js';

export interface AssemblyAiStandInOptions extends EnergyOptions {
  apiKey?: string;
  /** From the end of a voiced segment (once heard) to its final `Turn` (default 150 ms). */
  latencyMs?: number;
}

export interface AssemblyAiStandIn {
  /** For ASSEMBLYAI_BASE_URL: `wss://127.0.0.1:<port>`. */
  baseUrl: string;
  /** The SDK's `websocketBaseUrl`: `<baseUrl>/v3/ws`. */
  url: string;
  apiKey: string;
  /** The self-signed certificate to trust (NODE_EXTRA_CA_CERTS). */
  certPath: string;
  register(text: string, pcm: Int16Array, sampleRate: number): void;
  connections: StreamConnection[];
  close(): Promise<void>;
}

export async function startAssemblyAiStandIn(opts: AssemblyAiStandInOptions = {}): Promise<AssemblyAiStandIn> {
  const apiKey = opts.apiKey ?? 'aai_test_key';
  const book = new PhraseBook(opts);
  const connections: StreamConnection[] = [];
  const tls = selfSignedTls();
  const server: Server = createServer({ key: tls.key, cert: tls.cert }, (_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ server, path: '/v3/ws' });
  wss.on('connection', (ws, req) => {
    const url = new URL(req.url ?? '/', 'https://x');
    const query = Object.fromEntries(url.searchParams);
    const key = req.headers.authorization ?? query.token;
    const conn: StreamConnection = {
      path: url.pathname,
      query,
      auth: req.headers.authorization ? 'header' : 'subprotocol',
      audioMs: 0,
      finals: [],
      segments: [],
      timings: [],
      keepAlives: 0,
    };
    connections.push(conn);
    if (key !== apiKey) return closeWith(ws, conn, 4001, 'Not Authorized');
    const rate = Number(query.sample_rate);
    if (!Number.isInteger(rate) || rate <= 0) return closeWith(ws, conn, 4000, 'Sample rate must be a positive integer');
    if (query.encoding !== undefined && query.encoding !== 'pcm_s16le')
      return closeWith(ws, conn, 3006, `Unsupported encoding ${query.encoding}`);
    runSession(ws, conn, rate, { ...opts, book });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `wss://127.0.0.1:${port}`,
    url: `wss://127.0.0.1:${port}/v3/ws`,
    apiKey,
    certPath: tls.caFile,
    register: (text, pcm, rate) => book.register(text, pcm, rate),
    connections,
    async close() {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => server.close(() => r()));
      tls.remove();
    },
  };
}

function closeWith(ws: WebSocket, conn: StreamConnection, code: number, reason: string): void {
  conn.closeCode = code;
  ws.close(code, reason);
}

function runSession(ws: WebSocket, conn: StreamConnection, rate: number, o: AssemblyAiStandInOptions & { book: PhraseBook }): void {
  const q = conn.query;
  const seg = new EnergySegmenter(rate, o);
  const latencyMs = o.latencyMs ?? 150;
  const started = Date.now();
  let turnOrder = 0;
  let out = Promise.resolve();
  let closed = false;
  const send = (m: object) => {
    if (!closed && ws.readyState === ws.OPEN) ws.send(JSON.stringify(m));
  };
  const later = (delayMs: number, fn: () => void) => {
    out = out.then(() => new Promise<void>((r) => setTimeout(() => (fn(), r()), delayMs)));
  };
  const inactivityMs = q.inactivity_timeout ? Number(q.inactivity_timeout) * 1000 : undefined;
  let idle: NodeJS.Timeout | undefined;
  const touch = () => {
    clearTimeout(idle);
    if (inactivityMs) idle = setTimeout(() => end(3005, 'Session idle for too long'), inactivityMs);
  };
  const end = (code: number, reason: string) => {
    if (closed) return;
    clearTimeout(idle);
    closeWith(ws, conn, code, reason);
    closed = true;
  };
  const turn = (s: VoicedSegment, text: string, final: boolean) => send(turnMessage(s, text, final, turnOrder, q.format_turns === 'true'));
  const endTurn = (s: VoicedSegment) => {
    const text = o.book.match(s);
    conn.segments.push({ spanMs: s.endMs - s.startMs, text: text ?? '' });
    if (!text) return;
    later(latencyMs / 2, () => turn(s, text, false));
    later(latencyMs / 2, () => {
      turn(s, text, true);
      recordFinal(conn, text, s);
      turnOrder++;
    });
  };
  send({ type: 'Begin', id: randomUUID(), expires_at: Math.floor(Date.now() / 1000) + 3_600 });
  touch();
  ws.on('message', (data, isBinary) => {
    if (closed) return;
    if (isBinary) {
      const buf = Buffer.isBuffer(data) ? data : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]);
      const ms = (buf.byteLength / 2 / rate) * 1000;
      if (ms < 50 || ms > 1000) return end(3007, 'Audio chunk duration violation');
      touch();
      conn.audioMs += ms;
      const { ended, started: began } = seg.push(new Int16Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + (buf.byteLength & ~1))));
      if (began) send({ type: 'SpeechStarted', timestamp: seg.speechStartMs ?? 0 });
      for (const s of ended) endTurn(s);
      return;
    }
    const type = controlType(String(data));
    if (type === 'KeepAlive') {
      conn.keepAlives++;
      touch();
    }
    if (type === 'ForceEndpoint' || type === 'Terminate') {
      const s = seg.flush();
      if (s) endTurn(s);
    }
    if (type === 'Terminate') {
      later(0, () => {
        send({ type: 'Termination', audio_duration_seconds: conn.audioMs / 1000, session_duration_seconds: (Date.now() - started) / 1000 });
        end(1000, '');
      });
    }
  });
  ws.on('close', (code) => {
    clearTimeout(idle);
    conn.closeCode ??= code;
    closed = true;
  });
}

/** A v3 `Turn` for a voiced segment: the words spread evenly over it (ms). */
function turnMessage(s: VoicedSegment, text: string, final: boolean, turnOrder: number, formatTurns: boolean) {
  const tokens = text.split(/\s+/).filter(Boolean);
  const span = s.endMs - s.startMs;
  return {
    type: 'Turn',
    turn_order: turnOrder,
    turn_is_formatted: final && formatTurns,
    end_of_turn: final,
    transcript: text,
    end_of_turn_confidence: final ? 0.9 : 0.1,
    words: tokens.map((w, i) => ({
      start: Math.round(s.startMs + (span * i) / tokens.length),
      end: Math.round(s.startMs + (span * (i + 1)) / tokens.length),
      text: w,
      confidence: 0.97,
      word_is_final: final,
    })),
  };
}

function controlType(text: string): string | undefined {
  try {
    const m: unknown = JSON.parse(text);
    return typeof m === 'object' && m !== null && 'type' in m && typeof m.type === 'string' ? m.type : undefined;
  } catch {
    return undefined;
  }
}
