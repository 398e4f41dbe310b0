/**
 * A local stand-in for OpenAI's Realtime API over WebSocket (GA protocol, `session.type:
 * 'realtime'`), for tests and benchmarks, driven by the official `openai` SDK (`OpenAIRealtimeWS`)
 * pointed at it by `baseURL`. docs/voice.md ("Speech-to-speech") cites the pages and SDK files read.
 *
 *  - TLS only (the SDK turns any base URL into `wss://`): a self-signed certificate (`caFile` for
 *    NODE_EXTRA_CA_CERTS). Path `/v1/realtime?model=…`; a wrong key is answered as OpenAI does, with
 *    an `error` event (`invalid_api_key`) and the socket closed; `fault: { kind: 'reject', status }`
 *    refuses the upgrade (429: a rate limit) with an OpenAI error body.
 *  - `session.created` first; `session.update` must keep `type: 'realtime'`; the audio formats are
 *    `audio/pcm` at 24 000 Hz only (another rate is refused with `invalid_value`, as the API says);
 *    G.711 formats are refused too (this stand-in decodes PCM only: stricter, never easier).
 *  - Server VAD from the audio actually received (energy, speech-energy.ts; `silence_duration_ms`
 *    ends a turn): `input_audio_buffer.speech_started` (cancelling the response in progress, as
 *    `interrupt_response` does), `speech_stopped`, `committed`, then a response (`create_response`).
 *  - Responses: the test's `respond(turn)` script says what to say (real espeak-ng speech at 24 kHz,
 *    first audio after `firstAudioMs`, `chunkMs` chunks every `chunkGapMs`, transcript deltas with
 *    the audio they belong to) and which function to call. `function_call_output` items must name
 *    a call it made; `response.create` while one is active is refused.
 *  - `conversation.item.truncate` must name an assistant audio item and stay within its audio.
 */
import { createServer } from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { errorMessage } from '../core/errors.js';
import { base64ToPcm } from '../voice/s2s.js';
import { EnergySegmenter, type EnergyOptions } from './speech-energy.js';
import { selfSignedTls } from './tls.js';
import { sleep } from './tts-standin-audio.js';
import {
  defaultSession,
  functionCall,
  id,
  RATE,
  speak,
  type Item,
  type RealtimeReply,
  type RealtimeResponse,
  type RealtimeTurn,
  type StreamCtx,
} from './openai-realtime-standin-response.js';
export type { RealtimeReply, RealtimeResponse, RealtimeTurn } from './openai-realtime-standin-response.js';

export interface OpenAiRealtimeStandInOptions extends EnergyOptions {
  apiKey?: string;
  /** From the trigger (speech stopped, response.create) to the first audio delta (default 200 ms). */
  firstAudioMs?: number;
  /** Audio per delta (default 100 ms). */
  chunkMs?: number;
  /** Between deltas (default chunkMs / 2: faster than real time, like the API). */
  chunkGapMs?: number;
  respond?: (turn: RealtimeTurn, conn: RealtimeConnection) => RealtimeReply;
}

export type RealtimeFault = { kind: 'reject'; status: number } | { kind: 'drop'; afterChunks: number };

export interface RealtimeConnection {
  model: string;
  session: Record<string, unknown>;
  /** Client events as received (`input_audio_buffer.append` counted in `audioMs` instead). */
  events: Array<Record<string, unknown>>;
  audioMs: number;
  /** Epoch ms of each `speech_started` sent (the model's VAD heard the caller start). */
  speechStartedAt: number[];
  responses: RealtimeResponse[];
  truncations: Array<{ item_id: string; audio_end_ms: number; itemAudioMs: number }>;
  toolOutputs: Array<{ call_id: string; output: string }>;
  /** Errors sent, by code. */
  errors: string[];
}

export interface OpenAiRealtimeStandIn {
  /** For OPENAI_REALTIME_BASE_URL / the SDK's `baseURL` (`https://127.0.0.1:port/v1`). */
  baseUrl: string;
  apiKey: string;
  ca: string;
  caFile: string;
  connections: RealtimeConnection[];
  upgrades: Array<{ status: number; url: string }>;
  fault: RealtimeFault | undefined;
  close(): Promise<void>;
}

export async function startOpenAiRealtimeStandIn(opts: OpenAiRealtimeStandInOptions = {}): Promise<OpenAiRealtimeStandIn> {
  const tls = selfSignedTls();
  const apiKey = opts.apiKey ?? 'sk-realtime-test';
  const server = createServer({ cert: tls.cert, key: tls.key });
  const wss = new WebSocketServer({ noServer: true });
  const standIn: OpenAiRealtimeStandIn = {
    baseUrl: '',
    apiKey,
    ca: tls.cert,
    caFile: tls.caFile,
    connections: [],
    upgrades: [],
    fault: undefined,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => server.close(() => r()));
      tls.remove();
    },
  };
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'https://x');
    const fault = standIn.fault;
    const status = url.pathname !== '/v1/realtime' ? 404 : fault?.kind === 'reject' ? fault.status : 101;
    standIn.upgrades.push({ status, url: req.url ?? '' });
    if (status !== 101) {
      const code = status === 429 ? 'rate_limit_exceeded' : 'not_found';
      const body = JSON.stringify({
        error: { message: `stand-in: ${code}`, type: code === 'not_found' ? 'invalid_request_error' : 'requests', code },
      });
      socket.end(
        `HTTP/1.1 ${status} Refused\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const ok = req.headers.authorization === `Bearer ${standIn.apiKey}`;
      new Conn(ws, url.searchParams.get('model') ?? '', ok, opts, standIn).start();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  standIn.baseUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  return standIn;
}

class Conn {
  private readonly c: RealtimeConnection;
  private segmenter: EnergySegmenter;
  private readonly items = new Map<string, Item>();
  private active: RealtimeResponse | undefined;
  private lastTrigger: RealtimeTurn = { index: 0, trigger: 'create' };
  private turns = 0;
  private chunksSent = 0;

  constructor(
    private readonly ws: WebSocket,
    model: string,
    private readonly authorized: boolean,
    private readonly opts: OpenAiRealtimeStandInOptions,
    private readonly standIn: OpenAiRealtimeStandIn,
  ) {
    this.c = {
      model,
      session: defaultSession(model),
      events: [],
      audioMs: 0,
      speechStartedAt: [],
      responses: [],
      truncations: [],
      toolOutputs: [],
      errors: [],
    };
    this.segmenter = new EnergySegmenter(RATE, { ...opts, hangoverMs: 500 });
  }

  start(): void {
    if (!this.authorized) {
      this.error('invalid_api_key', 'Incorrect API key provided.', 'invalid_request_error');
      this.ws.close(3000, 'invalid_api_key');
      return;
    }
    if (!this.c.model) {
      this.error('missing_model', "Missing required parameter: 'model'.");
      this.ws.close(3000, 'missing_model');
      return;
    }
    this.standIn.connections.push(this.c);
    this.send({ type: 'session.created', session: this.c.session });
    this.ws.on('message', (data: Buffer, binary: boolean) => {
      try {
        if (binary) return this.error('invalid_event', 'Binary frames are not supported; send JSON events.');
        this.onEvent(JSON.parse(data.toString()) as Record<string, unknown>);
      } catch (err) {
        this.error('invalid_json', `Invalid JSON: ${errorMessage(err)}`);
      }
    });
  }

  private send(ev: Record<string, unknown>): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(JSON.stringify({ event_id: id('event'), ...ev }));
  }

  private error(code: string, message: string, type = 'invalid_request_error', param: string | null = null, eventId: unknown = null): void {
    this.c.errors.push(code);
    this.send({ type: 'error', error: { type, code, message, param, event_id: eventId ?? null } });
  }

  private onEvent(ev: Record<string, unknown>): void {
    const type = String(ev.type);
    if (type !== 'input_audio_buffer.append') this.c.events.push(ev);
    switch (type) {
      case 'session.update':
        return this.sessionUpdate(ev);
      case 'input_audio_buffer.append':
        return this.append(ev);
      case 'conversation.item.create':
        return this.itemCreate(ev);
      case 'response.create':
        return this.responseCreate(ev);
      case 'response.cancel':
        if (this.active) this.active.status = 'cancelled';
        return;
      case 'conversation.item.truncate':
        return this.truncate(ev);
      default:
        return this.error(
          'invalid_value',
          `Invalid value: '${type}'. Supported values are client events.`,
          'invalid_request_error',
          'type',
          ev.event_id,
        );
    }
  }

  private sessionUpdate(ev: Record<string, unknown>): void {
    const s = ev.session as Record<string, unknown> | undefined;
    if (!s || s.type !== 'realtime')
      return this.error(
        'missing_required_parameter',
        "Missing required parameter: 'session.type'.",
        'invalid_request_error',
        'session.type',
        ev.event_id,
      );
    const audio = (s.audio ?? {}) as { input?: Record<string, unknown>; output?: Record<string, unknown> };
    for (const dir of ['input', 'output'] as const) {
      const f = audio[dir]?.format as { type?: unknown; rate?: unknown } | undefined;
      if (!f) continue;
      if (f.type !== 'audio/pcm')
        return this.error(
          'invalid_value',
          `stand-in: session.audio.${dir}.format.type ${String(f.type)} is not decoded here (audio/pcm only)`,
          'invalid_request_error',
          `session.audio.${dir}.format.type`,
          ev.event_id,
        );
      if (f.rate !== undefined && f.rate !== RATE)
        return this.error(
          'invalid_value',
          `Invalid 'session.audio.${dir}.format.rate': only 24000 is supported.`,
          'invalid_request_error',
          `session.audio.${dir}.format.rate`,
          ev.event_id,
        );
    }
    for (const t of (s.tools ?? []) as Array<{ type?: unknown; name?: unknown }>) {
      if (t.type !== 'function' || typeof t.name !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(t.name))
        return this.error(
          'invalid_value',
          'Invalid tool: a function tool needs type "function" and a name.',
          'invalid_request_error',
          'session.tools',
          ev.event_id,
        );
    }
    const cur = this.c.session as { audio: { input: Record<string, unknown>; output: Record<string, unknown> } };
    const input = { ...cur.audio.input, ...(audio.input ?? {}) };
    const output = { ...cur.audio.output, ...(audio.output ?? {}) };
    this.c.session = { ...this.c.session, ...s, audio: { input, output } };
    const td = input.turn_detection as { silence_duration_ms?: number } | null;
    this.segmenter = new EnergySegmenter(RATE, { ...this.opts, hangoverMs: td?.silence_duration_ms ?? 500 });
    this.send({ type: 'session.updated', session: this.c.session });
  }

  private vad(): { create_response?: boolean; interrupt_response?: boolean } | null {
    const s = this.c.session as { audio: { input: { turn_detection?: Record<string, unknown> | null } } };
    return s.audio.input.turn_detection ?? null;
  }

  private append(ev: Record<string, unknown>): void {
    if (typeof ev.audio !== 'string')
      return this.error(
        'missing_required_parameter',
        "Missing required parameter: 'audio'.",
        'invalid_request_error',
        'audio',
        ev.event_id,
      );
    const pcm = base64ToPcm(ev.audio);
    this.c.audioMs += (pcm.length / RATE) * 1000;
    const vad = this.vad();
    if (!vad) return;
    const { ended, started } = this.segmenter.push(pcm);
    if (started) {
      this.c.speechStartedAt.push(Date.now());
      this.send({
        type: 'input_audio_buffer.speech_started',
        audio_start_ms: Math.round(this.segmenter.speechStartMs ?? 0),
        item_id: id('item'),
      });
      if (this.active && vad.interrupt_response !== false) this.active.status = 'cancelled';
    }
    for (const seg of ended) {
      const itemId = id('item');
      this.send({ type: 'input_audio_buffer.speech_stopped', audio_end_ms: Math.round(seg.endMs), item_id: itemId });
      this.send({ type: 'input_audio_buffer.committed', previous_item_id: null, item_id: itemId });
      this.items.set(itemId, { id: itemId, role: 'user', audioMs: seg.endMs - seg.startMs });
      this.send({
        type: 'conversation.item.added',
        previous_item_id: null,
        item: { id: itemId, type: 'message', role: 'user', status: 'completed', content: [{ type: 'input_audio', transcript: null }] },
      });
      const turn: RealtimeTurn = { index: 0, trigger: 'speech', voicedMs: seg.endMs - seg.startMs };
      if (vad.create_response !== false && !this.active) this.startResponse(turn);
    }
  }

  private itemCreate(ev: Record<string, unknown>): void {
    const item = ev.item as
      { type?: string; role?: string; call_id?: string; output?: string; content?: Array<{ type?: string; text?: string }> } | undefined;
    if (item?.type === 'function_call_output') {
      if (!item.call_id || !this.callName.has(item.call_id))
        return this.error(
          'invalid_value',
          `Tool call ${String(item.call_id)} not found in conversation.`,
          'invalid_request_error',
          'item.call_id',
          ev.event_id,
        );
      this.c.toolOutputs.push({ call_id: item.call_id, output: String(item.output ?? '') });
      this.lastTrigger = {
        index: 0,
        trigger: 'tool',
        tool: { name: this.callName.get(item.call_id) ?? '', output: String(item.output ?? '') },
      };
    } else if (item?.type === 'message' && item.role === 'user') {
      const text = (item.content ?? []).map((p) => (p.type === 'input_text' ? (p.text ?? '') : '')).join(' ');
      this.lastTrigger = { index: 0, trigger: 'text', text };
    } else
      return this.error(
        'invalid_value',
        'Invalid item: expected a user message or a function_call_output.',
        'invalid_request_error',
        'item',
        ev.event_id,
      );
    const itemId = id('item');
    this.items.set(itemId, { id: itemId, role: item.type === 'message' ? 'user' : 'tool', audioMs: 0 });
    this.send({ type: 'conversation.item.added', previous_item_id: null, item: { ...item, id: itemId, status: 'completed' } });
  }

  private readonly callName = new Map<string, string>();

  private responseCreate(ev: Record<string, unknown>): void {
    if (this.active)
      return this.error(
        'conversation_already_has_active_response',
        'Conversation already has an active response in progress.',
        'invalid_request_error',
        null,
        ev.event_id,
      );
    const instructions = (ev.response as { instructions?: string } | undefined)?.instructions;
    const turn = this.lastTrigger.trigger === 'create' && instructions ? { ...this.lastTrigger, text: instructions } : this.lastTrigger;
    this.lastTrigger = { index: 0, trigger: 'create' };
    this.startResponse(turn);
  }

  private truncate(ev: Record<string, unknown>): void {
    const item = this.items.get(String(ev.item_id));
    if (!item)
      return this.error(
        'item_not_found',
        `Item with item_id not found: ${String(ev.item_id)}`,
        'invalid_request_error',
        'item_id',
        ev.event_id,
      );
    const end = Number(ev.audio_end_ms);
    if (item.role !== 'assistant' || ev.content_index !== 0)
      return this.error('invalid_value', 'Only assistant audio items can be truncated.', 'invalid_request_error', 'item_id', ev.event_id);
    if (!Number.isInteger(end) || end < 0 || end > Math.ceil(item.audioMs))
      return this.error(
        'invalid_value',
        `Audio content of ${Math.round(item.audioMs)}ms is already shorter than ${String(ev.audio_end_ms)}ms`,
        'invalid_request_error',
        'audio_end_ms',
        ev.event_id,
      );
    this.c.truncations.push({ item_id: item.id, audio_end_ms: end, itemAudioMs: item.audioMs });
    this.send({ type: 'conversation.item.truncated', item_id: item.id, content_index: 0, audio_end_ms: end });
  }

  private startResponse(turn: RealtimeTurn): void {
    const t = { ...turn, index: this.turns++ };
    const reply = this.opts.respond?.(t, this.c) ?? { say: 'Hello, how can I help?' };
    const r: RealtimeResponse = { id: id('resp'), text: '', audioMs: 0, status: 'in_progress', triggeredAt: Date.now() };
    this.active = r;
    this.c.responses.push(r);
    this.send({ type: 'response.created', response: { id: r.id, object: 'realtime.response', status: 'in_progress', output: [] } });
    void this.stream(r, reply).catch((err: unknown) => this.error('server_error', errorMessage(err), 'server_error'));
  }

  private streamCtx(): StreamCtx {
    return {
      send: (ev) => this.send(ev),
      items: this.items,
      calls: this.callName,
      chunkMs: this.opts.chunkMs ?? 100,
      chunkGapMs: this.opts.chunkGapMs ?? (this.opts.chunkMs ?? 100) / 2,
      dropped: () => {
        const f = this.standIn.fault;
        if (f?.kind !== 'drop' || ++this.chunksSent < f.afterChunks) return false;
        this.standIn.fault = undefined;
        this.ws.terminate();
        return true;
      },
    };
  }

  private async stream(r: RealtimeResponse, reply: RealtimeReply): Promise<void> {
    const output: Array<Record<string, unknown>> = [];
    await sleep(this.opts.firstAudioMs ?? 200);
    if (reply.say && r.status === 'in_progress') output.push(await speak(this.streamCtx(), r, reply.say));
    if (reply.call && r.status === 'in_progress') output.push(functionCall(this.streamCtx(), r, reply.call));
    if (r.status === 'in_progress') r.status = 'completed';
    this.active = undefined;
    this.send({ type: 'response.done', response: { id: r.id, object: 'realtime.response', status: r.status, output } });
  }
}
