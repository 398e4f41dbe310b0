/**
 * A small client for OpenAI-compatible chat completions (`POST {baseUrl}/chat/completions`),
 * offered to bots as `call.llm` when OPENAI_API_KEY is set. Works with OpenAI and with local
 * servers that speak the same API (llama.cpp, vLLM, Ollama's /v1).
 */
import { PatchbayError, isRetryableStatus, errorMessage } from '../core/errors.js';

/** The worker's LLM settings (from the config; sent in `init`). */
export interface LlmInit {
  baseUrl: string;
  model: string;
  /** Never logged. */
  apiKey: string;
  timeoutMs: number;
}

export type ChatMessage =
  | { role: 'system' | 'user'; content: string }
  | { role: 'assistant'; content: string; tool_calls?: ToolCall[] }
  | { role: 'tool'; content: string; tool_call_id: string };

/** A function the model may call (OpenAI `tools: [{type: 'function', function}]`). */
export interface ToolSpec {
  name: string;
  description?: string;
  /** JSON Schema of the arguments. */
  parameters: Record<string, unknown>;
}

/** A function call the model made; `arguments` is the JSON text the model produced. */
export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface StreamOptions extends ChatOptions {
  tools?: ToolSpec[];
}

/**
 * A streaming answer: iterate it for the text as it arrives (hand it straight to `call.say()`),
 * then read `text` (the whole reply) and `toolCalls`. `abort()` cancels the request; `say()` calls
 * it on barge-in and hang-up.
 */
export interface LlmStream extends AsyncIterable<string> {
  /** The whole text, once the stream ended (rejects with `LlmError` when it failed). */
  readonly text: Promise<string>;
  /** The tool calls the model made (empty when none), once the stream ended. */
  readonly toolCalls: Promise<ToolCall[]>;
  abort(reason?: unknown): void;
}

export interface ChatOptions {
  /** Aborts the request (pass `call.signal`). */
  signal?: AbortSignal;
  maxTokens?: number;
  temperature?: number;
}

export interface LlmProvider {
  readonly model: string;
  /** The assistant's reply to `messages`. Rejects with `LlmError`. */
  chat(messages: ChatMessage[], opts?: ChatOptions): Promise<string>;
  /** The reply as it is generated (server-sent events, `stream: true`). Iterate once. */
  stream(messages: ChatMessage[], opts?: StreamOptions): LlmStream;
}

export class LlmError extends PatchbayError {
  override name = 'LlmError';
  readonly status: number | undefined;
  constructor(message: string, opts: { status?: number; retryable: boolean; cause?: unknown }) {
    super(opts.status === undefined ? 'llm_network' : `llm_http_${opts.status}`, message, opts);
    this.status = opts.status;
  }
}

export function openAiCompatibleLlm(init: LlmInit): LlmProvider {
  const url = `${init.baseUrl.replace(/\/$/, '')}/chat/completions`;
  return {
    model: init.model,
    stream: (messages, opts = {}) => openStream(url, init, messages, opts),
    async chat(messages, opts = {}) {
      const signal = AbortSignal.any([AbortSignal.timeout(init.timeoutMs), ...(opts.signal ? [opts.signal] : [])]);
      let res: Response;
      try {
        res = await fetch(url, {
          method: 'POST',
          headers: { authorization: `Bearer ${init.apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({
            model: init.model,
            messages,
            ...(opts.maxTokens ? { max_tokens: opts.maxTokens } : {}),
            ...(opts.temperature !== undefined ? { temperature: opts.temperature } : {}),
          }),
          signal,
        });
      } catch (err) {
        throw new LlmError(`chat request failed: ${errorMessage(err)}`, { retryable: true, cause: err });
      }
      const text = await res.text().catch(() => '');
      if (!res.ok) {
        throw new LlmError(`chat endpoint answered ${res.status}: ${text.slice(0, 200)}`, {
          status: res.status,
          retryable: isRetryableStatus(res.status),
        });
      }
      let body: { choices?: Array<{ message?: { content?: unknown } }> };
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        throw new LlmError('chat endpoint answered with invalid JSON', { status: res.status, retryable: false });
      }
      const content = body.choices?.[0]?.message?.content;
      if (typeof content !== 'string')
        throw new LlmError('chat endpoint answered without choices[0].message.content', { status: res.status, retryable: false });
      return content.trim();
    },
  };
}

interface StreamDelta {
  content?: unknown;
  tool_calls?: Array<{ index?: number; id?: string; function?: { name?: string; arguments?: string } }>;
}

/** Server-sent events of an OpenAI-compatible chat stream, as text pieces plus collected tool calls. */
function openStream(url: string, init: LlmInit, messages: ChatMessage[], opts: StreamOptions): LlmStream {
  const ac = new AbortController();
  const signal = AbortSignal.any([ac.signal, AbortSignal.timeout(init.timeoutMs), ...(opts.signal ? [opts.signal] : [])]);
  let resolveText!: (t: string) => void;
  let rejectText!: (e: unknown) => void;
  const text = new Promise<string>((res, rej) => ((resolveText = res), (rejectText = rej)));
  let resolveCalls!: (c: ToolCall[]) => void;
  const toolCalls = new Promise<ToolCall[]>((res) => (resolveCalls = res));
  text.catch(() => undefined);
  let started = false;
  let all = '';
  const calls = new Map<number, ToolCall>();

  async function* run(): AsyncGenerator<string> {
    try {
      let res: Response;
      try {
        res = await fetch(url, {
          method: 'POST',
          headers: { authorization: `Bearer ${init.apiKey}`, 'content-type': 'application/json', accept: 'text/event-stream' },
          body: JSON.stringify({
            model: init.model,
            messages,
            stream: true,
            ...(opts.tools?.length ? { tools: opts.tools.map((t) => ({ type: 'function', function: t })) } : {}),
            ...(opts.maxTokens ? { max_tokens: opts.maxTokens } : {}),
            ...(opts.temperature !== undefined ? { temperature: opts.temperature } : {}),
          }),
          signal,
        });
      } catch (err) {
        throw new LlmError(`chat stream failed: ${errorMessage(err)}`, { retryable: true, cause: err });
      }
      if (!res.ok || !res.body) {
        const body = (await res.text().catch(() => '')).slice(0, 200);
        throw new LlmError(`chat endpoint answered ${res.status}: ${body}`, {
          status: res.status,
          retryable: isRetryableStatus(res.status),
        });
      }
      const decoder = new TextDecoder();
      let buf = '';
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (!line.startsWith('data:')) continue;
          const data = line.slice(5).trim();
          if (data === '[DONE]') return;
          let ev: { choices?: Array<{ delta?: StreamDelta }> };
          try {
            ev = JSON.parse(data) as typeof ev;
          } catch {
            throw new LlmError('chat stream sent an event that is not JSON', { retryable: false });
          }
          const delta = ev.choices?.[0]?.delta;
          for (const tc of delta?.tool_calls ?? []) {
            const i = tc.index ?? 0;
            const cur = calls.get(i) ?? { id: '', type: 'function' as const, function: { name: '', arguments: '' } };
            if (tc.id) cur.id = tc.id;
            if (tc.function?.name) cur.function.name += tc.function.name;
            if (tc.function?.arguments) cur.function.arguments += tc.function.arguments;
            calls.set(i, cur);
          }
          if (typeof delta?.content === 'string' && delta.content.length > 0) {
            all += delta.content;
            yield delta.content;
          }
        }
      }
    } catch (err) {
      const e =
        err instanceof LlmError
          ? err
          : new LlmError(`chat stream broke: ${errorMessage(err)}`, { retryable: !ac.signal.aborted, cause: err });
      // Cancelled by us (barge-in, hang-up): the consumer asked for it; `text` keeps what arrived.
      if (ac.signal.aborted || opts.signal?.aborted) return;
      rejectText(e);
      throw e;
    } finally {
      ac.abort();
      resolveText(all);
      resolveCalls([...calls.values()]);
    }
  }

  const gen = run();
  return {
    text,
    toolCalls,
    abort(reason?: unknown) {
      ac.abort(reason);
      // Settle now with what arrived: the consumer may have stopped pulling (the generator is
      // parked at a yield and would never reach its finally).
      started = true;
      resolveText(all);
      resolveCalls([...calls.values()]);
      void gen.return(undefined);
    },
    [Symbol.asyncIterator]() {
      if (started) throw new TypeError('an LLM stream can be iterated once');
      started = true;
      return gen;
    },
  };
}
