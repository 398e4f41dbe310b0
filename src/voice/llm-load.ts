import type { Logger } from 'pino';
import type { LlmInit, LlmProvider } from './llm.js';

/**
 * The LLM client for `init`, with the library loaded now (it is not imported by anything else).
 * The library's own warnings go to `logger`.
 */
export async function loadLlm(init: LlmInit, opts: { logger?: Pick<Logger, 'warn'> } = {}): Promise<LlmProvider> {
  const { createLlm } = await import('./llm-sdk.js');
  return createLlm(init, opts);
}
