/**
 * The bots' LLM (`call.llm`), through the Vercel AI SDK (`ai`): one streaming API over OpenAI,
 * any OpenAI-compatible server (llama.cpp, vLLM, Ollama's /v1), Anthropic and Google. Why this
 * library and not a client of our own: docs/voice.md.
 *
 * The bot-facing shapes (`ChatMessage`, `ToolSpec`, `ToolCall`) stay the OpenAI chat shapes the
 * bots already use; they are translated to the SDK's messages here. A tool given with `execute` is
 * run by the loop and its result fed back to the model until it answers (at most `maxSteps`
 * rounds); a tool without `execute` ends the stream with its call in `toolCalls`, for the bot to
 * handle.
 *
 * This module holds the shapes; the library itself (`llm-sdk.ts`) is loaded by `loadLlm` (llm-load.ts)
 * only when an LLM is configured: importing it costs ≈ 1–2 s of a worker's start here.
 */
import type { JSONSchema7 } from 'ai';
import { PatchbayError } from '../core/errors.js';

/** The LLM vendors `LLM_PROVIDER` (or a bot's `llm`) may name. */
export const LLM_PROVIDERS = ['openai', 'openai-compatible', 'anthropic', 'google'] as const;
export type LlmProviderName = (typeof LLM_PROVIDERS)[number];

/** The worker's LLM settings (from the config; sent in `init`). */
export interface LlmInit {
  provider: LlmProviderName;
  /** The vendor's API base (`OPENAI_BASE_URL`, `ANTHROPIC_BASE_URL`, …); absent → the vendor's own. */
  baseUrl?: string | undefined;
  model: string;
  /** Never logged. */
  apiKey: string;
  timeoutMs: number;
}

export type ChatMessage =
  | { role: 'system' | 'user'; content: string }
  | { role: 'assistant'; content: string; tool_calls?: ToolCall[] }
  | { role: 'tool'; content: string; tool_call_id: string };

/** A function the model may call. */
export interface ToolSpec {
  name: string;
  description?: string;
  /** JSON Schema of the arguments. */
  parameters: JSONSchema7;
  /**
   * Runs the call and returns what the model is told (a string, or anything JSON). With it, the
   * stream goes on to the model's answer; without it, the stream ends with the call in `toolCalls`.
   */
  execute?: (args: unknown, ctx: { signal: AbortSignal }) => Promise<unknown>;
}

/** A function call the model made; `arguments` is the JSON text of its arguments. */
export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface ChatOptions {
  /** Aborts the request (pass `call.signal`). */
  signal?: AbortSignal;
  maxTokens?: number;
  temperature?: number;
}

export interface StreamOptions extends ChatOptions {
  tools?: ToolSpec[];
  /** Rounds of tool calls the loop runs before it stops (default 5). */
  maxSteps?: number;
}

/**
 * A streaming answer: iterate it for the text as it arrives (hand it straight to `call.say()`),
 * then read `text` (the whole reply) and `toolCalls`. `abort()` cancels the request; `say()` calls
 * it on barge-in and hang-up.
 */
export interface LlmStream extends AsyncIterable<string> {
  /** The whole text, once the stream ended (rejects with `LlmError` when it failed). */
  readonly text: Promise<string>;
  /** The calls of tools without `execute` that the model made (empty when none), once the stream ended. */
  readonly toolCalls: Promise<ToolCall[]>;
  abort(reason?: unknown): void;
}

export interface LlmProvider {
  readonly provider: LlmProviderName;
  readonly model: string;
  /** The assistant's reply to `messages`. Rejects with `LlmError`. */
  chat(messages: ChatMessage[], opts?: ChatOptions): Promise<string>;
  /** The reply as it is generated. Iterate once. */
  stream(messages: ChatMessage[], opts?: StreamOptions): LlmStream;
  /** Runs the SDK's whole answer path once on a canned local answer (no request leaves the process). */
  warm(): Promise<void>;
}

export class LlmError extends PatchbayError {
  override name = 'LlmError';
  readonly status: number | undefined;
  constructor(message: string, opts: { status?: number | undefined; retryable: boolean; cause?: unknown }) {
    super(opts.status === undefined ? 'llm_network' : `llm_http_${opts.status}`, message, opts);
    this.status = opts.status;
  }
}
