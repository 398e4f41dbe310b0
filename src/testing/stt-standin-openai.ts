/**
 * A stand-in of OpenAI's transcription endpoint (`POST /v1/audio/transcriptions`), for tests, on
 * 127.0.0.1 over plain HTTP (the official `openai` SDK takes any `baseURL`). Sources: the SDK's
 * resources/audio/transcriptions.d.ts (fields, events) and core/streaming.js (SSE `data:` lines);
 * OpenAI's error bodies as users reported them (docs/voice.md, "OpenAI transcription").
 *
 *  - `Authorization: Bearer <key>`; a wrong or missing key is 401 `invalid_api_key`.
 *  - A body over 25 MB (26 214 400 bytes) is 413 before it is read.
 *  - multipart/form-data with `model` (a transcription model; another is 404 `model_not_found`),
 *    `file` (flac, m4a, mp3, mp4, mpeg, mpga, oga, ogg, wav, webm by name, else 400 "Invalid file
 *    format"; this stand-in decodes only PCM16 WAV and refuses the others, and a `.wav` that is not
 *    a valid WAV is 400 too), audio under 0.1 s is 400 `audio_too_short`; `response_format` other
 *    than `json` for the gpt-4o models is 400.
 *  - The words: those a test registered for audio of the same voiced length (speech-energy.ts), per
 *    voiced segment of the file, joined; silence has none. `stream=true` gives SSE
 *    `transcript.text.delta` pieces (one per word) `latencyMs` after the request, then
 *    `transcript.text.done` with `text` and `usage`; `whisper-1` ignores `stream` (OpenAI's API
 *    reference says so) and answers JSON.
 *  - `failNext(n, status)`: the next n requests get 429 or 500 with OpenAI's bodies.
 *  - For benchmarks, each request's record stamps its arrival, its body's, the answer's end, and
 *    keeps the audio around the end of its voice (bench/hearing-latency.ts).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeWav } from '../voice/wav.js';
import { PhraseBook, voicedSegments, type EnergyOptions } from './speech-energy.js';

export const OPENAI_TRANSCRIBE_MODELS = [
  'gpt-4o-transcribe',
  'gpt-4o-mini-transcribe',
  'gpt-4o-mini-transcribe-2025-12-15',
  'gpt-4o-transcribe-diarize',
  'whisper-1',
];
const FORMATS = ['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav', 'webm'];
const MAX_BYTES = 26_214_400;

export interface OpenAiSttStandInOptions extends EnergyOptions {
  apiKey?: string;
  /** From the request's end to the first delta (default 150 ms). */
  latencyMs?: number;
  /** Between deltas (default 10 ms). */
  deltaGapMs?: number;
}

/** One request as the stand-in saw it. */
export interface OpenAiSttRequest {
  status: number;
  model?: string;
  language?: string;
  prompt?: string;
  stream?: boolean;
  responseFormat?: string;
  sampleRate?: number;
  audioMs?: number;
  text?: string;
  /** The client went away before the answer was complete. */
  aborted: boolean;
  /** Date.now() when the request (its headers) arrived. */
  receivedAtMs?: number;
  /** Date.now() when its body had been read whole (the audio is all here: the vendor's part starts). */
  bodyAtMs?: number;
  /** Date.now() when the answer's end (`transcript.text.done`, or the JSON) was handed to the socket. */
  doneSentAtMs?: number;
  /**
   * The file's audio (at `sampleRate`) from 100 ms before the end of its last voiced 20 ms frame to
   * the file's end: a benchmark finds the caller's last voiced frame in it, and how much audio the
   * client's endpointing sent after it.
   */
  voiceEndTail?: Int16Array;
}

export interface OpenAiSttStandIn {
  /** For OPENAI_STT_BASE_URL / the SDK's baseURL: `http://127.0.0.1:<port>/v1`. */
  baseUrl: string;
  apiKey: string;
  register(text: string, pcm: Int16Array, sampleRate: number): void;
  /** The next `n` requests fail with `status` (429 or 500). */
  failNext(n: number, status: 429 | 500): void;
  latencyMs: number;
  requests: OpenAiSttRequest[];
  close(): Promise<void>;
}

type Refusal = { status: number; message: string; type: string; param: string | null; code: string | null };

const refusals = {
  key: (key: string): Refusal => ({
    status: 401,
    message: `Incorrect API key provided: ${key.slice(0, 3)}***${key.slice(-4)}. You can find your API key at https://platform.openai.com/account/api-keys.`,
    type: 'invalid_request_error',
    param: null,
    code: 'invalid_api_key',
  }),
  tooLarge: (n: number): Refusal => ({
    status: 413,
    message: `Maximum content size limit (${MAX_BYTES}) exceeded (${n} bytes read)`,
    type: 'server_error',
    param: null,
    code: null,
  }),
  bad: (message: string, param: string | null = null, code: string | null = null): Refusal => ({
    status: 400,
    message,
    type: 'invalid_request_error',
    param,
    code,
  }),
  429: (): Refusal => ({
    status: 429,
    message:
      'Rate limit reached for gpt-4o-transcribe in organization org-standin on requests per min (RPM): Limit 50, Used 50, Requested 1.',
    type: 'requests',
    param: null,
    code: 'rate_limit_exceeded',
  }),
  500: (): Refusal => ({
    status: 500,
    message: 'The server had an error while processing your request. Sorry about that!',
    type: 'server_error',
    param: null,
    code: null,
  }),
};

export async function startOpenAiSttStandIn(opts: OpenAiSttStandInOptions = {}): Promise<OpenAiSttStandIn> {
  const apiKey = opts.apiKey ?? 'sk-standin-openai-stt';
  const book = new PhraseBook(opts);
  const requests: OpenAiSttRequest[] = [];
  const failures: Array<429 | 500> = [];
  const state = { latencyMs: opts.latencyMs ?? 150 };
  const server = createServer((req, res) => {
    const rec: OpenAiSttRequest = { status: 0, aborted: false, receivedAtMs: Date.now() };
    res.on('close', () => (rec.aborted = !res.writableFinished));
    if (req.method !== 'POST' || new URL(req.url ?? '/', 'http://x').pathname !== '/v1/audio/transcriptions')
      return void res.writeHead(404).end();
    requests.push(rec);
    handle(req, res, rec, { apiKey, book, failures, latencyMs: state.latencyMs, deltaGapMs: opts.deltaGapMs ?? 10, energy: opts }).catch(
      () => res.destroy(),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    apiKey,
    register: (text, pcm, rate) => book.register(text, pcm, rate),
    failNext: (n, status) => failures.push(...Array<429 | 500>(n).fill(status)),
    get latencyMs() {
      return state.latencyMs;
    },
    set latencyMs(ms: number) {
      state.latencyMs = ms;
    },
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

interface Ctx {
  apiKey: string;
  book: PhraseBook;
  failures: Array<429 | 500>;
  latencyMs: number;
  deltaGapMs: number;
  energy: EnergyOptions;
}

function refuse(res: ServerResponse, rec: OpenAiSttRequest, r: Refusal): void {
  rec.status = r.status;
  const body = JSON.stringify({ error: { message: r.message, type: r.type, param: r.param, code: r.code } });
  res.writeHead(r.status, { 'content-type': 'application/json', 'x-request-id': `req_${Date.now()}` }).end(body);
}

async function handle(req: IncomingMessage, res: ServerResponse, rec: OpenAiSttRequest, c: Ctx): Promise<void> {
  const key = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim() ?? '';
  if (key !== c.apiKey) return refuse(res, rec, refusals.key(key));
  const length = Number(req.headers['content-length'] ?? 0);
  if (length > MAX_BYTES) return refuse(res, rec, refusals.tooLarge(length));
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BYTES) return refuse(res, rec, refusals.tooLarge(size));
    chunks.push(chunk);
  }
  rec.bodyAtMs = Date.now();
  const failure = c.failures.shift();
  if (failure) return refuse(res, rec, refusals[failure]());
  let form: FormData;
  try {
    form = await new Request('http://x', {
      method: 'POST',
      headers: { 'content-type': req.headers['content-type'] ?? '' },
      body: Buffer.concat(chunks),
    }).formData();
  } catch {
    return refuse(res, rec, refusals.bad('Could not parse multipart form', null, null));
  }
  const checked = await checkForm(form, rec);
  if ('status' in checked) return refuse(res, rec, checked);
  const text = transcriptOf(checked.pcm, checked.sampleRate, c, rec);
  rec.text = text;
  rec.status = 200;
  if (!rec.stream || rec.model === 'whisper-1') {
    await sleep(c.latencyMs);
    rec.doneSentAtMs = Date.now();
    return void res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ text, usage: usageOf(checked.audioMs, text) }));
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  await sleep(c.latencyMs);
  const words = text.split(' ').filter(Boolean);
  for (const [i, w] of words.entries()) {
    if (res.destroyed) return;
    res.write(`data: ${JSON.stringify({ type: 'transcript.text.delta', delta: i === 0 ? w : ` ${w}` })}\n\n`);
    await sleep(c.deltaGapMs);
  }
  if (res.destroyed) return;
  rec.doneSentAtMs = Date.now();
  res.end(`data: ${JSON.stringify({ type: 'transcript.text.done', text, usage: usageOf(checked.audioMs, text) })}\n\n`);
}

/** The form's refusals, else its audio. */
async function checkForm(
  form: FormData,
  rec: OpenAiSttRequest,
): Promise<Refusal | { pcm: Int16Array; sampleRate: number; audioMs: number }> {
  const model = form.get('model');
  const file = form.get('file');
  if (typeof model !== 'string' || !model) return refusals.bad('you must provide a model parameter', 'model');
  rec.model = model;
  for (const [k, f] of [
    ['language', 'language'],
    ['prompt', 'prompt'],
    ['response_format', 'responseFormat'],
  ] as const) {
    const v = form.get(k);
    if (typeof v === 'string') rec[f] = v;
  }
  rec.stream = form.get('stream') === 'true';
  if (!OPENAI_TRANSCRIBE_MODELS.includes(model))
    return {
      ...refusals.bad(`The model \`${model}\` does not exist or you do not have access to it.`, null, 'model_not_found'),
      status: 404,
    };
  if (model.startsWith('gpt-4o') && rec.responseFormat !== undefined && rec.responseFormat !== 'json' && rec.responseFormat !== 'text')
    return refusals.bad(
      `response_format '${rec.responseFormat}' is not compatible with model '${model}'. Use 'json' or 'text'.`,
      'response_format',
      'unsupported_value',
    );
  if (!(file instanceof File)) return refusals.bad('you must provide a file parameter', 'file');
  const ext = file.name.split('.').pop()?.toLowerCase() ?? '';
  const invalid = refusals.bad(
    `Invalid file format. Supported formats: ${JSON.stringify(FORMATS).replaceAll('"', "'").replaceAll(',', ', ')}`,
  );
  if (!FORMATS.includes(ext)) return invalid;
  if (ext !== 'wav') return refusals.bad(`This stand-in decodes only WAV (got .${ext}).`);
  let wav: { pcm: Int16Array; sampleRate: number };
  try {
    wav = decodeWav(Buffer.from(await file.arrayBuffer()));
  } catch {
    return invalid;
  }
  const audioMs = (wav.pcm.length / wav.sampleRate) * 1000;
  rec.sampleRate = wav.sampleRate;
  rec.audioMs = Math.round(audioMs);
  if (audioMs < 100) return refusals.bad('Audio file is too short. Minimum audio length is 0.1 seconds.', 'file', 'audio_too_short');
  return { ...wav, audioMs };
}

function transcriptOf(pcm: Int16Array, sampleRate: number, c: Ctx, rec: OpenAiSttRequest): string {
  const segments = voicedSegments(pcm, sampleRate, c.energy);
  const last = segments.at(-1);
  if (last) rec.voiceEndTail = pcm.slice(Math.max(0, Math.round(((last.endMs - 100) * sampleRate) / 1000)));
  return segments
    .map((s) => c.book.match(s))
    .filter((t): t is string => Boolean(t))
    .join(' ');
}

function usageOf(audioMs: number, text: string) {
  const audio = Math.ceil(audioMs / 100);
  const output = text.split(' ').filter(Boolean).length;
  return {
    type: 'tokens',
    input_tokens: audio,
    output_tokens: output,
    total_tokens: audio + output,
    input_token_details: { audio_tokens: audio, text_tokens: 0 },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
