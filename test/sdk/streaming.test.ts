import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLlm } from '../../src/voice/llm-sdk.js';
import { sentences } from '../../src/voice/sentences.js';
import { openAiTts } from '../../src/voice/tts.js';
import { runBotTest } from '../../src/testing/index.js';
import { startVoiceStandIns, type VoiceStandIns } from '../../src/testing/voice-standins.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const streamer = path.join(here, '../fixtures/bots/streamer.ts');

async function* from(pieces: string[]): AsyncGenerator<string> {
  for (const p of pieces) yield p;
}
async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of it) out.push(v);
  return out;
}

describe('sentences(): streamed text cut into speakable pieces', () => {
  it('cuts the first piece early, then whole sentences, and keeps every character', async () => {
    const text = 'Sure thing, our shop opens at nine. It closes at six on weekdays! Anything else?';
    const tokens = text.match(/\S+\s*/g)!;
    const out = await all(sentences(from(tokens)));
    expect(out[0]).toBe('Sure');
    expect(out.slice(1)).toEqual(['thing, our shop opens at nine.', 'It closes at six on weekdays!', 'Anything else?']);
    const later = await all(sentences(from(tokens), { firstPieceMinChars: 8 }));
    expect(later.slice(0, 2)).toEqual(['Sure thing,', 'our shop opens at nine.']);
    expect(out.join(' ')).toBe(text);
  });

  it('cuts an endless sentence at clauses and at a hard maximum', async () => {
    const long = `${'word '.repeat(30)}then, ${'more '.repeat(60)}`;
    const out = await all(sentences(from([long]), { firstPieceMinChars: 1000 }));
    expect(out.every((p) => p.length <= 200)).toBe(true);
    expect(out.join(' ').replace(/\s+/g, ' ')).toBe(long.trim().replace(/\s+/g, ' '));
  });
});

describe('LLM and TTS streams against OpenAI-compatible stand-ins', () => {
  let s: VoiceStandIns;
  beforeAll(async () => {
    s = await startVoiceStandIns({
      firstTokenMs: 50,
      tokensPerSec: 100,
      reply: (msgs, tools) =>
        tools.length > 0 && /hours/.test(msgs.at(-1)?.content ?? '')
          ? { toolCall: { name: 'opening_hours', arguments: '{"day":"monday"}' } }
          : 'One. Two three four. Five six seven eight nine ten.',
    });
  });
  afterAll(() => s?.close());

  const llm = (provider: 'openai' | 'openai-compatible' = 'openai') =>
    createLlm({ provider, baseUrl: s.baseUrl, apiKey: 'k', model: 'm', timeoutMs: 5_000 });

  // openai-compatible refuses a stream without a finish_reason, as OpenAI always sends one.
  it.each(['openai', 'openai-compatible'] as const)('%s: yields the text as it arrives and collects the whole reply', async (provider) => {
    const st = llm(provider).stream([{ role: 'user', content: 'count' }]);
    const pieces = await all(st);
    expect(pieces.length).toBeGreaterThan(3);
    expect(await st.text).toBe('One. Two three four. Five six seven eight nine ten.');
    expect(await st.toolCalls).toEqual([]);
    expect(s.requests.at(-1)!.body.stream).toBe(true);
  });

  it('collects tool calls split over several events', async () => {
    const st = llm().stream([{ role: 'user', content: 'what are your hours' }], {
      tools: [{ name: 'opening_hours', parameters: { type: 'object', properties: { day: { type: 'string' } } } }],
    });
    expect(await all(st)).toEqual([]);
    expect(await st.toolCalls).toEqual([
      { id: 'call_1', type: 'function', function: { name: 'opening_hours', arguments: '{"day":"monday"}' } },
    ]);
    const body = s.requests.at(-1)!.body as { tools: Array<{ type: string; function: { name: string } }> };
    expect(body.tools[0]).toMatchObject({ type: 'function', function: { name: 'opening_hours' } });
  });

  it('abort() closes the request mid-stream and keeps the text so far', async () => {
    const st = llm().stream([{ role: 'user', content: 'count' }]);
    const it = st[Symbol.asyncIterator]();
    await it.next();
    st.abort();
    const rest = await all({ [Symbol.asyncIterator]: () => it });
    expect(rest.length).toBeLessThan(8);
    const text = await st.text;
    expect('One. Two three four. Five six seven eight nine ten.'.startsWith(text)).toBe(true);
    await expect.poll(() => s.requests.at(-1)!.aborted, { timeout: 2_000 }).toBe(true);
  });

  it('speech streams PCM in pieces (24 kHz in, resampled)', async () => {
    const tts = openAiTts({ baseUrl: s.baseUrl, apiKey: 'k', model: 'm', sampleRate: 16_000 });
    const chunks = await all(tts.synthesizeStream!('hello there, this is a test'));
    expect(chunks.length).toBeGreaterThan(1);
    const samples = chunks.reduce((n, c) => n + c.pcm.length, 0);
    // 27 characters × 2 ms at 16 kHz ≈ 864 samples.
    expect(samples).toBeGreaterThan(700);
    expect(samples).toBeLessThan(1000);
  });
});

describe('call.say(stream) in a real call', () => {
  let s: VoiceStandIns;
  const reply =
    'Sure, let me check that for you. Our shop opens at nine in the morning. It closes at six in the evening. We are closed on Sundays and holidays.';
  beforeAll(async () => {
    s = await startVoiceStandIns({ firstTokenMs: 200, tokensPerSec: 20, firstChunkMs: 100, reply: () => reply });
  });
  afterAll(() => s?.close());
  const env = () => ({ OPENAI_API_KEY: 'sk-standin', LLM_BASE_URL: s.baseUrl, TTS_PROVIDER: 'openai', TTS_BASE_URL: s.baseUrl });

  it('speaks the first piece while the LLM is still generating, and every piece in order', async () => {
    const before = s.requests.length;
    const r = await runBotTest(streamer, { env: env(), caller: [{ waitFor: 'say', match: /done/ }] });
    expect(r.outcome).toBe('completed');
    const spoken = r.said.slice(0, -1);
    expect(spoken.length).toBeGreaterThan(3);
    expect(spoken.join(' ')).toBe(reply);
    expect(r.said.at(-1)).toBe(`[done ${reply.length}]`);
    // Streamed speech arrives in many audio pieces; the caller hears each piece's words once.
    expect(r.transcript.filter((l) => l.who === 'bot').map((l) => l.text)).toEqual(r.said);
    const chat = s.requests.slice(before).find((q) => q.kind === 'chat')!;
    const firstSay = r.events.find((e) => e.kind === 'say')!;
    // Streaming: the first words were on their way long before the LLM finished (≈ 1.5 s of tokens).
    expect(firstSay.atMs).toBeLessThan(chat.endedAtMs! - 500);
    expect(s.requests.slice(before).filter((q) => q.kind === 'speech' && q.body.response_format === 'pcm').length).toBe(spoken.length);
  }, 30_000);

  it('barge-in stops the playout and aborts the LLM request', async () => {
    const before = s.requests.length;
    const r = await runBotTest(streamer, {
      env: env(),
      config: { interruptible: true },
      caller: [{ waitFor: 'say', match: /^Sure/ }, { press: '1' }, { waitFor: 'say', match: /done/ }],
    });
    expect(r.outcome).toBe('completed');
    const chat = s.requests.slice(before).find((q) => q.kind === 'chat')!;
    expect(chat.aborted).toBe(true);
    const done = /\[done (\d+)\]/.exec(r.said.at(-1)!);
    expect(Number(done![1])).toBeLessThan(reply.length);
    expect(r.said.join(' ')).not.toContain('holidays');
  }, 30_000);
});
