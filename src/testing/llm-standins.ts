/**
 * Local stand-ins for two LLM vendors' streaming APIs, for tests and benchmarks: OpenAI's Chat
 * Completions (`POST /v1/chat/completions`) and Anthropic's Messages (`POST /v1/messages`). They
 * speak each vendor's documented wire format (sources in docs/voice.md) and refuse what the vendor
 * refuses: a missing or wrong key (401 with the vendor's error body), Anthropic's required
 * `anthropic-version` header and `max_tokens`, a body without `model` or `messages`. Answers stream
 * with set latencies; a test can make the next requests fail with a status (429, 500, 529).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { errorMessage } from '../core/errors.js';

/** A conversation as the stand-in reads it, whatever the vendor's format: tool results included. */
export interface StandInTurn {
  role: 'system' | 'user' | 'assistant' | 'tool';
  text: string;
}

export type StandInAnswer = string | { toolCall: { name: string; arguments: Record<string, unknown> } };

export interface LlmStandInOptions {
  /** The key the stand-in accepts (both vendors). */
  apiKey: string;
  /** Delay before the first token (default 200 ms). */
  firstTokenMs?: number;
  /** Tokens per second after the first (default 20). */
  tokensPerSec?: number;
  /** The answer to a conversation (default: echoes the last user message). */
  reply?: (turns: StandInTurn[], toolNames: string[]) => StandInAnswer;
}

export interface LlmStandInRequest {
  vendor: 'openai' | 'anthropic';
  status: number;
  body: Record<string, unknown>;
  turns: StandInTurn[];
  startedAtMs: number;
  firstByteAtMs?: number;
  endedAtMs?: number;
  /** The client went away before the answer was complete (barge-in, hang-up). */
  aborted: boolean;
}

export interface LlmStandIns {
  /** OPENAI base URL (`LLM_BASE_URL`) and ANTHROPIC_BASE_URL: both `http://127.0.0.1:<port>/v1`. */
  baseUrl: string;
  requests: LlmStandInRequest[];
  /** The next `times` requests are answered with `status` and the vendor's error body for it. */
  failNext(status: number, times?: number): void;
  close(): Promise<void>;
}

const TOKEN = /\S+\s*/g;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let s = '';
    req.on('data', (c: Buffer) => (s += c.toString()));
    req.on('end', () => resolve(s));
    req.on('error', reject);
  });
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** OpenAI's error body (api-reference "Error codes"). */
function openAiError(status: number): { type: string; code: string; message: string } {
  if (status === 401) return { type: 'invalid_request_error', code: 'invalid_api_key', message: 'Incorrect API key provided.' };
  if (status === 429) return { type: 'requests', code: 'rate_limit_exceeded', message: 'Rate limit reached for requests.' };
  if (status === 400) return { type: 'invalid_request_error', code: 'invalid_request', message: 'Invalid request.' };
  return { type: 'server_error', code: 'server_error', message: 'The server had an error while processing your request.' };
}

/** Anthropic's error types by status (docs "Errors"). */
function anthropicErrorType(status: number): string {
  const types: Record<number, string> = {
    400: 'invalid_request_error',
    401: 'authentication_error',
    403: 'permission_error',
    404: 'not_found_error',
    413: 'request_too_large',
    429: 'rate_limit_error',
    529: 'overloaded_error',
  };
  return types[status] ?? 'api_error';
}

/** A content field that is a string or an array of text parts (both vendors), as one string. */
function textOf(v: unknown): string {
  return typeof v === 'string'
    ? v
    : asArray(v)
        .filter(isObject)
        .map((p) => str(p.text))
        .join('');
}

/** OpenAI chat messages → turns (content may be a string or an array of text parts). */
function openAiTurns(body: Record<string, unknown>): StandInTurn[] {
  return asArray(body.messages)
    .filter(isObject)
    .map((m) => {
      const content = textOf(m.content);
      const role = m.role === 'developer' ? 'system' : str(m.role);
      return { role: role === 'system' || role === 'assistant' || role === 'tool' ? role : 'user', text: content };
    });
}

/** Anthropic messages → turns: a `tool_result` block is a tool turn. */
function anthropicTurns(body: Record<string, unknown>): StandInTurn[] {
  const system = textOf(body.system);
  const turns: StandInTurn[] = system ? [{ role: 'system', text: system }] : [];
  for (const m of asArray(body.messages).filter(isObject)) {
    if (typeof m.content === 'string') {
      turns.push({ role: m.role === 'assistant' ? 'assistant' : 'user', text: m.content });
      continue;
    }
    for (const b of asArray(m.content).filter(isObject)) {
      if (b.type === 'tool_result') {
        turns.push({ role: 'tool', text: textOf(b.content) });
      } else if (b.type === 'text') turns.push({ role: m.role === 'assistant' ? 'assistant' : 'user', text: str(b.text) });
    }
  }
  return turns;
}

const toolNamesOf = (body: Record<string, unknown>): string[] =>
  asArray(body.tools)
    .filter(isObject)
    .map((t) => (isObject(t.function) ? str(t.function.name) : str(t.name)));

/** What the vendors' handlers share. */
interface StandInContext {
  apiKey: string;
  firstTokenMs: number;
  tokenMs: number;
  failures: number[];
  answerOf(turns: StandInTurn[], tools: string[]): StandInAnswer;
}

/** Streams `answer` through `emit` token by token; stops when the client is gone. */
async function tokens(ctx: StandInContext, answer: string, gone: () => boolean, emit: (piece: string) => void): Promise<boolean> {
  const pieces = answer.match(TOKEN) ?? [];
  for (let i = 0; i < pieces.length; i++) {
    if (gone()) return false;
    if (i > 0) await sleep(ctx.tokenMs);
    emit(pieces[i]!);
  }
  return !gone();
}

async function openAi(
  ctx: StandInContext,
  req: IncomingMessage,
  body: Record<string, unknown>,
  rec: LlmStandInRequest,
  res: ServerResponse,
  gone: () => boolean,
) {
  const refuse = (status: number) => {
    rec.status = status;
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { ...openAiError(status), param: null } }));
  };
  if (req.headers.authorization !== `Bearer ${ctx.apiKey}`) return refuse(401);
  if (typeof body.model !== 'string' || !Array.isArray(body.messages) || body.messages.length === 0) return refuse(400);
  const failure = ctx.failures.shift();
  if (failure !== undefined) return refuse(failure);
  const answer = ctx.answerOf(rec.turns, toolNamesOf(body));
  const base = { id: 'chatcmpl-standin', object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model: body.model };
  const chunk = (delta: unknown, finish: string | null) =>
    `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
  if (body.stream !== true) {
    await sleep(ctx.firstTokenMs);
    const message =
      typeof answer === 'string'
        ? { role: 'assistant', content: answer }
        : {
            role: 'assistant',
            content: null,
            tool_calls: [
              {
                id: 'call_1',
                type: 'function',
                function: { name: answer.toolCall.name, arguments: JSON.stringify(answer.toolCall.arguments) },
              },
            ],
          };
    rec.firstByteAtMs = Date.now();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        ...base,
        object: 'chat.completion',
        choices: [{ index: 0, message, finish_reason: typeof answer === 'string' ? 'stop' : 'tool_calls' }],
      }),
    );
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  await sleep(ctx.firstTokenMs);
  const write = (s: string) => {
    rec.firstByteAtMs ??= Date.now();
    res.write(s);
  };
  if (typeof answer === 'string') {
    write(chunk({ role: 'assistant', content: '' }, null));
    if (!(await tokens(ctx, answer, gone, (t) => write(chunk({ content: t }, null))))) return;
    write(chunk({}, 'stop'));
  } else {
    const args = JSON.stringify(answer.toolCall.arguments);
    write(
      chunk(
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: answer.toolCall.name, arguments: '' } }],
        },
        null,
      ),
    );
    await sleep(ctx.tokenMs);
    if (gone()) return;
    write(chunk({ tool_calls: [{ index: 0, function: { arguments: args } }] }, null));
    write(chunk({}, 'tool_calls'));
  }
  res.end('data: [DONE]\n\n');
}

async function anthropic(
  ctx: StandInContext,
  req: IncomingMessage,
  body: Record<string, unknown>,
  rec: LlmStandInRequest,
  res: ServerResponse,
  gone: () => boolean,
) {
  const refuse = (status: number, message: string) => {
    rec.status = status;
    res
      .writeHead(status, { 'content-type': 'application/json', 'request-id': 'req_standin' })
      .end(JSON.stringify({ type: 'error', error: { type: anthropicErrorType(status), message } }));
  };
  if (req.headers['x-api-key'] !== ctx.apiKey) return refuse(401, 'invalid x-api-key');
  if (typeof req.headers['anthropic-version'] !== 'string') return refuse(400, 'anthropic-version: header is required');
  if (typeof body.model !== 'string') return refuse(400, 'model: Field required');
  if (typeof body.max_tokens !== 'number') return refuse(400, 'max_tokens: Field required');
  if (!Array.isArray(body.messages) || body.messages.length === 0) return refuse(400, 'messages: at least one message is required');
  const failure = ctx.failures.shift();
  if (failure !== undefined) return refuse(failure, failure === 529 ? 'Overloaded' : 'error');
  if (body.stream !== true) return refuse(400, 'this stand-in streams only (stream: true)');
  const answer = ctx.answerOf(rec.turns, toolNamesOf(body));
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const event = (type: string, data: Record<string, unknown>) => {
    rec.firstByteAtMs ??= Date.now();
    res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
  };
  const message = {
    id: 'msg_standin',
    type: 'message',
    role: 'assistant',
    model: body.model,
    content: [],
    stop_reason: null,
    stop_sequence: null,
  };
  event('message_start', { message: { ...message, usage: { input_tokens: 10, output_tokens: 1 } } });
  await sleep(ctx.firstTokenMs);
  if (typeof answer === 'string') {
    event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
    event('ping', {});
    if (!(await tokens(ctx, answer, gone, (t) => event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: t } }))))
      return;
  } else {
    event('content_block_start', {
      index: 0,
      content_block: { type: 'tool_use', id: 'toolu_standin', name: answer.toolCall.name, input: {} },
    });
    await sleep(ctx.tokenMs);
    if (gone()) return;
    event('content_block_delta', {
      index: 0,
      delta: { type: 'input_json_delta', partial_json: JSON.stringify(answer.toolCall.arguments) },
    });
  }
  event('content_block_stop', { index: 0 });
  event('message_delta', {
    delta: { stop_reason: typeof answer === 'string' ? 'end_turn' : 'tool_use', stop_sequence: null },
    usage: { output_tokens: 5 },
  });
  event('message_stop', {});
  res.end();
}

export async function startLlmStandIns(opts: LlmStandInOptions): Promise<LlmStandIns> {
  const requests: LlmStandInRequest[] = [];
  const failures: number[] = [];
  const ctx: StandInContext = {
    apiKey: opts.apiKey,
    firstTokenMs: opts.firstTokenMs ?? 200,
    tokenMs: 1000 / (opts.tokensPerSec ?? 20),
    failures,
    answerOf: (turns, tools) =>
      opts.reply ? opts.reply(turns, tools) : `You said: ${turns.filter((t) => t.role === 'user').at(-1)?.text ?? ''}`,
  };

  const server: Server = createServer((req, res) => {
    const rec: LlmStandInRequest = { vendor: 'openai', status: 200, body: {}, turns: [], startedAtMs: Date.now(), aborted: false };
    let finished = false;
    res.on('finish', () => {
      finished = true;
      rec.endedAtMs = Date.now();
    });
    res.on('close', () => {
      if (finished) return;
      rec.aborted = true;
      rec.endedAtMs = Date.now();
    });
    const gone = () => rec.aborted || res.destroyed;
    void (async () => {
      try {
        const parsed: unknown = JSON.parse(await readBody(req));
        const body = isObject(parsed) ? parsed : {};
        rec.body = body;
        if (req.method === 'POST' && req.url === '/v1/chat/completions') {
          rec.turns = openAiTurns(body);
          requests.push(rec);
          await openAi(ctx, req, body, rec, res, gone);
        } else if (req.method === 'POST' && req.url === '/v1/messages') {
          rec.vendor = 'anthropic';
          rec.turns = anthropicTurns(body);
          requests.push(rec);
          await anthropic(ctx, req, body, rec, res, gone);
        } else {
          res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"not found"}}');
        }
      } catch (err) {
        if (!res.headersSent) res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: `could not parse the JSON body: ${errorMessage(err)}` } }));
      }
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  const port = typeof address === 'object' && address ? (address satisfies AddressInfo).port : 0;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    failNext(status, times = 1) {
      for (let i = 0; i < times; i++) failures.push(status);
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
