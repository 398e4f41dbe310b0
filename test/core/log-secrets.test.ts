/**
 * No secret in logs (issue 11, item 5): the real server process with every secret configured, at
 * LOG_LEVEL=debug, gets refused, 404 and accepted requests that carry the dashboard token (and
 * other secrets) in their query strings and headers, plus a real call through the emulator with an
 * LLM that fails; then every line it wrote (stdout and stderr, workers included) is searched for
 * every configured secret and its base64 / hex forms.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { signPinless } from '../../src/daily/signature.js';
import { createEmulator } from '../../src/emulator/server.js';
import type { Emulator } from '../../src/emulator/types.js';
import { createLogger, safeUrl, redactSecretParams } from '../../src/core/logger.js';
import { startServerProcess, waitFor, type ServerProcess } from '../helpers/ops.js';

const NUMBER = '+15550001004'; // the voice assistant: it asks the LLM
const SECRETS = {
  DAILY_API_KEY: `dk_${randomBytes(16).toString('hex')}`,
  DAILY_PINLESS_HMAC: randomBytes(32).toString('base64'),
  DAILY_WEBHOOK_HMAC: randomBytes(32).toString('base64'),
  DAILY_WEBHOOK_BASIC_AUTH: `daily:${randomBytes(12).toString('hex')}`,
  DASHBOARD_TOKEN: `dash_${randomBytes(16).toString('hex')}`,
  OPENAI_API_KEY: `sk-${randomBytes(20).toString('hex')}`,
  EMULATOR_API_KEY: `emu_${randomBytes(12).toString('hex')}`,
  DEEPGRAM_API_KEY: `dg_${randomBytes(20).toString('hex')}`,
};

/** Every form a secret could take in a line. */
function forms(v: string): string[] {
  const out = [v, Buffer.from(v).toString('base64'), Buffer.from(v).toString('base64url')];
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(v) && v.length >= 40) {
    const raw = Buffer.from(v, 'base64');
    out.push(raw.toString('hex'), raw.toString('base64url'));
  }
  if (v.includes(':')) out.push(v.slice(v.indexOf(':') + 1));
  return out;
}

let emulator: Emulator;
let s: ServerProcess;
beforeAll(async () => {
  emulator = await createEmulator({ host: '127.0.0.1', port: 0, apiKey: SECRETS.DAILY_API_KEY, logger: createLogger({ level: 'silent' }) });
  s = await startServerProcess({
    ...SECRETS,
    DAILY_API_URL: emulator.apiUrl,
    CALL_CLIENT: 'emulator',
    LOG_LEVEL: 'debug',
    IDLE_WORKERS: '1',
    LLM_BASE_URL: 'http://127.0.0.1:9/v1',
    LLM_TIMEOUT_MS: '500',
    // The bots hear through Deepgram, which cannot be reached: its key travels to the worker, fails, is logged nowhere.
    STT_PROVIDER: 'deepgram',
    DEEPGRAM_BASE_URL: 'http://127.0.0.1:9',
  });
  emulator.setPinlessDialin([{ phone_number: NUMBER, room_creation_api: `${s.url}/dialin`, hmac: SECRETS.DAILY_PINLESS_HMAC }]);
}, 40_000);
afterAll(async () => {
  await s?.kill();
  await emulator?.close();
});

const T = SECRETS.DASHBOARD_TOKEN;

describe('secrets in logs', () => {
  it('safeUrl drops dashboard queries and redacts secret parameters elsewhere', () => {
    expect(safeUrl(`/dashboard?token=${T}`)).toBe('/dashboard');
    expect(safeUrl(`/dashboard/?token=${T}`)).toBe('/dashboard/');
    expect(safeUrl(`/calls?limit=5&token=${T}`)).toBe('/calls');
    expect(safeUrl(`/ws/events?token=${T}`)).toBe('/ws/events');
    expect(safeUrl(`/x?a=1&token=${T}&KEY=k1&access_token=a2`)).toBe('/x?a=1&token=[redacted]&KEY=[redacted]&access_token=[redacted]');
    expect(redactSecretParams(`GET http://h/p?api_key=zzz#f`)).toBe('GET http://h/p?api_key=[redacted]#f');
  });

  it('refused, 404 and accepted requests and a real call leave no configured secret in any log line', { timeout: 60_000 }, async () => {
    const q = `token=${T}&key=${SECRETS.DAILY_API_KEY}&access_token=${SECRETS.OPENAI_API_KEY}`;
    const statuses: Record<string, number> = {};
    const get = async (path: string, headers: Record<string, string> = {}) => {
      const r = await fetch(`${s.url}${path}`, { headers });
      await r.arrayBuffer();
      statuses[path] = r.status;
      return r.status;
    };
    expect(await get(`/dashboard?token=${T}`)).toBe(200);
    expect(await get(`/dashboard?token=wrong-${T}`)).toBe(401);
    expect(await get(`/dashboard/?${q}`)).toBe(404);
    expect(await get(`/dashboard/assets/nope.js?${q}`)).toBe(404);
    expect(await get(`/calls?limit=5&token=${T}`)).toBe(200);
    expect(await get(`/calls?${q}`)).toBe(400);
    expect(await get(`/no/such/route?${q}`)).toBe(404);
    expect(await get(`/health/live?${q}`)).toBe(200);
    expect(await get('/no/such/route', { authorization: `Bearer ${T}` })).toBe(404);
    const post = async (path: string, body: string, headers: Record<string, string> = {}) => {
      const r = await fetch(`${s.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
      await r.arrayBuffer();
      return r.status;
    };
    const ts = String(Math.floor(Date.now() / 1000));
    expect(
      await post(`/dialin?${q}`, '{"To":"+15550001004","From":"+15557654321","callId":"c","callDomain":"d"}', {
        'x-pinless-timestamp': ts,
        'x-pinless-signature': Buffer.alloc(32).toString('base64'),
      }),
    ).toBe(401);
    expect(await post(`/dialin?${q}`, '{"To": nope')).toBe(400);
    expect(await post(`/dialin?${q}`, 'x'.repeat(40_000))).toBe(413);
    expect(
      await post(`/webhooks/daily?${q}`, '{"type":"meeting.ended","id":"e1","payload":{}}', {
        authorization: `Basic ${Buffer.from(`daily:${T}`).toString('base64')}`,
      }),
    ).toBe(401);
    expect(
      await post(`/webhooks/daily?${q}`, '{"type":"meeting.ended","id":"e1","payload":{}}', {
        authorization: `Basic ${Buffer.from(SECRETS.DAILY_WEBHOOK_BASIC_AUTH).toString('base64')}`,
      }),
    ).toBe(401);
    // A signed webhook with the secret in its body (accepted, not logged either).
    const body = JSON.stringify({ To: NUMBER, From: '+15557654321', callId: T, callDomain: SECRETS.DAILY_API_KEY });
    expect(
      await post(`/dialin?${q}`, body, {
        'x-pinless-timestamp': ts,
        'x-pinless-signature': signPinless(body, SECRETS.DAILY_PINLESS_HMAC, ts),
      }),
    ).toBe(200);
    // The dashboard socket, with the token and without.
    const wsUrl = `${s.url.replace('http', 'ws')}/ws/events`;
    await new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(`${wsUrl}?${q}`);
      ws.once('message', () => {
        ws.close();
        resolve();
      });
      ws.once('error', reject);
    });
    await new Promise<void>((resolve) => {
      const ws = new WebSocket(`${wsUrl}?token=bad-${T}`);
      ws.once('error', () => resolve());
      ws.once('unexpected-response', () => resolve());
    });
    // A real call, whose bot asks an LLM that cannot be reached.
    const call = emulator.placeCall({
      to: NUMBER,
      script: [{ waitFor: 'say' }, { say: 'hello there' }, { waitFor: 'say', timeoutMs: 5_000 }, { hangup: true }],
    });
    await call.ended;
    await waitFor(
      'the call to be recorded',
      () => s.lines.some((l) => String(l.msg).includes('call ended') || l.outcome !== undefined),
      15_000,
    ).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 500));

    const all = [...s.lines.map((l) => JSON.stringify(l)), s.stderr()].join('\n');
    expect(s.lines.length).toBeGreaterThan(20);
    // The refusals were logged (so the search above searched lines that were there).
    expect(all).toContain('no such route');
    expect(all).toContain('dashboard: missing or wrong token');
    for (const [name, value] of Object.entries(SECRETS)) {
      for (const f of forms(value)) {
        const hit = s.lines.find((l) => JSON.stringify(l).includes(f));
        expect(hit ? `${name} in ${JSON.stringify(hit)}` : undefined).toBeUndefined();
        expect(s.stderr().includes(f) ? `${name} in stderr` : undefined).toBeUndefined();
      }
    }
  });
});
