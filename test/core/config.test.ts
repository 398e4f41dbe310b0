import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/core/config.js';

describe('config', () => {
  it('defaults to the emulator without DAILY_API_KEY', () => {
    const c = loadConfig({});
    expect(c.port).toBe(7860);
    expect(c.emulator.enabled).toBe(true);
    expect(c.daily.callClient).toBe('emulator');
    expect(c.daily.pinlessHmacSecrets).toEqual([]);
  });

  it('TTS vendors: each needs its own key; base URL, model and voice per vendor', () => {
    expect(() => loadConfig({ TTS_PROVIDER: 'cartesia' })).toThrow(/TTS_PROVIDER=cartesia needs CARTESIA_API_KEY/);
    expect(() => loadConfig({ TTS_PROVIDER: 'elevenlabs', CARTESIA_API_KEY: 'c' })).toThrow(/needs ELEVENLABS_API_KEY/);
    const c = loadConfig({ TTS_PROVIDER: 'cartesia', CARTESIA_API_KEY: 'ck', CARTESIA_BASE_URL: 'https://cartesia.test' });
    expect(c.tts).toMatchObject({ provider: 'cartesia', apiKey: 'ck', baseUrl: 'https://cartesia.test', model: 'sonic-3' });
    expect(c.tts.voice).toMatch(/^[0-9a-f-]{36}$/);
    const e = loadConfig({ TTS_PROVIDER: 'elevenlabs', ELEVENLABS_API_KEY: 'ek', TTS_VOICE: 'v1', TTS_MODEL: 'eleven_turbo_v2_5' });
    expect(e.tts).toMatchObject({ provider: 'elevenlabs', apiKey: 'ek', baseUrl: undefined, voice: 'v1', model: 'eleven_turbo_v2_5' });
    // OpenAI speech takes OpenAI's key, not another LLM vendor's.
    const o = loadConfig({ TTS_PROVIDER: 'openai', OPENAI_API_KEY: 'sk', ANTHROPIC_API_KEY: 'ak', LLM_PROVIDER: 'anthropic' });
    expect(o.tts).toMatchObject({ apiKey: 'sk', model: 'gpt-4o-mini-tts' });
    expect(loadConfig({}).tts.apiKey).toBeUndefined();
  });

  it('uses Daily and the daily client with a key', () => {
    const c = loadConfig({ DAILY_API_KEY: 'k', DAILY_PINLESS_HMAC: 'YWJj, ZGVm' });
    expect(c.emulator.enabled).toBe(false);
    expect(c.daily.callClient).toBe('daily');
    expect(c.daily.apiUrl).toBe('https://api.daily.co/v1');
    expect(c.daily.pinlessHmacSecrets).toEqual(['YWJj', 'ZGVm']);
  });

  it.each([
    ['PORT', 'abc'],
    ['MAX_CONCURRENT_BOTS', '0'],
    ['QUEUE_TIMEOUT_MS', '-1'],
    ['DIALIN_READY_TIMEOUT_MS', '1.5'],
    ['MAX_CALL_MS', 'ten'],
    ['LOG_LEVEL', 'loud'],
    ['DAILY_PINLESS_HMAC', 'not base64!'],
  ])('refuses a bad %s and names it', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(name));
  });

  it('requires a webhook secret in production with a real Daily key', () => {
    expect(() => loadConfig({ DAILY_API_KEY: 'k', NODE_ENV: 'production' })).toThrow(/DAILY_PINLESS_HMAC/);
    expect(() => loadConfig({ DAILY_API_KEY: 'k', NODE_ENV: 'production', DAILY_PINLESS_HMAC: 'YWJj' })).not.toThrow();
  });

  it('ADMITTED_LOG_PATH: independent of the records (issue 21, item 13)', () => {
    expect(loadConfig({}).resilience.admittedPath).toBe('data/admitted-calls.jsonl');
    expect(loadConfig({ CALL_RECORDS_PATH: '/var/pb/calls.db' }).resilience.admittedPath).toBe('/var/pb/admitted-calls.jsonl');
    expect(loadConfig({ CALL_RECORDS_PATH: 'off' }).resilience.admittedPath).toBe('data/admitted-calls.jsonl');
    expect(loadConfig({ CALL_RECORDS_PATH: ':memory:' }).resilience.admittedPath).toBeUndefined();
    expect(loadConfig({ CALL_RECORDS_PATH: 'off', ADMITTED_LOG_PATH: '/x/ids.jsonl' }).resilience.admittedPath).toBe('/x/ids.jsonl');
    expect(loadConfig({ ADMITTED_LOG_PATH: 'off' }).resilience.admittedPath).toBeUndefined();
  });
});
