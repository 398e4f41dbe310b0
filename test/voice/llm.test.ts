/**
 * The bots' LLM through the Vercel AI SDK (src/voice/llm.ts), driven against local stand-ins of
 * OpenAI's Chat Completions and Anthropic's Messages streaming APIs (src/testing/llm-standins.ts)
 * over real HTTP: streaming with latency, the tool loop (a tool result changes the answer), abort,
 * and the vendors' refusals as typed errors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLlmStandIns, type LlmStandIns, type StandInTurn } from '../../src/testing/llm-standins.js';
import { createLlm } from '../../src/voice/llm-sdk.js';
import { LlmError, LLM_PROVIDERS, type LlmProviderName } from '../../src/voice/llm.js';

const KEY = 'sk-standin-key';
let s: LlmStandIns;

/** Asked about opening hours, the model calls the tool; once it has the tool's answer, it says it. */
function reply(turns: StandInTurn[], tools: string[]) {
  const tool = turns.findLast((t) => t.role === 'tool');
  if (tool) return `We are open ${tool.text}.`;
  const last = turns.findLast((t) => t.role === 'user')?.text ?? '';
  if (/hours/.test(last) && tools.includes('opening_hours')) return { toolCall: { name: 'opening_hours', arguments: { day: 'monday' } } };
  return `You said: ${last}`;
}

beforeAll(async () => {
  s = await startLlmStandIns({ apiKey: KEY, firstTokenMs: 150, tokensPerSec: 40, reply });
});
afterAll(() => s?.close());

const vendors: Array<{ provider: LlmProviderName; vendor: 'openai' | 'anthropic' }> = [
  { provider: 'openai', vendor: 'openai' },
  { provider: 'openai-compatible', vendor: 'openai' },
  { provider: 'anthropic', vendor: 'anthropic' },
];
const llmFor = (provider: LlmProviderName, apiKey = KEY) =>
  createLlm({ provider, baseUrl: s.baseUrl, apiKey, model: 'test-model', timeoutMs: 10_000 });

describe.each(vendors)('$provider (stand-in: $vendor)', ({ provider, vendor }) => {
  it('streams the answer piece by piece, after the first-token latency', async () => {
    const before = s.requests.length;
    const t0 = Date.now();
    const st = llmFor(provider).stream([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'one two three four five six' },
    ]);
    const pieces: Array<{ text: string; atMs: number }> = [];
    for await (const text of st) pieces.push({ text, atMs: Date.now() - t0 });
    expect(await st.text).toBe('You said: one two three four five six');
    expect(pieces.length).toBeGreaterThan(4);
    expect(pieces[0]!.atMs).toBeGreaterThanOrEqual(150);
    // Streamed: the first piece came well before the last.
    expect(pieces.at(-1)!.atMs - pieces[0]!.atMs).toBeGreaterThan(100);
    const req = s.requests.slice(before).find((r) => r.vendor === vendor)!;
    expect(req.status).toBe(200);
    expect(req.turns[0]).toEqual({ role: 'system', text: 'Be brief.' });
  });

  it('a tool with execute: its result is fed back and the model answers with it', async () => {
    const before = s.requests.length;
    const calls: unknown[] = [];
    const st = llmFor(provider).stream([{ role: 'user', content: 'what are your opening hours?' }], {
      tools: [
        {
          name: 'opening_hours',
          description: 'Opening hours for a day',
          parameters: { type: 'object', properties: { day: { type: 'string' } }, required: ['day'] },
          execute: async (args) => {
            calls.push(args);
            return '9 to 5';
          },
        },
      ],
    });
    let spoken = '';
    for await (const t of st) spoken += t;
    expect(calls).toEqual([{ day: 'monday' }]);
    expect(spoken).toBe('We are open 9 to 5.');
    expect(await st.toolCalls).toEqual([]);
    const reqs = s.requests.slice(before);
    expect(reqs).toHaveLength(2);
    expect(reqs[1]!.turns.at(-1)).toEqual({ role: 'tool', text: expect.stringContaining('9 to 5') });
  });

  it('a tool without execute ends the stream with its call, for the bot', async () => {
    const st = llmFor(provider).stream([{ role: 'user', content: 'opening hours please' }], {
      tools: [{ name: 'opening_hours', parameters: { type: 'object', properties: { day: { type: 'string' } } } }],
    });
    for await (const _ of st) void _;
    const [call] = await st.toolCalls;
    expect(call).toMatchObject({ type: 'function', function: { name: 'opening_hours' } });
    expect(JSON.parse(call!.function.arguments)).toEqual({ day: 'monday' });
  });

  it('abort() mid-stream closes the request and keeps the text so far', async () => {
    const before = s.requests.length;
    const st = llmFor(provider).stream([{ role: 'user', content: 'a b c d e f g h i j k l m n o p' }]);
    let n = 0;
    for await (const _ of st) if (++n === 3) st.abort();
    const text = await st.text;
    expect(text.length).toBeGreaterThan(0);
    expect('You said: a b c d e f g h i j k l m n o p'.startsWith(text)).toBe(true);
    expect(text.length).toBeLessThan(30);
    await expect.poll(() => s.requests.slice(before)[0]?.aborted, { timeout: 3_000 }).toBe(true);
  });

  it('the vendor refuses a bad key (401, not retryable) and a rate limit (429, retryable)', async () => {
    const bad = llmFor(provider, 'sk-wrong');
    await expect(bad.chat([{ role: 'user', content: 'hi' }])).rejects.toMatchObject({
      status: 401,
      retryable: false,
      code: 'llm_http_401',
    });
    s.failNext(429);
    const st = llmFor(provider).stream([{ role: 'user', content: 'hi' }]);
    const err = await (async () => {
      for await (const _ of st) void _;
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LlmError);
    expect(err).toMatchObject({ status: 429, retryable: true });
    await expect(st.text).rejects.toBeInstanceOf(LlmError);
  });
});

describe('the Anthropic stand-in refuses what Anthropic refuses', () => {
  it('no anthropic-version header, no max_tokens: 400 invalid_request_error', async () => {
    const post = (headers: Record<string, string>, body: unknown) =>
      fetch(`${s.baseUrl}/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': KEY, ...headers },
        body: JSON.stringify(body),
      });
    const msgs = [{ role: 'user', content: 'hi' }];
    const noVersion = await post({}, { model: 'm', max_tokens: 10, messages: msgs, stream: true });
    expect(noVersion.status).toBe(400);
    expect(await noVersion.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: /anthropic-version/ } });
    const noMax = await post({ 'anthropic-version': '2023-06-01' }, { model: 'm', messages: msgs, stream: true });
    expect(noMax.status).toBe(400);
    expect(await noMax.json()).toMatchObject({ error: { message: /max_tokens/ } });
  });
});

describe('warm-up', () => {
  it.each(LLM_PROVIDERS)('%s: the SDK reads a canned answer locally (no request leaves the process)', async (provider) => {
    const before = s.requests.length;
    await createLlm({ provider, apiKey: 'k', baseUrl: 'http://127.0.0.1:9/v1', model: 'm', timeoutMs: 5_000 }).warm();
    expect(s.requests.length).toBe(before);
  });
});

describe('LLM configuration', () => {
  it('LLM_PROVIDER picks the vendor, its key and base URL; unset, the first vendor with a key; a named vendor needs its key', async () => {
    const { loadConfig } = await import('../../src/core/config.js');
    expect(loadConfig({ ANTHROPIC_API_KEY: 'a-key', ANTHROPIC_BASE_URL: 'http://127.0.0.1:9/v1' }).llm).toEqual({
      provider: 'anthropic',
      apiKey: 'a-key',
      baseUrl: 'http://127.0.0.1:9/v1',
      model: 'claude-haiku-4-5',
      timeoutMs: 10_000,
    });
    expect(loadConfig({ OPENAI_API_KEY: 'o', ANTHROPIC_API_KEY: 'a' }).llm).toMatchObject({ provider: 'openai', apiKey: 'o' });
    expect(loadConfig({ LLM_PROVIDER: 'google', GOOGLE_GENERATIVE_AI_API_KEY: 'g', LLM_MODEL: 'm' }).llm).toMatchObject({
      provider: 'google',
      model: 'm',
    });
    expect(() => loadConfig({ LLM_PROVIDER: 'anthropic', OPENAI_API_KEY: 'o' })).toThrow(/LLM_PROVIDER=anthropic needs ANTHROPIC_API_KEY/);
    expect(() => loadConfig({ LLM_PROVIDER: 'cohere' })).toThrow(/LLM_PROVIDER/);
  });
});
