/**
 * The Vercel AI SDK behind `LlmProvider` (llm.ts holds the shapes; this file is loaded only when an
 * LLM is configured).
 */
import { createAnthropic } from '@ai-sdk/anthropic';
import { createGoogleGenerativeAI } from '@ai-sdk/google';
import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import {
  AISDKError,
  APICallError,
  generateText,
  jsonSchema,
  stepCountIs,
  streamText,
  tool,
  type LanguageModel,
  type ModelMessage,
  type ToolSet,
} from 'ai';
import type { Logger } from 'pino';
import { errorMessage, isRetryableStatus } from '../core/errors.js';
import {
  LlmError,
  type ChatMessage,
  type LlmInit,
  type LlmProvider,
  type LlmProviderName,
  type LlmStream,
  type StreamOptions,
  type ToolCall,
  type ToolSpec,
} from './llm.js';

/**
 * One short streamed answer per vendor's wire format, served to the SDK by a local `fetch` when
 * the worker warms up: the SDK compiles its response schemas on first use (≈ 0.3–0.7 s of CPU
 * measured here), which would otherwise land on the first turn of the first call.
 */
const WARM_ANSWERS: Record<LlmProviderName, string> = {
  openai: sse([
    {
      id: 'w',
      object: 'chat.completion.chunk',
      created: 0,
      model: 'w',
      choices: [{ index: 0, delta: { role: 'assistant', content: 'ok' }, finish_reason: null }],
    },
    { id: 'w', object: 'chat.completion.chunk', created: 0, model: 'w', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] },
    '[DONE]',
  ]),
  'openai-compatible': '',
  anthropic: sse([
    {
      type: 'message_start',
      message: {
        id: 'w',
        type: 'message',
        role: 'assistant',
        model: 'w',
        content: [],
        stop_reason: null,
        usage: { input_tokens: 1, output_tokens: 0 },
      },
    },
    { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
    { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'ok' } },
    { type: 'content_block_stop', index: 0 },
    { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 1 } },
    { type: 'message_stop' },
  ]),
  google: sse([
    {
      candidates: [{ content: { role: 'model', parts: [{ text: 'ok' }] }, finishReason: 'STOP', index: 0 }],
      usageMetadata: { promptTokenCount: 1, candidatesTokenCount: 1, totalTokenCount: 2 },
    },
  ]),
};
WARM_ANSWERS['openai-compatible'] = WARM_ANSWERS.openai;

function sse(events: unknown[]): string {
  return events.map((e) => `data: ${typeof e === 'string' ? e : JSON.stringify(e)}\n\n`).join('');
}

/** The SDK's model for `init` (the only place that knows the vendors' packages). */
function languageModel(init: LlmInit, fetchFn?: typeof fetch): LanguageModel {
  const baseURL = init.baseUrl?.replace(/\/$/, '');
  const common = { apiKey: init.apiKey, ...(baseURL ? { baseURL } : {}), ...(fetchFn ? { fetch: fetchFn } : {}) };
  switch (init.provider) {
    case 'openai':
      // Chat Completions: the wire every OpenAI-compatible server speaks as well.
      return createOpenAI(common).chat(init.model);
    case 'openai-compatible':
      return createOpenAICompatible({
        name: 'openai-compatible',
        baseURL: baseURL ?? 'https://api.openai.com/v1',
        apiKey: init.apiKey,
        ...(fetchFn ? { fetch: fetchFn } : {}),
      })(init.model);
    case 'anthropic':
      return createAnthropic(common)(init.model);
    case 'google':
      return createGoogleGenerativeAI(common)(init.model);
  }
}

/** The bot's OpenAI-shaped history as the SDK's messages (a tool result names its call's tool). */
export function toModelMessages(messages: ChatMessage[]): ModelMessage[] {
  const toolNames = new Map<string, string>();
  return messages.map((m): ModelMessage => {
    switch (m.role) {
      case 'system':
        return { role: 'system', content: m.content };
      case 'user':
        return { role: 'user', content: m.content };
      case 'assistant': {
        if (!m.tool_calls?.length) return { role: 'assistant', content: m.content };
        for (const c of m.tool_calls) toolNames.set(c.id, c.function.name);
        return {
          role: 'assistant',
          content: [
            ...(m.content ? [{ type: 'text' as const, text: m.content }] : []),
            ...m.tool_calls.map((c) => ({
              type: 'tool-call' as const,
              toolCallId: c.id,
              toolName: c.function.name,
              input: parseArguments(c.function.arguments),
            })),
          ],
        };
      }
      case 'tool':
        return {
          role: 'tool',
          content: [
            {
              type: 'tool-result',
              toolCallId: m.tool_call_id,
              toolName: toolNames.get(m.tool_call_id) ?? 'unknown',
              output: { type: 'text', value: m.content },
            },
          ],
        };
    }
  });
}

function parseArguments(text: string): unknown {
  try {
    return JSON.parse(text || '{}');
  } catch {
    return {};
  }
}

function toolSet(specs: ToolSpec[] | undefined): ToolSet | undefined {
  if (!specs?.length) return undefined;
  const set: ToolSet = {};
  for (const s of specs) {
    const execute = s.execute;
    const base = { ...(s.description ? { description: s.description } : {}), inputSchema: jsonSchema<unknown>(s.parameters) };
    set[s.name] = execute
      ? tool<unknown, unknown>({ ...base, execute: (args, o) => execute(args, { signal: o.abortSignal ?? new AbortController().signal }) })
      : tool<unknown>(base);
  }
  return set;
}

/** Any failure of the SDK as an LlmError: HTTP answers keep their status and the vendor's retry hint. */
export function toLlmError(err: unknown, what: string): LlmError {
  if (err instanceof LlmError) return err;
  if (APICallError.isInstance(err)) {
    const status = err.statusCode;
    return new LlmError(`${what}: ${status === undefined ? '' : `HTTP ${status}: `}${err.message}`.slice(0, 300), {
      status,
      retryable: status === undefined ? err.isRetryable : isRetryableStatus(status),
      cause: err,
    });
  }
  // The SDK's other errors say the answer was not what the vendor documents (no choices, bad JSON):
  // asking again will not help. Anything else is the network's.
  return new LlmError(`${what}: ${errorMessage(err)}`, { retryable: !AISDKError.isInstance(err), cause: err });
}

/**
 * The LLM client for `init`. The SDK's own warnings (an unknown model, an unsupported setting) go
 * to `logger` as log lines, not to the console: a worker's stdout is JSON lines.
 */
export function createLlm(init: LlmInit, opts: { logger?: Pick<Logger, 'warn'> } = {}): LlmProvider {
  const logger = opts.logger;
  globalThis.AI_SDK_LOG_WARNINGS = logger
    ? (o) => logger.warn({ llm: init.provider, model: init.model, warnings: o.warnings }, 'LLM library warning')
    : false;
  const model = languageModel(init);
  return {
    provider: init.provider,
    model: init.model,
    stream: (messages, opts = {}) => openStream(model, init, messages, opts),
    async warm() {
      const canned: typeof fetch = () =>
        Promise.resolve(new Response(WARM_ANSWERS[init.provider], { headers: { 'content-type': 'text/event-stream' } }));
      const st = openStream(languageModel(init, canned), init, [{ role: 'user', content: 'warm' }], {});
      for await (const _ of st) void _;
      if ((await st.text) !== 'ok') throw new LlmError(`the ${init.provider} client did not read its warm-up answer`, { retryable: false });
    },
    async chat(messages, opts = {}) {
      try {
        const r = await generateText({
          model,
          messages: toModelMessages(messages),
          maxRetries: 0,
          abortSignal: AbortSignal.any([AbortSignal.timeout(init.timeoutMs), ...(opts.signal ? [opts.signal] : [])]),
          ...(opts.maxTokens ? { maxOutputTokens: opts.maxTokens } : {}),
          ...(opts.temperature !== undefined ? { temperature: opts.temperature } : {}),
        });
        return r.text.trim();
      } catch (err) {
        throw toLlmError(err, 'chat request failed');
      }
    },
  };
}

/** One settle-once result of a stream: the text so far and the calls left to the bot. */
class StreamResult {
  text = '';
  readonly calls: ToolCall[] = [];
  private settled = false;
  private resolveText!: (t: string) => void;
  private rejectText!: (e: unknown) => void;
  private resolveCalls!: (c: ToolCall[]) => void;
  readonly textPromise = new Promise<string>((res, rej) => ((this.resolveText = res), (this.rejectText = rej)));
  readonly callsPromise = new Promise<ToolCall[]>((res) => (this.resolveCalls = res));
  constructor() {
    this.textPromise.catch(() => undefined);
  }
  settle(err?: unknown): void {
    if (this.settled) return;
    this.settled = true;
    if (err === undefined) this.resolveText(this.text);
    else this.rejectText(err);
    this.resolveCalls(this.calls);
  }
}

function openStream(model: LanguageModel, init: LlmInit, messages: ChatMessage[], opts: StreamOptions): LlmStream {
  const ac = new AbortController();
  const signal = AbortSignal.any([ac.signal, AbortSignal.timeout(init.timeoutMs), ...(opts.signal ? [opts.signal] : [])]);
  const out = new StreamResult();
  const tools = toolSet(opts.tools);
  const cancelled = () => ac.signal.aborted || opts.signal?.aborted === true;
  let started = false;

  async function* run(): AsyncGenerator<string> {
    try {
      const r = streamText({
        model,
        messages: toModelMessages(messages),
        maxRetries: 0,
        abortSignal: signal,
        // Errors arrive as 'error' parts below and reject `text`; the SDK's default would print them.
        onError: () => undefined,
        ...(tools ? { tools, stopWhen: stepCountIs(opts.maxSteps ?? 5) } : {}),
        ...(opts.maxTokens ? { maxOutputTokens: opts.maxTokens } : {}),
        ...(opts.temperature !== undefined ? { temperature: opts.temperature } : {}),
      });
      for await (const part of r.fullStream) {
        if (part.type === 'text-delta' && part.text) {
          out.text += part.text;
          yield part.text;
        } else if (part.type === 'tool-call' && !tools?.[part.toolName]?.execute) {
          out.calls.push({
            id: part.toolCallId,
            type: 'function',
            function: { name: part.toolName, arguments: JSON.stringify(part.input ?? {}) },
          });
        } else if (part.type === 'error') {
          throw part.error;
        } else if (part.type === 'abort') {
          return;
        }
      }
    } catch (err) {
      // Cancelled by us (barge-in, hang-up): the consumer asked for it; `text` keeps what arrived.
      if (cancelled()) return;
      const e = toLlmError(err, 'chat stream failed');
      out.settle(e);
      throw e;
    } finally {
      ac.abort();
      out.settle();
    }
  }

  const gen = run();
  return {
    text: out.textPromise,
    toolCalls: out.callsPromise,
    abort(reason?: unknown) {
      ac.abort(reason);
      // Settle now with what arrived: the consumer may have stopped pulling (the generator is
      // parked at a yield and would never reach its finally).
      started = true;
      out.settle();
      void gen.return(undefined);
    },
    [Symbol.asyncIterator]() {
      if (started) throw new TypeError('an LLM stream can be iterated once');
      started = true;
      return gen;
    },
  };
}
