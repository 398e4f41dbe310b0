import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config.js';
import { createLogger } from '../../src/core/logger.js';
import { LlmError } from '../../src/voice/llm.js';
import { createLlm } from '../../src/voice/llm-sdk.js';
import {
  createTts,
  espeakAvailable,
  espeakTts,
  openAiTts,
  resample,
  resolveTtsProvider,
  textOnlyTts,
  TtsError,
} from '../../src/voice/tts.js';
import { encodeWav } from '../../src/voice/wav.js';

const logger = createLogger({ level: 'silent' });
const HAVE_ESPEAK = espeakAvailable();
if (!HAVE_ESPEAK) console.warn('espeak-ng is not installed (apt-get install espeak-ng): the espeak TTS tests are skipped');

/** Root-mean-square level of PCM16, 0..1. */
const rms = (pcm: Int16Array) => Math.sqrt(pcm.reduce((s, v) => s + (v / 32768) ** 2, 0) / Math.max(1, pcm.length));

describe('espeak-ng TTS', () => {
  it.skipIf(!HAVE_ESPEAK)('speaks text as 16 kHz PCM whose length grows with the text', async () => {
    const tts = espeakTts({ sampleRate: 16_000 });
    const short = await tts.synthesize('Hello.');
    const long = await tts.synthesize('Hello, you called one five five five, zero zero zero, one zero zero zero.');
    expect(short.sampleRate).toBe(16_000);
    expect(short.pcm.length).toBeGreaterThan(16_000 * 0.3);
    expect(long.pcm.length).toBeGreaterThan(short.pcm.length * 3);
    expect(rms(long.pcm)).toBeGreaterThan(0.01); // not silence
  });

  it.skipIf(!HAVE_ESPEAK)('reads option-like text as words, not as arguments', async () => {
    const a = await espeakTts().synthesize('--version -v xx');
    expect(a.pcm.length).toBeGreaterThan(1_000);
  });

  it.skipIf(!HAVE_ESPEAK)('stops when the call ends (abort)', async () => {
    const ctl = new AbortController();
    const p = espeakTts().synthesize('word '.repeat(500), ctl.signal);
    ctl.abort();
    await expect(p).rejects.toThrow();
  });

  it('a missing binary is a TtsError, and createTts falls back to text-only', async () => {
    await expect(espeakTts({ espeakPath: '/nonexistent/espeak-ng' }).synthesize('hi')).rejects.toThrow(TtsError);
    expect(
      createTts({ provider: 'espeak', sampleRate: 16_000, espeakPath: '/nonexistent/espeak-ng' }, { callClient: 'daily', logger }).name,
    ).toBe('text');
  });

  it('auto picks text-only with the emulator and espeak-ng (when installed) with Daily', () => {
    expect(createTts({ provider: 'auto', sampleRate: 16_000, espeakPath: 'espeak-ng' }, { callClient: 'emulator', logger }).name).toBe(
      'text',
    );
    expect(createTts({ provider: 'auto', sampleRate: 16_000, espeakPath: 'espeak-ng' }, { callClient: 'daily', logger }).name).toBe(
      HAVE_ESPEAK ? 'espeak' : 'text',
    );
    expect(createTts(undefined, { callClient: 'daily', logger })).toBe(textOnlyTts);
  });

  it('the service resolves auto once, and refuses a missing espeak-ng with a fallback', () => {
    const ctx = { espeakPath: 'espeak-ng', logger };
    expect(resolveTtsProvider('auto', { ...ctx, callClient: 'emulator' })).toBe('text');
    expect(resolveTtsProvider('auto', { ...ctx, callClient: 'daily' })).toBe(HAVE_ESPEAK ? 'espeak' : 'text');
    expect(resolveTtsProvider('espeak', { ...ctx, espeakPath: '/nonexistent/espeak-ng', callClient: 'daily' })).toBe('text');
    expect(resolveTtsProvider('text', { ...ctx, callClient: 'daily' })).toBe('text');
  });
});

describe('resample', () => {
  it('keeps duration and shape', () => {
    const from = 22_050;
    const sine = Int16Array.from({ length: from }, (_, i) => Math.round(10_000 * Math.sin((2 * Math.PI * 440 * i) / from)));
    const out = resample(sine, from, 16_000);
    expect(out.length).toBe(16_000);
    expect(rms(out)).toBeCloseTo(rms(sine), 2);
    expect(resample(sine, 16_000, 16_000)).toBe(sine);
  });
});

describe('OpenAI-compatible services (a local stand-in server)', () => {
  let server: Server;
  let base: string;
  let mode: 'ok' | 'fail' | 'garbage' = 'ok';
  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        if (mode === 'fail') {
          res.statusCode = 429;
          return res.end('{"error":{"message":"slow down"}}');
        }
        if (req.url === '/v1/audio/speech') {
          const { input } = JSON.parse(body) as { input: string };
          // 24 kHz, 10 ms per character.
          res.setHeader('content-type', 'audio/wav');
          return res.end(encodeWav(new Int16Array(input.length * 240).fill(1000), 24_000));
        }
        res.setHeader('content-type', 'application/json');
        res.end(
          mode === 'garbage'
            ? '{"choices":[]}'
            : JSON.stringify({
                id: 'chatcmpl-1',
                object: 'chat.completion',
                created: 1,
                model: 'm',
                choices: [{ index: 0, message: { role: 'assistant', content: ' pong ' }, finish_reason: 'stop' }],
              }),
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  });
  afterAll(async () => {
    await new Promise((r) => server?.close(r));
  });

  it('TTS: decodes the WAV and resamples it', async () => {
    mode = 'ok';
    const a = await openAiTts({ baseUrl: base, apiKey: 'k', model: 'm', sampleRate: 16_000 }).synthesize('0123456789');
    expect(a.sampleRate).toBe(16_000);
    expect(a.pcm.length).toBe(1_600); // 100 ms
  });

  it('LLM: returns the trimmed reply; HTTP errors are typed and say whether to retry', async () => {
    const llm = createLlm({ provider: 'openai', baseUrl: base, apiKey: 'k', model: 'm', timeoutMs: 2_000 });
    mode = 'ok';
    expect(await llm.chat([{ role: 'user', content: 'ping' }])).toBe('pong');
    mode = 'fail';
    const err = await llm.chat([{ role: 'user', content: 'ping' }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LlmError);
    expect(err).toMatchObject({ status: 429, retryable: true, code: 'llm_http_429' });
    mode = 'garbage';
    // A 200 that is not a chat completion is a typed, non-retryable failure, not a reply.
    await expect(llm.chat([{ role: 'user', content: 'ping' }])).rejects.toMatchObject({ name: 'LlmError', retryable: false });
  });
});

describe('espeak-ng on a real call', () => {
  it.skipIf(!HAVE_ESPEAK)(
    'say() plays espeak audio: the next line waits for the real speech length',
    async () => {
      const { runBotTest } = await import('../../src/testing/index.js');
      const { default: greeter } = await import('../../bots/greeter.js');
      const r = await runBotTest(greeter, { env: { TTS_PROVIDER: 'espeak' }, caller: [{ waitFor: 'say', match: /goodbye/ }] });
      expect(r.outcome).toBe('completed');
      const [hello, bye] = r.transcript.filter((l) => l.who === 'bot');
      expect(hello!.text).toBe('Hello! You called 1 5 5 5 0 0 0 1 0 0 0.');
      // espeak-ng says eleven digits one by one: well over the 2.5 s the text-only estimate would give.
      expect(bye!.atMs - hello!.atMs).toBeGreaterThan(3_000);
    },
    40_000,
  );
});

describe('speech and LLM configuration', () => {
  it('defaults: auto TTS at 16 kHz, no LLM', () => {
    const c = loadConfig({});
    expect(c.tts).toMatchObject({ provider: 'auto', sampleRate: 16_000, espeakPath: 'espeak-ng' });
    expect(c.llm).toBeUndefined();
  });

  it('OPENAI_API_KEY enables the LLM; TTS_PROVIDER=openai needs it; bad values name the variable', () => {
    const c = loadConfig({ OPENAI_API_KEY: 'sk-x', LLM_BASE_URL: 'http://127.0.0.1:9/v1', LLM_MODEL: 'm' });
    expect(c.llm).toEqual({ provider: 'openai', apiKey: 'sk-x', baseUrl: 'http://127.0.0.1:9/v1', model: 'm', timeoutMs: 10_000 });
    expect(c.tts.baseUrl).toBe('http://127.0.0.1:9/v1');
    expect(() => loadConfig({ TTS_PROVIDER: 'openai' })).toThrow(/TTS_PROVIDER=openai needs OPENAI_API_KEY/);
    expect(() => loadConfig({ TTS_PROVIDER: 'festival' })).toThrow(/TTS_PROVIDER/);
    expect(() => loadConfig({ TTS_SAMPLE_RATE: '100' })).toThrow(/TTS_SAMPLE_RATE/);
  });
});
