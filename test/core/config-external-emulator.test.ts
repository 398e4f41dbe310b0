/** Several replicas can share one external emulator (docs/scaling.md): only on loopback. */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/core/config.js';

describe('CALL_CLIENT=emulator with DAILY_API_KEY', () => {
  it('is accepted when DAILY_API_URL points at loopback', () => {
    for (const url of ['http://127.0.0.1:7861/v1', 'http://localhost:7861/v1', 'http://[::1]:7861/v1']) {
      const c = loadConfig({ DAILY_API_KEY: 'k', DAILY_API_URL: url, CALL_CLIENT: 'emulator' });
      expect(c.daily.callClient).toBe('emulator');
      expect(c.daily.apiUrl).toBe(url);
      expect(c.emulator.enabled).toBe(false);
    }
  });
  it('is refused for any other DAILY_API_URL, or none', () => {
    for (const url of [undefined, 'https://api.daily.co/v1', 'http://10.0.0.5:7861/v1', 'http://127.0.0.1.example.com/v1', 'not a url']) {
      const env: Record<string, string> = { DAILY_API_KEY: 'k', CALL_CLIENT: 'emulator', ...(url ? { DAILY_API_URL: url } : {}) };
      expect(() => loadConfig(env)).toThrow(ConfigError);
      expect(() => loadConfig(env)).toThrow(/CALL_CLIENT=emulator/);
    }
  });
});
