/**
 * Local stand-ins for the external voice services a conversational bot uses, for tests and
 * benchmarks: an OpenAI-compatible chat endpoint that streams (first token after `firstTokenMs`,
 * then `tokensPerSec`) and a speech endpoint that streams PCM (first chunk after `firstChunkMs`).
 * They are fakes of *other people's* services, with fixed, known latencies; patchbay's own code
 * runs for real against them.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { errorMessage } from '../core/errors.js';

export interface StandInOptions {
  /** Chat: delay before the first token (default 200 ms). */
  firstTokenMs?: number;
  /** Chat: tokens per second after the first (default 20). */
  tokensPerSec?: number;
  /** Chat: the reply to a conversation (default: echoes the last user message). */
  reply?: (
    messages: Array<{ role: string; content: string }>,
    tools: unknown[],
  ) => string | { toolCall: { name: string; arguments: string } };
  /** Speech: delay before the first PCM chunk (default 100 ms). */
  firstChunkMs?: number;
  /** Speech: milliseconds of 24 kHz audio per character of text (default 2). */
  audioMsPerChar?: number;
  /** Speech: chunk size in ms of audio (default 40). */
  chunkMs?: number;
}

export interface StandInRequest {
  kind: 'chat' | 'speech';
  body: Record<string, unknown>;
  startedAtMs: number;
  /** First byte of the answer sent. */
  firstByteAtMs?: number;
  endedAtMs?: number;
  /** The client went away before the answer was complete (barge-in, hang-up). */
  aborted: boolean;
}

export interface VoiceStandIns {
  /** For LLM_BASE_URL / TTS_BASE_URL (ends in /v1). */
  baseUrl: string;
  requests: StandInRequest[];
  close(): Promise<void>;
}

const TOKEN = /\S+\s*/g;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let s = '';
    req.on('data', (c: Buffer) => (s += c.toString()));
    req.on('end', () => resolve(s));
    req.on('error', reject);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Pace {
  firstTokenMs: number;
  tokenMs: number;
  firstChunkMs: number;
  msPerChar: number;
  chunkMs: number;
}

/** POST /chat/completions: the answer, whole or streamed token by token. */
async function chat(
  opts: StandInOptions,
  pace: Pace,
  body: Record<string, unknown>,
  rec: StandInRequest,
  res: ServerResponse,
  gone: () => boolean,
) {
  const messages = (body.messages ?? []) as Array<{ role: string; content: string }>;
  const tools = (body.tools ?? []) as unknown[];
  const answer = opts.reply ? opts.reply(messages, tools) : `You said: ${messages.at(-1)?.content ?? ''}`;
  if (body.stream !== true) {
    // The whole answer is sent once the model has generated every token.
    const n = typeof answer === 'string' ? (answer.match(TOKEN) ?? []).length : 2;
    await sleep(pace.firstTokenMs + Math.max(0, n - 1) * pace.tokenMs);
    res.setHeader('content-type', 'application/json');
    const message =
      typeof answer === 'string'
        ? { role: 'assistant', content: answer }
        : { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: answer.toolCall }] };
    rec.firstByteAtMs = Date.now();
    res.end(JSON.stringify({ choices: [{ message }] }));
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  await sleep(pace.firstTokenMs);
  const send = (delta: unknown) => {
    rec.firstByteAtMs ??= Date.now();
    res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta }] })}\n\n`);
  };
  if (typeof answer === 'string') {
    const tokens = answer.match(TOKEN) ?? [];
    for (let i = 0; i < tokens.length; i++) {
      if (gone()) return;
      if (i > 0) await sleep(pace.tokenMs);
      send({ content: tokens[i] });
    }
  } else {
    send({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: answer.toolCall.name, arguments: '' } }] });
    await sleep(pace.tokenMs);
    send({ tool_calls: [{ index: 0, function: { arguments: answer.toolCall.arguments } }] });
  }
  if (gone()) return;
  // As OpenAI does: a last chunk with an empty delta and why the answer ended, then [DONE].
  res.write(
    `data: ${JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: typeof answer === 'string' ? 'stop' : 'tool_calls' }] })}\n\n`,
  );
  res.write('data: [DONE]\n\n');
  res.end();
}

/** POST /audio/speech: a tone as long as the text, as WAV or streamed PCM. */
async function speech(pace: Pace, body: Record<string, unknown>, rec: StandInRequest, res: ServerResponse, gone: () => boolean) {
  const text = String(body.input ?? '');
  const rate = 24_000;
  const totalSamples = Math.max(1, Math.round((text.length * pace.msPerChar * rate) / 1000));
  // A quiet tone, so the audio is not silence.
  const pcm = Buffer.alloc(totalSamples * 2);
  for (let i = 0; i < totalSamples; i++) pcm.writeInt16LE(Math.round(3000 * Math.sin((2 * Math.PI * 440 * i) / rate)), i * 2);
  await sleep(pace.firstChunkMs);
  if (body.response_format === 'wav') {
    const header = Buffer.alloc(44);
    header.write('RIFF', 0);
    header.writeUInt32LE(36 + pcm.length, 4);
    header.write('WAVEfmt ', 8);
    header.writeUInt32LE(16, 16);
    header.writeUInt16LE(1, 20);
    header.writeUInt16LE(1, 22);
    header.writeUInt32LE(rate, 24);
    header.writeUInt32LE(rate * 2, 28);
    header.writeUInt16LE(2, 32);
    header.writeUInt16LE(16, 34);
    header.write('data', 36);
    header.writeUInt32LE(pcm.length, 40);
    res.setHeader('content-type', 'audio/wav');
    rec.firstByteAtMs = Date.now();
    res.end(Buffer.concat([header, pcm]));
    return;
  }
  res.writeHead(200, { 'content-type': 'audio/pcm' });
  const step = Math.round((pace.chunkMs * rate) / 1000) * 2;
  for (let off = 0; off < pcm.length; off += step) {
    if (gone()) return;
    if (off > 0) await sleep(pace.chunkMs / 4); // generated faster than real time, like real services
    rec.firstByteAtMs ??= Date.now();
    res.write(pcm.subarray(off, off + step));
  }
  res.end();
}

export async function startVoiceStandIns(opts: StandInOptions = {}): Promise<VoiceStandIns> {
  const requests: StandInRequest[] = [];
  const pace: Pace = {
    firstTokenMs: opts.firstTokenMs ?? 200,
    tokenMs: 1000 / (opts.tokensPerSec ?? 20),
    firstChunkMs: opts.firstChunkMs ?? 100,
    msPerChar: opts.audioMsPerChar ?? 2,
    chunkMs: opts.chunkMs ?? 40,
  };

  const server: Server = createServer((req, res) => {
    const rec: StandInRequest = { kind: 'chat', body: {}, startedAtMs: Date.now(), aborted: false };
    let finished = false;
    res.on('finish', () => {
      finished = true;
      rec.endedAtMs = Date.now();
    });
    res.on('close', () => {
      if (!finished) {
        rec.aborted = true;
        rec.endedAtMs = Date.now();
      }
    });
    const gone = () => rec.aborted || res.destroyed;
    void (async () => {
      try {
        const body = JSON.parse(await readBody(req)) as Record<string, unknown>;
        rec.body = body;
        if (req.url?.endsWith('/chat/completions')) {
          rec.kind = 'chat';
          requests.push(rec);
          await chat(opts, pace, body, rec, res, gone);
        } else if (req.url?.endsWith('/audio/speech')) {
          rec.kind = 'speech';
          requests.push(rec);
          await speech(pace, body, rec, res, gone);
        } else {
          res.statusCode = 404;
          res.end('{"error":"not found"}');
        }
      } catch (err) {
        if (!res.headersSent) res.statusCode = 400;
        res.end(JSON.stringify({ error: errorMessage(err) }));
      }
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
