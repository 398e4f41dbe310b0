/** The bots' LLM settings (`Config['llm']`), derived from the environment `config.ts` read. */
import { ConfigError } from './config-error.js';
import type { Env } from './config-schema.js';

export interface LlmConfig {
  provider: NonNullable<Env['LLM_PROVIDER']>;
  apiKey: string;
  baseUrl: string | undefined;
  model: string;
  timeoutMs: number;
}

const LLM_KEYS = {
  openai: 'OPENAI_API_KEY',
  'openai-compatible': 'OPENAI_API_KEY',
  anthropic: 'ANTHROPIC_API_KEY',
  google: 'GOOGLE_GENERATIVE_AI_API_KEY',
} as const satisfies Record<NonNullable<Env['LLM_PROVIDER']>, keyof Env>;
const LLM_DEFAULT_MODELS: Record<NonNullable<Env['LLM_PROVIDER']>, string> = {
  openai: 'gpt-4o-mini',
  'openai-compatible': 'gpt-4o-mini',
  anthropic: 'claude-haiku-4-5',
  google: 'gemini-2.5-flash',
};

/** LLM_PROVIDER (or the first vendor with a key) with its key, base URL and model; undefined without a key. */
export function llmConfig(e: Env): LlmConfig | undefined {
  const provider =
    e.LLM_PROVIDER ??
    (e.OPENAI_API_KEY ? 'openai' : e.ANTHROPIC_API_KEY ? 'anthropic' : e.GOOGLE_GENERATIVE_AI_API_KEY ? 'google' : undefined);
  if (provider === undefined) return undefined;
  const keyName = LLM_KEYS[provider];
  const apiKey = e[keyName];
  if (!apiKey) throw new ConfigError(`invalid configuration: LLM_PROVIDER=${provider} needs ${keyName}`);
  const baseUrl = provider === 'anthropic' ? e.ANTHROPIC_BASE_URL : provider === 'google' ? e.GOOGLE_BASE_URL : e.LLM_BASE_URL;
  return { provider, apiKey, baseUrl, model: e.LLM_MODEL ?? LLM_DEFAULT_MODELS[provider], timeoutMs: e.LLM_TIMEOUT_MS };
}
