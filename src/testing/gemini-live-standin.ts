/**
 * A local stand-in for Gemini Live (the Gemini API's `BidiGenerateContent` WebSocket), for tests
 * and benchmarks, driven by the official `@google/genai` SDK (`ai.live.connect`) pointed at it by
 * `httpOptions.baseUrl` (an `http://` base means plain `ws://` in the SDK). docs/voice.md ("Gemini
 * Live") cites the pages and SDK files read.
 *
 *  - Path `/ws/google.ai.generativelanguage.<version>.GenerativeService.BidiGenerateContent`, the key
 *    in `?key=` (what the SDK sends) or `x-goog-api-key`. A wrong key: the socket is accepted then
 *    closed with 1007 and a reason naming the key, as users report of the API; `fault: { kind:
 *    'reject', status }` refuses the upgrade; `{ kind: 'drop', afterChunks }` cuts it mid-answer.
 *  - The first message must be `setup` with a `models/…` model and `responseModalities: ['AUDIO']`
 *    (what native-audio models take), else close 1007 "Request contains an invalid argument.";
 *    then `setupComplete`.
 *  - `realtimeInput.audio` must be `audio/pcm;rate=N` PCM16 (another type: close 1007). Activity
 *    detection by energy on the audio received (speech-energy.ts, `silenceDurationMs`): a turn's end
 *    starts an answer; speech during an answer interrupts it (`serverContent.interrupted`, then
 *    `turnComplete`), and only what was sent stays in its history.
 *  - Answers (scripted by the test, as the OpenAI stand-in's: `respond(turn)`): `modelTurn` parts
 *    with `inlineData` `audio/pcm;rate=24000` (real espeak-ng speech, first after `firstAudioMs`),
 *    `outputTranscription` with the words of each chunk, `generationComplete`, `turnComplete`;
 *    a function call is a `toolCall.functionCalls` message, answered by `toolResponse` whose ids
 *    must be the calls'.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { errorMessage } from '../core/errors.js';
import { resample } from '../voice/resample.js';
import { base64ToPcm, pcmToBase64 } from '../voice/s2s.js';
import { EnergySegmenter, type EnergyOptions } from './speech-energy.js';
import { id, type RealtimeReply, type RealtimeTurn } from './openai-realtime-standin-response.js';
import { sleep, speechFor } from './tts-standin-audio.js';

const VAD_RATE = 16_000;
const OUT_RATE = 24_000;
const PATH = /^\/+ws\/google\.ai\.generativelanguage\.v\w+\.GenerativeService\.BidiGenerateContent$/;

export interface GeminiLiveStandInOptions extends EnergyOptions {
  apiKey?: string;
  firstAudioMs?: number;
  chunkMs?: number;
  chunkGapMs?: number;
  /** What to answer (`conn`: the connection it is for, as in `connections`). */
  respond?: (turn: RealtimeTurn, conn: GeminiConnection) => RealtimeReply;
}

export interface GeminiConnection {
  setup: Record<string, unknown>;
  audioMs: number;
  /** Answers: what was sent of each (text, audio ms), and whether it was interrupted. */
  answers: Array<{ text: string; audioMs: number; interrupted: boolean; triggeredAt: number; firstAudioAt?: number }>;
  toolResponses: Array<{ id: string; name: string; response: unknown }>;
  texts: string[];
  interruptedAt: number[];
}

export interface GeminiLiveStandIn {
  /** For GEMINI_BASE_URL / `httpOptions.baseUrl` (`http://127.0.0.1:port`). */
  baseUrl: string;
  apiKey: string;
  connections: GeminiConnection[];
  upgrades: Array<{ status: number }>;
  closes: Array<{ code: number; reason: string }>;
  fault: { kind: 'reject'; status: number } | { kind: 'drop'; afterChunks: number } | undefined;
  close(): Promise<void>;
}

export async function startGeminiLiveStandIn(opts: GeminiLiveStandInOptions = {}): Promise<GeminiLiveStandIn> {
  const server = createServer();
  const wss = new WebSocketServer({ noServer: true });
  const standIn: GeminiLiveStandIn = {
    baseUrl: '',
    apiKey: opts.apiKey ?? 'gemini-test-key',
    connections: [],
    upgrades: [],
    closes: [],
    fault: undefined,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(`http://x${req.url ?? '/'}`); // the SDK's path starts with // (base URL + '/ws/…')
    const f = standIn.fault;
    const status = !PATH.test(url.pathname) ? 404 : f?.kind === 'reject' ? f.status : 101;
    standIn.upgrades.push({ status });
    if (status !== 101) {
      const body = JSON.stringify({
        error: { code: status, message: 'stand-in refused', status: status === 429 ? 'RESOURCE_EXHAUSTED' : 'NOT_FOUND' },
      });
      socket.end(
        `HTTP/1.1 ${status} Refused\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      return;
    }
    const key = url.searchParams.get('key') ?? req.headers['x-goog-api-key'];
    wss.handleUpgrade(req, socket, head, (ws) => new GeminiConn(ws, key === standIn.apiKey, opts, standIn));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  standIn.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return standIn;
}

class GeminiConn {
  private c: GeminiConnection | undefined;
  private segmenter = new EnergySegmenter(VAD_RATE);
  private active: GeminiConnection['answers'][number] | undefined;
  private readonly calls = new Map<string, string>();
  private turns = 0;
  private chunks = 0;

  constructor(
    private readonly ws: WebSocket,
    authorized: boolean,
    private readonly opts: GeminiLiveStandInOptions,
    private readonly standIn: GeminiLiveStandIn,
  ) {
    if (!authorized) {
      this.close(1007, 'API key not valid. Please pass a valid API key.');
      return;
    }
    ws.on('message', (data: Buffer) => {
      try {
        this.onMessage(JSON.parse(data.toString()) as Record<string, unknown>);
      } catch (err) {
        this.close(1007, `Invalid JSON payload received. ${errorMessage(err)}`);
      }
    });
  }

  private close(code: number, reason: string): void {
    this.standIn.closes.push({ code, reason });
    this.ws.close(code, reason);
  }

  private send(msg: Record<string, unknown>): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(JSON.stringify(msg));
  }

  private onMessage(m: Record<string, unknown>): void {
    if (!this.c) return this.setup(m.setup as Record<string, unknown> | undefined);
    if (m.realtimeInput) return this.audio((m.realtimeInput as { audio?: { data?: string; mimeType?: string } }).audio);
    if (m.clientContent) {
      const turns = (m.clientContent as { turns?: Array<{ parts?: Array<{ text?: string }> }> }).turns ?? [];
      const text = turns.flatMap((t) => (t.parts ?? []).map((p) => p.text ?? '')).join(' ');
      this.c.texts.push(text);
      return this.answer({ index: 0, trigger: 'text', text });
    }
    if (m.toolResponse) return this.toolResponse(m.toolResponse);
    this.close(1007, 'Request contains an invalid argument.');
  }

  private setup(s: Record<string, unknown> | undefined): void {
    const gen = (s?.generationConfig ?? {}) as { responseModalities?: unknown };
    const modalities = JSON.stringify(gen.responseModalities ?? []);
    if (!s || typeof s.model !== 'string' || !s.model.startsWith('models/') || modalities !== '["AUDIO"]')
      return this.close(1007, 'Request contains an invalid argument.');
    const silence = (s.realtimeInputConfig as { automaticActivityDetection?: { silenceDurationMs?: number } } | undefined)
      ?.automaticActivityDetection;
    this.segmenter = new EnergySegmenter(VAD_RATE, { ...this.opts, hangoverMs: silence?.silenceDurationMs ?? 500 });
    this.c = { setup: s, audioMs: 0, answers: [], toolResponses: [], texts: [], interruptedAt: [] };
    this.standIn.connections.push(this.c);
    this.send({ setupComplete: {} });
  }

  private audio(a: { data?: string; mimeType?: string } | undefined): void {
    const rate = /^audio\/pcm;rate=(\d+)$/.exec(a?.mimeType ?? '')?.[1];
    if (!a?.data || !rate) return this.close(1007, 'Request contains an invalid argument.');
    const pcm = resample(base64ToPcm(a.data), Number(rate), VAD_RATE);
    this.c!.audioMs += (pcm.length / VAD_RATE) * 1000;
    const { started, ended } = this.segmenter.push(pcm);
    if (started && this.active) {
      this.active.interrupted = true;
      this.c!.interruptedAt.push(Date.now());
      this.send({ serverContent: { interrupted: true } });
    }
    for (const seg of ended) if (!this.active) this.answer({ index: 0, trigger: 'speech', voicedMs: seg.endMs - seg.startMs });
  }

  private toolResponse(t: { functionResponses?: Array<{ id?: string; name?: string; response?: unknown }> }): void {
    const rs = t.functionResponses ?? [];
    if (rs.length === 0 || rs.some((r) => !r.id || !this.calls.has(r.id))) return this.close(1008, 'Requested entity was not found.');
    for (const r of rs) this.c!.toolResponses.push({ id: r.id!, name: r.name ?? '', response: r.response });
    const first = rs[0]!;
    this.answer({
      index: 0,
      trigger: 'tool',
      tool: { name: this.calls.get(first.id!) ?? '', output: JSON.stringify(first.response ?? null) },
    });
  }

  private answer(turn: RealtimeTurn): void {
    const reply = this.opts.respond?.({ ...turn, index: this.turns++ }, this.c!) ?? { say: 'Hello, how can I help?' };
    const a = { text: '', audioMs: 0, interrupted: false, triggeredAt: Date.now() };
    this.active = a;
    this.c!.answers.push(a);
    void this.stream(a, reply).catch((err: unknown) => this.close(1011, `Internal error occurred. ${errorMessage(err)}`));
  }

  private async stream(a: GeminiConnection['answers'][number], reply: RealtimeReply): Promise<void> {
    await sleep(this.opts.firstAudioMs ?? 200);
    if (reply.say && !a.interrupted) {
      const speech = await speechFor(reply.say, OUT_RATE);
      const step = Math.round((OUT_RATE * (this.opts.chunkMs ?? 100)) / 1000);
      let w = 0;
      for (let off = 0; off < speech.pcm.length && !a.interrupted; off += step) {
        const words: string[] = [];
        for (; w < speech.words.length && speech.words[w]!.startMs < ((off + step) / OUT_RATE) * 1000; w++)
          words.push(speech.words[w]!.word);
        const chunk = speech.pcm.subarray(off, Math.min(off + step, speech.pcm.length));
        if (words.length) {
          const delta = (a.text ? ' ' : '') + words.join(' ');
          a.text += delta;
          this.send({ serverContent: { outputTranscription: { text: delta } } });
        }
        a.firstAudioAt ??= Date.now();
        this.send({
          serverContent: { modelTurn: { parts: [{ inlineData: { mimeType: `audio/pcm;rate=${OUT_RATE}`, data: pcmToBase64(chunk) } }] } },
        });
        a.audioMs += (chunk.length / OUT_RATE) * 1000;
        const f = this.standIn.fault;
        if (f?.kind === 'drop' && ++this.chunks >= f.afterChunks) {
          this.standIn.fault = undefined;
          this.ws.terminate();
          return;
        }
        await sleep(this.opts.chunkGapMs ?? (this.opts.chunkMs ?? 100) / 2);
      }
    }
    if (reply.call && !a.interrupted) {
      const callId = id('call');
      this.calls.set(callId, reply.call.name);
      this.send({ toolCall: { functionCalls: [{ id: callId, name: reply.call.name, args: reply.call.arguments ?? {} }] } });
    }
    if (!a.interrupted) this.send({ serverContent: { generationComplete: true } });
    this.send({ serverContent: { turnComplete: true } });
    this.active = undefined;
  }
}
