/**
 * A local stand-in for Cartesia's text-to-speech WebSocket (`wss://…/tts/websocket`), for tests
 * and benchmarks, driven by the official `@cartesia/cartesia-js` client pointed at it by `baseURL`.
 * It speaks the documented protocol (docs/voice.md cites the pages and SDK files):
 *
 *  - TLS only (the SDK turns any base URL into `wss://`): a self-signed certificate, whose file is
 *    `caFile` (NODE_EXTRA_CA_CERTS for workers, `ca` for a client in the test's process).
 *  - The upgrade needs a key (`X-API-Key`, `Authorization: Bearer`, or `?api_key=`) and a version
 *    (`Cartesia-Version` header or `?cartesia_version=`): 401 / 400 otherwise; 429 on request.
 *  - Generation requests: `model_id`, `transcript`, `voice` (`{mode:'id', id}` or an id),
 *    `output_format {container:'raw', encoding, sample_rate}`, `context_id`, `continue`,
 *    `add_timestamps`, `flush`; `{cancel: true, context_id}` cancels.
 *  - Context rules: every input of a context keeps all fields but `transcript`, `continue` and
 *    `duration` the same; after `continue: false` the context takes no more input; it expires once
 *    its audio is out. A broken rule is an `error` event for that context.
 *  - Out: `timestamps` (`word_timestamps {words, start, end}` in seconds from the context's first
 *    audio), `chunk` (`data` base64 PCM, `done: false`, `step_time`), `flush_done`, `done`, `error`.
 *
 * The audio is real speech (espeak-ng resampled to the asked rate), first chunk after
 * `firstChunkMs`. Faults: `fault = { kind: 'reject', status: 429 }` refuses the next upgrades,
 * `{ kind: 'drop', afterChunks }` cuts the connection after that many chunks, `{ kind: 'silent' }`
 * takes input and never answers (a stalled vendor).
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { errorMessage } from '../core/errors.js';
import { pcmBytes, sleep, speechFor, type TtsPace } from './tts-standin-audio.js';
import { selfSignedTls, type TlsFiles } from './tls.js';

const RATES = [8000, 16000, 22050, 24000, 44100, 48000];
const ENCODINGS = ['pcm_s16le', 'pcm_f32le'];

export interface CartesiaStandInOptions extends TtsPace {
  /** The one key it accepts (default `cartesia-test-key`). */
  apiKey?: string;
}

export type CartesiaFault = { kind: 'reject'; status: number } | { kind: 'drop'; afterChunks: number } | { kind: 'silent' };

/** One generation request as it arrived. */
export interface CartesiaInput {
  context_id: string;
  transcript: string;
  continue: boolean;
  body: Record<string, unknown>;
}

export interface CartesiaStandIn {
  /** For CARTESIA_BASE_URL / the SDK's `baseURL` (`https://127.0.0.1:port`). */
  baseUrl: string;
  apiKey: string;
  /** The certificate (PEM) and its file, for NODE_EXTRA_CA_CERTS. */
  ca: string;
  caFile: string;
  inputs: CartesiaInput[];
  /** Contexts cancelled by the client. */
  cancelled: string[];
  /** Upgrades: accepted and refused (with the status). */
  upgrades: Array<{ status: number; headers: Record<string, unknown>; url: string }>;
  fault: CartesiaFault | undefined;
  close(): Promise<void>;
}

interface Ctx {
  id: string;
  fixed: string;
  pending: Array<string | { flush: true }>;
  inputClosed: boolean;
  cancelled: boolean;
  expired: boolean;
  running: boolean;
  audioMs: number;
  flushId: number;
}

type Send = (msg: Record<string, unknown>) => void;

/** Checks a generation request; the refusal's message, or undefined when it is good. */
function invalid(m: Record<string, unknown>): string | undefined {
  if (typeof m.context_id !== 'string' || m.context_id === '') return 'context_id is required';
  if (typeof m.model_id !== 'string' || m.model_id === '') return 'model_id is required';
  if (typeof m.transcript !== 'string') return 'transcript is required';
  const v = m.voice;
  const voiceOk =
    (typeof v === 'string' && v !== '') || (typeof v === 'object' && v !== null && typeof (v as { id?: unknown }).id === 'string');
  if (!voiceOk) return 'voice must be a voice id or {mode: "id", id}';
  const f = m.output_format as { container?: unknown; encoding?: unknown; sample_rate?: unknown } | undefined;
  if (!f || f.container !== 'raw') return 'output_format.container must be "raw" on the WebSocket';
  if (!ENCODINGS.includes(String(f.encoding))) return `unsupported output_format.encoding: ${String(f.encoding)}`;
  if (!RATES.includes(Number(f.sample_rate))) return `unsupported output_format.sample_rate: ${String(f.sample_rate)}`;
  return undefined;
}

/** Every field but those that may change between a context's inputs. */
function fixedFields(m: Record<string, unknown>): string {
  const { transcript: _t, continue: _c, duration: _d, flush: _f, ...rest } = m;
  return canonical(rest);
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (typeof v !== 'object' || v === null) return JSON.stringify(v);
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
    .join(',')}}`;
}

function encode(pcm: Int16Array, encoding: string): string {
  if (encoding === 'pcm_s16le') return pcmBytes(pcm).toString('base64');
  const b = Buffer.alloc(pcm.length * 4);
  for (let i = 0; i < pcm.length; i++) b.writeFloatLE(pcm[i]! / 32768, i * 4);
  return b.toString('base64');
}

export async function startCartesiaStandIn(opts: CartesiaStandInOptions = {}): Promise<CartesiaStandIn> {
  const tls: TlsFiles = selfSignedTls();
  const apiKey = opts.apiKey ?? 'cartesia-test-key';
  const pace = { first: opts.firstChunkMs ?? 150, chunk: opts.chunkMs ?? 100, gap: opts.chunkGapMs ?? (opts.chunkMs ?? 100) / 4 };
  const wss = new WebSocketServer({ noServer: true });
  const server: Server = createServer({ cert: tls.cert, key: tls.key });
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const state: CartesiaStandIn = {
    baseUrl: '',
    apiKey,
    ca: tls.cert,
    caFile: tls.caFile,
    inputs: [],
    cancelled: [],
    upgrades: [],
    fault: undefined,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      tls.remove();
    },
  };
  server.on('request', (_req, res) => {
    res.statusCode = 404;
    res.end('{"error":"not found"}');
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const status = upgradeStatus(req, apiKey, state.fault);
    state.upgrades.push({ status, headers: { ...req.headers }, url: req.url ?? '' });
    if (status !== 101) {
      const body = JSON.stringify({ error: status === 401 ? 'Invalid API key' : status === 429 ? 'Too many requests' : 'Bad request' });
      socket.end(
        `HTTP/1.1 ${status} Refused\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
      );
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => serve(ws, state, pace));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.baseUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}

function upgradeStatus(req: IncomingMessage, apiKey: string, fault: CartesiaFault | undefined): number {
  const url = new URL(req.url ?? '/', 'https://x');
  if (url.pathname !== '/tts/websocket') return 404;
  if (fault?.kind === 'reject') return fault.status;
  const auth = String(req.headers.authorization ?? '');
  const key =
    (typeof req.headers['x-api-key'] === 'string' ? req.headers['x-api-key'] : undefined) ??
    (auth.startsWith('Bearer ') ? auth.slice(7) : undefined) ??
    url.searchParams.get('api_key') ??
    url.searchParams.get('access_token');
  if (key !== apiKey) return 401;
  if (!req.headers['cartesia-version'] && !url.searchParams.get('cartesia_version')) return 400;
  return 101;
}

/** One client connection: its contexts, generated one input after another. */
function serve(ws: WebSocket, state: CartesiaStandIn, pace: { first: number; chunk: number; gap: number }): void {
  const contexts = new Map<string, Ctx>();
  let chunksSent = 0;
  const send: Send = (msg) => {
    if (ws.readyState !== ws.OPEN) return;
    if (msg.type === 'chunk') {
      const f = state.fault;
      if (f?.kind === 'drop' && chunksSent >= f.afterChunks) {
        ws.terminate();
        return;
      }
      chunksSent++;
    }
    ws.send(JSON.stringify(msg));
  };
  const fail = (contextId: unknown, message: string) =>
    send({
      type: 'error',
      ...(typeof contextId === 'string' ? { context_id: contextId } : {}),
      status_code: 400,
      title: 'Invalid request',
      message,
      done: true,
    });
  ws.on('message', (raw: Buffer) => {
    let m: Record<string, unknown>;
    try {
      m = JSON.parse(raw.toString()) as Record<string, unknown>;
    } catch (err) {
      return fail(undefined, `invalid JSON: ${errorMessage(err)}`);
    }
    if (m.cancel === true && typeof m.context_id === 'string') {
      const c = contexts.get(m.context_id);
      if (c) c.cancelled = true;
      state.cancelled.push(m.context_id);
      return;
    }
    const bad = invalid(m);
    if (bad) return fail(m.context_id, bad);
    const id = String(m.context_id);
    let c = contexts.get(id);
    if (c && (c.expired || c.inputClosed)) return fail(id, `context ${id} has finished; it takes no more input`);
    if (c && c.fixed !== fixedFields(m)) return fail(id, 'inputs of a context must keep every field but transcript and continue the same');
    if (!c) {
      c = {
        id,
        fixed: fixedFields(m),
        pending: [],
        inputClosed: false,
        cancelled: false,
        expired: false,
        running: false,
        audioMs: 0,
        flushId: 0,
      };
      contexts.set(id, c);
    }
    state.inputs.push({ context_id: id, transcript: String(m.transcript), continue: m.continue === true, body: m });
    if (String(m.transcript) !== '') c.pending.push(String(m.transcript));
    if (m.flush === true) c.pending.push({ flush: true });
    if (m.continue !== true) c.inputClosed = true;
    if (!c.running && state.fault?.kind !== 'silent') void generate(c, m, send, pace);
  });
}

/** Generates a context's pending inputs in order; `done` once its input is closed and all is out. */
async function generate(
  c: Ctx,
  m: Record<string, unknown>,
  send: Send,
  pace: { first: number; chunk: number; gap: number },
): Promise<void> {
  c.running = true;
  const format = m.output_format as { encoding: string; sample_rate: number };
  const rate = Number(format.sample_rate);
  while (c.pending.length > 0 && !c.cancelled) {
    const next = c.pending.shift()!;
    if (typeof next !== 'string') {
      c.flushId++;
      send({ type: 'flush_done', context_id: c.id, flush_id: c.flushId, flush_done: true, done: false, status_code: 200 });
      continue;
    }
    const speech = await speechFor(next, rate);
    if (c.audioMs === 0) await sleep(pace.first);
    if (c.cancelled) break;
    if (m.add_timestamps === true && speech.words.length > 0) {
      const ws = speech.words;
      send({
        type: 'timestamps',
        context_id: c.id,
        status_code: 200,
        done: false,
        word_timestamps: {
          words: ws.map((w) => w.word),
          start: ws.map((w) => (c.audioMs + w.startMs) / 1000),
          end: ws.map((w) => (c.audioMs + w.endMs) / 1000),
        },
      });
    }
    const step = Math.max(1, Math.round((pace.chunk * rate) / 1000));
    for (let off = 0; off < speech.pcm.length && !c.cancelled; off += step) {
      if (off > 0) await sleep(pace.gap);
      send({
        type: 'chunk',
        context_id: c.id,
        status_code: 200,
        done: false,
        step_time: pace.gap,
        data: encode(speech.pcm.subarray(off, off + step), format.encoding),
      });
    }
    c.audioMs += (speech.pcm.length / rate) * 1000;
  }
  c.running = false;
  if (c.inputClosed && !c.cancelled && c.pending.length === 0) {
    c.expired = true;
    send({ type: 'done', context_id: c.id, status_code: 200, done: true });
  }
}
