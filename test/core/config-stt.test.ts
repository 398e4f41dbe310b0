import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/core/config.js';
import { deepgram, defineBot, openai } from '../../src/sdk/index.js';

describe('speech-to-text settings', () => {
  it('default: Daily’s transcription, falling back to it; no vendor without its key', () => {
    expect(loadConfig({}).stt).toEqual({
      provider: 'daily',
      fallback: 'daily',
      deepgram: undefined,
      assemblyai: undefined,
      openai: undefined,
    });
  });

  it('STT_PROVIDER=deepgram takes DEEPGRAM_API_KEY and DEEPGRAM_BASE_URL', () => {
    const c = loadConfig({
      STT_PROVIDER: 'deepgram',
      DEEPGRAM_API_KEY: 'k',
      DEEPGRAM_BASE_URL: 'http://127.0.0.1:9',
      STT_FALLBACK: 'none',
    });
    expect(c.stt).toMatchObject({ provider: 'deepgram', fallback: 'none', deepgram: { apiKey: 'k', baseUrl: 'http://127.0.0.1:9' } });
    const a = loadConfig({ STT_PROVIDER: 'assemblyai', ASSEMBLYAI_API_KEY: 'a', ASSEMBLYAI_BASE_URL: 'wss://127.0.0.1:9' });
    expect(a.stt).toMatchObject({ provider: 'assemblyai', assemblyai: { apiKey: 'a', baseUrl: 'wss://127.0.0.1:9' } });
    const o = loadConfig({ STT_PROVIDER: 'openai', OPENAI_API_KEY: 'o', OPENAI_STT_BASE_URL: 'http://127.0.0.1:9/v1' });
    expect(o.stt).toMatchObject({ provider: 'openai', openai: { apiKey: 'o', baseUrl: 'http://127.0.0.1:9/v1' } });
    // Unset: the OpenAI base the LLM uses (OpenAI's by default).
    expect(loadConfig({ OPENAI_API_KEY: 'o' }).stt.openai).toEqual({ apiKey: 'o', baseUrl: 'https://api.openai.com/v1' });
  });

  it.each([
    [{ STT_PROVIDER: 'deepgram' }, /needs DEEPGRAM_API_KEY/],
    [{ STT_PROVIDER: 'openai' }, /needs OPENAI_API_KEY/],
    [{ OPENAI_API_KEY: 'k', OPENAI_STT_BASE_URL: 'ws://127.0.0.1:9' }, /OPENAI_STT_BASE_URL/],
    [{ STT_PROVIDER: 'assemblyai' }, /needs ASSEMBLYAI_API_KEY/],
    [{ ASSEMBLYAI_API_KEY: 'k', ASSEMBLYAI_BASE_URL: 'ws://127.0.0.1:9' }, /ASSEMBLYAI_BASE_URL/],
    [{ STT_PROVIDER: 'whisper' }, /STT_PROVIDER/],
    [{ STT_FALLBACK: 'maybe' }, /STT_FALLBACK/],
    [{ DEEPGRAM_API_KEY: 'k', DEEPGRAM_BASE_URL: 'api.deepgram.com' }, /DEEPGRAM_BASE_URL/],
  ])('refuses %o', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('a bot chooses its provider with deepgram({...}) or openai({...}); a bad choice is refused at defineBot', () => {
    const b = defineBot({ name: 'b', stt: deepgram({ model: 'nova-3', language: 'en-US' }), onCall() {} });
    expect(b.stt).toEqual({ provider: 'deepgram', model: 'nova-3', language: 'en-US' });
    expect(defineBot({ name: 'o', stt: openai({ model: 'gpt-4o-mini-transcribe' }), onCall() {} }).stt).toEqual({
      provider: 'openai',
      model: 'gpt-4o-mini-transcribe',
    });
    expect(() => defineBot({ name: 'c', stt: { provider: 'whisper' } as never, onCall() {} })).toThrow(/stt.provider/);
    expect(() => defineBot({ name: 'd', onCall() {}, onError: 'no' as never })).toThrow(/onError/);
  });
});
