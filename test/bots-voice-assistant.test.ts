import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import assistant, { ruleReply } from '../bots/voice-assistant.js';
import { createBotHarness, runBotTest, type BotHarness } from '../src/sdk/testing/index.js';

describe('voice-assistant bot, offline (rule-based)', () => {
  let h: BotHarness;
  beforeAll(async () => {
    h = await createBotHarness({ firstBot: assistant });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('answers what the caller says and hangs up on "bye"', async () => {
    const r = await h.run(assistant, {
      caller: [
        { waitFor: 'say', match: /how can I help/ },
        { say: 'I have a question about my billing' },
        { waitFor: 'say', match: /invoice/ },
        { say: 'when are you open' },
        { waitFor: 'say', match: /Monday to Friday/ },
        { say: 'ok bye' },
      ],
    });
    expect(r.heard).toEqual(['I have a question about my billing', 'when are you open', 'ok bye']);
    expect(r.said).toEqual([
      'Hi, this is the patchbay assistant. How can I help?',
      ruleReply('I have a question about my billing'),
      ruleReply('when are you open'),
      'Goodbye!',
    ]);
    expect(r.hangup).toBe('conversation over');
    expect(r.outcome).toBe('completed');
  }, 30_000);

  it('asks once after a silence, then says goodbye after the second', async () => {
    const r = await h.run(assistant, { config: { listenTimeoutMs: 500 }, caller: [{ waitFor: 'say', match: /goodbye/ }] });
    expect(r.heard).toEqual([]);
    expect(r.said).toEqual(['Hi, this is the patchbay assistant. How can I help?', 'Are you still there?', 'Goodbye!']);
    expect(r.outcome).toBe('completed');
  }, 30_000);
});

describe('voice-assistant bot with an OpenAI-compatible LLM', () => {
  let server: Server;
  let baseUrl: string;
  const requests: Array<{ auth: string | undefined; body: { model: string; messages: Array<{ role: string; content: string }> } }> = [];
  const read = (req: IncomingMessage) =>
    new Promise<string>((resolve) => {
      let s = '';
      req.on('data', (c: Buffer) => (s += c.toString()));
      req.on('end', () => resolve(s));
    });

  beforeAll(async () => {
    // A stand-in for the external LLM service (not our code): answers chat completions.
    server = createServer(async (req, res) => {
      const body = JSON.parse(await read(req)) as (typeof requests)[number]['body'];
      requests.push({ auth: req.headers.authorization, body });
      const last = body.messages.at(-1)?.content ?? '';
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ choices: [{ message: { role: 'assistant', content: `LLM heard: ${last}` } }] }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  });
  afterAll(async () => {
    await new Promise((r) => server?.close(r));
  });

  it('answers through the LLM endpoint when a key is configured', async () => {
    const r = await runBotTest(assistant, {
      env: { OPENAI_API_KEY: 'sk-test-123', LLM_BASE_URL: baseUrl, LLM_MODEL: 'tiny-model' },
      caller: [{ waitFor: 'say', match: /how can I help/ }, { say: 'tell me a joke' }, { waitFor: 'say', match: /LLM heard/ }, { say: 'bye' }],
    });
    expect(r.said).toContain('LLM heard: tell me a joke');
    expect(r.outcome).toBe('completed');
    expect(requests).toHaveLength(1);
    expect(requests[0]!.auth).toBe('Bearer sk-test-123');
    expect(requests[0]!.body.model).toBe('tiny-model');
    expect(requests[0]!.body.messages[0]!.role).toBe('system');
    expect(requests[0]!.body.messages.at(-1)).toEqual({ role: 'user', content: 'tell me a joke' });
  }, 30_000);
});
