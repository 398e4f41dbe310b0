/**
 * Local stand-ins of streaming speech-to-text vendors, for tests and benchmarks. Each speaks its
 * vendor's documented wire protocol on 127.0.0.1 and is driven by the vendor's official SDK pointed
 * at it by base URL (docs/voice.md, "Speech-to-text", lists the sources read).
 *
 * Deepgram live streaming (`/v1/listen`; Flux's `/v2/listen` is in stt-standin-flux.ts):
 *  - Upgrade: `Authorization: Token <key>` (what @deepgram/sdk sends from Node) or the `token, <key>`
 *    subprotocol (browsers); a bad key is refused with 401, a bad `encoding` / `sample_rate` /
 *    `channels` with 400, each with Deepgram's `dg-error` and `dg-request-id` headers and a JSON body.
 *  - Binary frames: the audio (only `linear16` is decoded here; Deepgram's other encodings are refused
 *    with 400, which is stricter than Deepgram, never easier). Text frames: `KeepAlive`, `Finalize`,
 *    `CloseStream`.
 *  - Out: `Results` (interim then final, `speech_final` when endpointing is on), `SpeechStarted`
 *    (`vad_events=true`), `UtteranceEnd` (`utterance_end_ms`), `Metadata` at the end.
 *  - No audio nor text message for 10 s: close 1011 with Deepgram's NET-0001 reason.
 *
 * Transcripts follow the audio received: a voiced segment (speech-energy.ts) gets the words the test
 * registered for a clip of the same voiced length, `latencyMs` after the segment ended; silence and
 * unknown speech get an empty transcript.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { EnergySegmenter, PhraseBook, type EnergyOptions, type VoicedSegment } from './speech-energy.js';
import { checkQuery, keyOf, NET_0001, refuse, recordFinal, type DeepgramConnection } from './stt-standin-common.js';
export type { DeepgramConnection, FinalTiming } from './stt-standin-common.js';
import { runFlux } from './stt-standin-flux.js';

export interface DeepgramStandInOptions extends EnergyOptions {
  /** The one key accepted (default `dg_test_key`). */
  apiKey?: string;
  /** From the end of a voiced segment (once heard) to its final `Results` (default 150 ms). */
  latencyMs?: number;
  /** Deepgram's idle limit: no audio nor text message for this long closes with 1011 (default 10 000). */
  idleTimeoutMs?: number;
  /** Drops the first connection (TCP reset, no close frame) once it received this much audio. */
  dropFirstAfterAudioMs?: number;
}

export interface DeepgramStandIn {
  /** For DEEPGRAM_BASE_URL: `http://127.0.0.1:<port>` (plain ws:// for the live socket). */
  baseUrl: string;
  apiKey: string;
  /** The words of a clip: a voiced segment of the same length gets them. */
  register(text: string, pcm: Int16Array, sampleRate: number): void;
  /** Accepted connections, in order. */
  connections: DeepgramConnection[];
  /** Upgrades refused, with their status. */
  refused: number[];
  close(): Promise<void>;
}

export async function startDeepgramStandIn(opts: DeepgramStandInOptions = {}): Promise<DeepgramStandIn> {
  const apiKey = opts.apiKey ?? 'dg_test_key';
  const book = new PhraseBook(opts);
  const connections: DeepgramConnection[] = [];
  const refused: number[] = [];
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (p) => (p.has('token') ? 'token' : p.has('bearer') ? 'bearer' : false),
  });
  const server: Server = createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const flux = url.pathname === '/v2/listen';
    if (url.pathname !== '/v1/listen' && !flux) return void (refused.push(404), refuse(socket, 404, 'NOT_FOUND', 'Not found'));
    const auth = keyOf(req);
    if (!auth || auth.key !== apiKey) return void (refused.push(401), refuse(socket, 401, 'INVALID_AUTH', 'Invalid credentials.'));
    const query = Object.fromEntries(url.searchParams);
    const bad =
      checkQuery(query) ?? (flux && !query.model?.startsWith('flux') ? `Flux needs a flux model (got ${query.model})` : undefined);
    if (bad) return void (refused.push(400), refuse(socket, 400, 'Bad Request', bad));
    wss.handleUpgrade(req, socket, head, (ws) => {
      const conn: DeepgramConnection = {
        path: url.pathname,
        query,
        auth: auth.auth,
        audioMs: 0,
        finals: [],
        segments: [],
        timings: [],
        keepAlives: 0,
      };
      connections.push(conn);
      const drop = connections.length === 1 ? opts.dropFirstAfterAudioMs : undefined;
      if (flux) runFlux(ws, conn, { ...opts, book });
      else runListen(ws, conn, { ...opts, book, drop });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    apiKey,
    register: (text, pcm, rate) => book.register(text, pcm, rate),
    connections,
    refused,
    async close() {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** One live session: audio in, Deepgram's messages out. */
function runListen(
  ws: WebSocket,
  conn: DeepgramConnection,
  o: DeepgramStandInOptions & { book: PhraseBook; drop: number | undefined },
): void {
  const q = conn.query;
  const rate = Number(q.sample_rate);
  const seg = new EnergySegmenter(rate, o);
  const requestId = randomUUID();
  const latencyMs = o.latencyMs ?? 150;
  const idleMs = o.idleTimeoutMs ?? 10_000;
  let out = Promise.resolve();
  let closed = false;
  const send = (m: object) => {
    if (!closed && ws.readyState === ws.OPEN) ws.send(JSON.stringify(m));
  };
  /** Messages leave in order, each after `delayMs` (the vendor's processing time). */
  const later = (delayMs: number, fn: () => void) => {
    out = out.then(() => new Promise<void>((r) => setTimeout(() => (fn(), r()), delayMs)));
  };
  let idle = setTimeout(onIdle, idleMs);
  function onIdle() {
    closeWith(1011, NET_0001);
  }
  function touch() {
    clearTimeout(idle);
    idle = setTimeout(onIdle, idleMs);
  }
  function closeWith(code: number, reason: string) {
    if (closed) return;
    clearTimeout(idle);
    conn.closeCode = code;
    closed = true;
    ws.close(code, reason);
  }
  const results = (s: VoicedSegment, fromFinalize: boolean) => {
    const text = o.book.match(s) ?? '';
    conn.segments.push({ spanMs: s.endMs - s.startMs, text });
    later(latencyMs / 2, () => send(resultsMessage(s, text, false, false, fromFinalize, requestId)));
    later(latencyMs / 2, () => {
      send(resultsMessage(s, text, true, q.endpointing !== 'false', fromFinalize, requestId));
      if (text) recordFinal(conn, text, s);
      if (q.utterance_end_ms && text) send({ type: 'UtteranceEnd', channel: [0, 1], last_word_end: s.endMs / 1000 });
    });
  };
  ws.on('message', (data, isBinary) => {
    touch();
    if (isBinary) {
      const buf = Buffer.isBuffer(data) ? data : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]);
      const pcm = new Int16Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + (buf.byteLength & ~1)));
      conn.audioMs += (pcm.length / rate) * 1000;
      const { ended, started } = seg.push(pcm);
      if (started && q.vad_events === 'true') send({ type: 'SpeechStarted', channel: [0, 1], timestamp: (seg.speechStartMs ?? 0) / 1000 });
      for (const s of ended) results(s, false);
      if (o.drop !== undefined && conn.audioMs >= o.drop) {
        closed = true;
        clearTimeout(idle);
        conn.closeCode = 1006;
        ws.terminate();
      }
      return;
    }
    const type = controlType(String(data));
    if (type === 'KeepAlive') conn.keepAlives++;
    if (type === 'Finalize' || type === 'CloseStream') {
      const s = seg.flush();
      if (s) results(s, true);
    }
    if (type === 'CloseStream') {
      later(0, () => {
        send(metadataMessage(requestId, seg.timeMs));
        closeWith(1000, '');
      });
    }
  });
  ws.on('close', (code) => {
    clearTimeout(idle);
    conn.closeCode ??= code;
    closed = true;
  });
}

function controlType(text: string): string | undefined {
  try {
    const m: unknown = JSON.parse(text);
    return typeof m === 'object' && m !== null && 'type' in m && typeof m.type === 'string' ? m.type : undefined;
  } catch {
    return undefined;
  }
}

function resultsMessage(s: VoicedSegment, text: string, isFinal: boolean, speechFinal: boolean, fromFinalize: boolean, requestId: string) {
  const tokens = text.split(/\s+/).filter(Boolean);
  const span = (s.endMs - s.startMs) / 1000;
  const words = tokens.map((w, i) => ({
    word: w.toLowerCase().replace(/[^\p{L}\p{N}']/gu, ''),
    start: s.startMs / 1000 + (span * i) / tokens.length,
    end: s.startMs / 1000 + (span * (i + 1)) / tokens.length,
    confidence: 0.97,
    punctuated_word: w,
  }));
  return {
    type: 'Results',
    channel_index: [0, 1],
    duration: span,
    start: s.startMs / 1000,
    is_final: isFinal,
    speech_final: speechFinal,
    from_finalize: fromFinalize,
    channel: { alternatives: [{ transcript: text, confidence: text ? 0.97 : 0, words }] },
    metadata: {
      request_id: requestId,
      model_info: { name: 'general-nova-3', version: 'stand-in', arch: 'nova-3' },
      model_uuid: randomUUID(),
    },
  };
}

function metadataMessage(requestId: string, audioMs: number) {
  return {
    type: 'Metadata',
    transaction_key: 'deprecated',
    request_id: requestId,
    sha256: '',
    created: new Date().toISOString(),
    duration: audioMs / 1000,
    channels: 1,
  };
}
