/**
 * A local stand-in for ElevenLabs' multi-context TTS WebSocket
 * (`/v1/text-to-speech/{voice_id}/multi-stream-input`), for tests and benchmarks. It speaks the
 * documented protocol (docs/voice.md cites the pages and the SDK's message schemas):
 *
 *  - The key in the `xi-api-key` header (a wrong one: 401 at the upgrade), or in the first
 *    message's `xi_api_key` (missing or wrong: an `invalid_api_key` error, then close 1008).
 *  - Query: `model_id`, `output_format` (`pcm_<rate>`; anything else: an error and close 1008),
 *    `inactivity_timeout` (seconds, 20 unless given, at most 180): no message for that long →
 *    `input_timeout_exceeded`, close 1008.
 *  - Messages: `{text: ' ', context_id}` opens a context; `{text, context_id, flush}` adds text
 *    (generated on `flush` or when the context closes); `{text: '', context_id}` keeps it alive;
 *    `{context_id, close_context: true}` closes it after its audio; `{close_socket: true}`. At most
 *    5 contexts at once (`max_active_conversations`, close 1008).
 *  - Out: `{audio (base64 PCM), contextId, alignment, normalizedAlignment}` with the characters'
 *    times relative to each chunk, then `{isFinal: true, contextId}`.
 *
 * Real speech (espeak-ng resampled), first audio of a context after `firstChunkMs`. Faults:
 * `fault = { kind: 'reject', status: 429 }`, `{ kind: 'drop', afterChunks }`, `{ kind: 'silent' }`
 * (takes text, never answers).
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { pcmBytes, sleep, speechFor, type TtsPace } from './tts-standin-audio.js';
import type { TtsWord } from '../voice/tts-stream.js';

const RATES = [8000, 16000, 22050, 24000, 44100, 48000];
const MAX_CONTEXTS = 5;

export interface ElevenLabsStandInOptions extends TtsPace {
  apiKey?: string;
}

export type ElevenLabsFault = { kind: 'reject'; status: number } | { kind: 'drop'; afterChunks: number } | { kind: 'silent' };

export interface ElevenLabsStandIn {
  /** For ELEVENLABS_BASE_URL (`http://127.0.0.1:port`; clients use `ws://`). */
  baseUrl: string;
  apiKey: string;
  /** Every client message, as sent (wire names). */
  messages: Array<Record<string, unknown>>;
  /** Upgrades with their URL and status. */
  upgrades: Array<{ status: number; url: string }>;
  /** Why the stand-in closed a socket (code and reason). */
  closes: Array<{ code: number; reason: string }>;
  fault: ElevenLabsFault | undefined;
  close(): Promise<void>;
}

interface Ctx {
  id: string;
  buffer: string;
  queue: string[];
  closing: boolean;
  running: boolean;
  started: boolean;
}

interface Conn {
  ws: WebSocket;
  rate: number;
  authed: boolean;
  contexts: Map<string, Ctx>;
  chunks: number;
  timer: NodeJS.Timeout | undefined;
  timeoutS: number;
}

export async function startElevenLabsStandIn(opts: ElevenLabsStandInOptions = {}): Promise<ElevenLabsStandIn> {
  const apiKey = opts.apiKey ?? 'xi-test-key';
  const pace = { first: opts.firstChunkMs ?? 150, chunk: opts.chunkMs ?? 100, gap: opts.chunkGapMs ?? (opts.chunkMs ?? 100) / 4 };
  const wss = new WebSocketServer({ noServer: true });
  const server: Server = createServer((_req, res) => {
    res.statusCode = 404;
    res.end('{"detail":"not found"}');
  });
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const state: ElevenLabsStandIn = {
    baseUrl: '',
    apiKey,
    messages: [],
    upgrades: [],
    closes: [],
    fault: undefined,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const key = req.headers['xi-api-key'];
    let status = 101;
    if (!/^\/v1\/text-to-speech\/[^/]+\/multi-stream-input$/.test(url.pathname)) status = 404;
    else if (state.fault?.kind === 'reject') status = state.fault.status;
    else if (key !== undefined && key !== apiKey) status = 401;
    state.upgrades.push({ status, url: req.url ?? '' });
    if (status !== 101) {
      const body = JSON.stringify({
        detail: { status: status === 401 ? 'invalid_api_key' : status === 429 ? 'too_many_concurrent_requests' : 'not_found' },
      });
      socket.end(
        `HTTP/1.1 ${status} Refused\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
      );
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => serve(ws, url, key === apiKey, state, pace));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}

type Pace = { first: number; chunk: number; gap: number };

function serve(ws: WebSocket, url: URL, authed: boolean, state: ElevenLabsStandIn, pace: Pace): void {
  const format = url.searchParams.get('output_format') ?? 'mp3_44100_128';
  const timeout = Number(url.searchParams.get('inactivity_timeout') ?? 20);
  const conn: Conn = { ws, rate: Number(format.slice(4)), authed, contexts: new Map(), chunks: 0, timer: undefined, timeoutS: timeout };
  const refuse = (error: string, message: string) => {
    if (ws.readyState !== ws.OPEN) return;
    ws.send(JSON.stringify({ message, error, code: 1008 }));
    state.closes.push({ code: 1008, reason: error });
    clearTimeout(conn.timer);
    ws.close(1008, error);
  };
  if (!/^pcm_\d+$/.test(format) || !RATES.includes(conn.rate))
    return refuse('invalid_output_format', `output_format ${format} is not served here (PCM at 8000–48000 Hz)`);
  if (!Number.isInteger(timeout) || timeout < 1 || timeout > 180)
    return refuse('invalid_request', 'inactivity_timeout must be 1 to 180 seconds');
  const idle = () => {
    clearTimeout(conn.timer);
    conn.timer = setTimeout(
      () =>
        refuse(
          'input_timeout_exceeded',
          `Have not received a new text input within the timeout of ${timeout} seconds. Streaming input terminated.`,
        ),
      timeout * 1000,
    );
  };
  idle();
  ws.on('close', () => clearTimeout(conn.timer));
  ws.on('message', (raw: Buffer) => {
    let m: Record<string, unknown>;
    try {
      m = JSON.parse(raw.toString()) as Record<string, unknown>;
    } catch {
      return refuse('invalid_message', 'messages must be JSON');
    }
    state.messages.push(m);
    idle();
    if (!conn.authed) {
      if (m.xi_api_key !== state.apiKey) return refuse('invalid_api_key', 'Invalid API key');
      conn.authed = true;
    }
    onMessage(conn, m, state, pace, refuse);
  });
}

function onMessage(
  conn: Conn,
  m: Record<string, unknown>,
  state: ElevenLabsStandIn,
  pace: Pace,
  refuse: (e: string, msg: string) => void,
): void {
  if (m.close_socket === true) {
    for (const c of conn.contexts.values()) c.closing = true;
    for (const c of conn.contexts.values()) if (!c.running) void generate(conn, c, state, pace);
    return;
  }
  const id = typeof m.context_id === 'string' ? m.context_id : 'default';
  let c = conn.contexts.get(id);
  if (!c) {
    if (m.close_context === true) return;
    if (conn.contexts.size >= MAX_CONTEXTS)
      return refuse('max_active_conversations', `Maximum simultaneous contexts per WebSocket connection exceeded (${MAX_CONTEXTS}).`);
    c = { id, buffer: '', queue: [], closing: false, running: false, started: false };
    conn.contexts.set(id, c);
  }
  if (typeof m.text === 'string') c.buffer += m.text === ' ' && c.buffer === '' ? '' : m.text;
  if (m.flush === true || m.close_context === true) {
    if (c.buffer.trim()) c.queue.push(c.buffer);
    c.buffer = '';
  }
  if (m.close_context === true) c.closing = true;
  if (!c.running && state.fault?.kind !== 'silent') void generate(conn, c, state, pace);
}

/** The characters of the words that start in [fromMs, toMs), with times relative to fromMs. */
function alignment(words: TtsWord[], fromMs: number, toMs: number) {
  const chars: string[] = [];
  const charStartTimesMs: number[] = [];
  const charDurationsMs: number[] = [];
  for (const w of words) {
    if (w.startMs < fromMs || w.startMs >= toMs) continue;
    const per = (w.endMs - w.startMs) / w.word.length;
    [...w.word].forEach((ch, i) => {
      chars.push(ch);
      charStartTimesMs.push(Math.round(w.startMs - fromMs + i * per));
      charDurationsMs.push(Math.round(per));
    });
    chars.push(' ');
    charStartTimesMs.push(Math.round(w.endMs - fromMs));
    charDurationsMs.push(0);
  }
  return { chars, charStartTimesMs, charDurationsMs };
}

async function generate(conn: Conn, c: Ctx, state: ElevenLabsStandIn, pace: Pace): Promise<void> {
  c.running = true;
  const { ws, rate } = conn;
  const live = () => ws.readyState === ws.OPEN && conn.contexts.get(c.id) === c;
  while (c.queue.length > 0 && live()) {
    const speech = await speechFor(c.queue.shift()!, rate);
    if (!c.started) await sleep(pace.first);
    c.started = true;
    const step = Math.max(1, Math.round((pace.chunk * rate) / 1000));
    for (let off = 0; off < speech.pcm.length && live(); off += step) {
      if (off > 0) await sleep(pace.gap);
      const f = state.fault;
      if (f?.kind === 'drop' && conn.chunks >= f.afterChunks) return void ws.terminate();
      conn.chunks++;
      const pcm = speech.pcm.subarray(off, off + step);
      const a = alignment(speech.words, (off / rate) * 1000, ((off + step) / rate) * 1000);
      ws.send(JSON.stringify({ audio: pcmBytes(pcm).toString('base64'), contextId: c.id, alignment: a, normalizedAlignment: a }));
    }
  }
  c.running = false;
  if (c.closing && c.queue.length === 0 && live()) {
    conn.contexts.delete(c.id);
    ws.send(JSON.stringify({ isFinal: true, contextId: c.id }));
    if (conn.contexts.size === 0 && state.messages.at(-1)?.close_socket === true) ws.close(1000);
  }
}
