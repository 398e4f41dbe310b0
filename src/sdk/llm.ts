/**
 * A small client for OpenAI-compatible chat completions (`POST {baseUrl}/chat/completions`),
 * offered to bots as `call.llm` when OPENAI_API_KEY is set. Works with OpenAI and with local
 * servers that speak the same API (llama.cpp, vLLM, Ollama's /v1).
 */
import type { LlmInit } from '../ipc/protocol.js';
import { PatchbayError, isRetryableStatus } from '../errors.js';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
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
        throw new LlmError(`chat request failed: ${(err as Error).message}`, { retryable: true, cause: err });
      }
      const text = await res.text().catch(() => '');
      if (!res.ok) {
        throw new LlmError(`chat endpoint answered ${res.status}: ${text.slice(0, 200)}`, { status: res.status, retryable: isRetryableStatus(res.status) });
      }
      let body: { choices?: Array<{ message?: { content?: unknown } }> };
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        throw new LlmError('chat endpoint answered with invalid JSON', { status: res.status, retryable: false });
      }
      const content = body.choices?.[0]?.message?.content;
      if (typeof content !== 'string') throw new LlmError('chat endpoint answered without choices[0].message.content', { status: res.status, retryable: false });
      return content.trim();
    },
  };
}
