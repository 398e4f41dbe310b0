/**
 * Dashboard access without DASHBOARD_TOKEN (issue 11, item 4), on the real app over real sockets:
 * strict Origin on /ws/events (`null` and unparsable ones refused), Host checked against the names
 * this service answers to (DNS rebinding), loopback peers only, NODE_ENV=production disables it,
 * viewer slots per source; with a token, the token decides (and DASHBOARD_ALLOWED_HOSTS, if set).
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { exposureWarning, forwardingHeader, hostName, isLoopbackAddress } from '../../src/server/routes/dashboard-auth.js';
import { startStack, type Stack } from '../helpers/stack.js';

const TOKEN = 'dashboard-access-token-0123456789';

/** A GET with any Host header (fetch cannot set one). */
function get(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
  });
}

/** The WebSocket handshake's status (101 when it opened and said hello). */
function ws(
  url: string,
  opts: { headers?: Record<string, string>; localAddress?: string } = {},
): Promise<{ status: number; ws?: WebSocket }> {
  return new Promise((resolve, reject) => {
    const s = new WebSocket(url, { headers: opts.headers ?? {}, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
    s.once('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0 });
      s.terminate();
    });
    s.once('message', () => resolve({ status: 101, ws: s }));
    s.once('error', (err) => {
      if (!String(err.message).includes('Unexpected server response')) reject(err);
    });
  });
}

describe('helpers', () => {
  it('loopback addresses and Host names', () => {
    for (const a of ['127.0.0.1', '127.9.8.7', '::1', '::ffff:127.0.0.1', '[::1]']) expect(isLoopbackAddress(a)).toBe(true);
    for (const a of ['10.0.0.1', '::ffff:10.0.0.1', '192.0.2.2', '', undefined, '127.0.0.1.evil']) expect(isLoopbackAddress(a)).toBe(false);
    expect(hostName('LocalHost:7860')).toBe('localhost');
    expect(hostName('[::1]:80')).toBe('::1');
    expect(hostName('evil.example')).toBe('evil.example');
    expect(hostName('a b')).toBeUndefined();
    expect(hostName('x@evil:1')).toBeUndefined();
    expect(forwardingHeader({ host: 'localhost', 'user-agent': 'x' })).toBeUndefined();
    for (const h of ['forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-real-ip', 'via', 'cf-connecting-ip'])
      expect(forwardingHeader({ host: 'localhost', [h]: '127.0.0.1' })).toBe(h);
  });
});

describe('without DASHBOARD_TOKEN (development)', () => {
  let stack: Stack;
  let port: string;
  let wsUrl: string;
  beforeAll(async () => {
    stack = await startStack({ env: { IDLE_WORKERS: '0', DASHBOARD_MAX_CLIENTS_PER_SOURCE: '3' } });
    port = new URL(stack.url).port;
    wsUrl = `${stack.url.replace('http', 'ws')}/ws/events`;
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('the socket refuses Origin: null, unparsable and non-http origins, and other sites; accepts its own origin and none', async () => {
    for (const origin of [
      'null',
      'not a url',
      'file://',
      'chrome-extension://abc',
      `http://evil.example:${port}`,
      `http://user:pw@127.0.0.1:${port}`,
    ]) {
      expect({ origin, status: (await ws(wsUrl, { headers: { origin } })).status }).toEqual({ origin, status: 403 });
    }
    for (const headers of [{ origin: `http://127.0.0.1:${port}` }, {}] as Record<string, string>[]) {
      const r = await ws(wsUrl, { headers });
      expect(r.status).toBe(101);
      r.ws!.close();
    }
  });

  it('Host must be a name this service answers to (DNS rebinding): page, /calls and socket', async () => {
    for (const path of ['/dashboard', '/calls']) {
      expect(await get(`${stack.url}${path}`, { host: `evil.example:${port}` })).toBe(403);
      expect(await get(`${stack.url}${path}`, { host: `rebind.attacker.test` })).toBe(403);
      expect(await get(`${stack.url}${path}`, { host: `localhost:${port}` })).toBe(200);
      expect(await get(`${stack.url}${path}`, { host: `127.0.0.1:${port}` })).toBe(200);
    }
    // The rebinding page's origin is its own host: Origin and Host agree, the Host check refuses.
    expect((await ws(wsUrl, { headers: { host: `evil.example:${port}`, origin: `http://evil.example:${port}` } })).status).toBe(403);
  });

  it('local clients only: any request that came through a proxy is refused, whatever forwarding header it carries', async () => {
    // Issue 21, item 11: `Forwarded:` and `X-Real-IP` from 127.0.0.1 used to be served as local.
    const forwarded: Array<Record<string, string>> = [
      { 'x-forwarded-for': '203.0.113.5' },
      { 'x-forwarded-for': '127.0.0.1' },
      { forwarded: 'for=203.0.113.5' },
      { forwarded: 'for=127.0.0.1;proto=http' },
      { 'x-real-ip': '203.0.113.5' },
      { 'x-real-ip': '127.0.0.1' },
      { 'x-forwarded-host': `127.0.0.1:${port}` },
      { via: '1.1 proxy' },
      { 'true-client-ip': '203.0.113.5' },
    ];
    for (const path of ['/dashboard', '/calls']) {
      for (const headers of forwarded)
        expect({ path, headers, status: await get(`${stack.url}${path}`, headers) }).toEqual({ path, headers, status: 403 });
      expect(await get(`${stack.url}${path}`)).toBe(200);
    }
    for (const headers of forwarded) expect({ headers, status: (await ws(wsUrl, { headers })).status }).toEqual({ headers, status: 403 });
  });

  it('viewer slots are per source: one source cannot take them all', async () => {
    const mine: WebSocket[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const r = await ws(wsUrl, { localAddress: '127.0.0.1' });
        expect(r.status).toBe(101);
        mine.push(r.ws!);
      }
      expect((await ws(wsUrl, { localAddress: '127.0.0.1' })).status).toBe(503);
      // Another source still gets in.
      const other = await ws(wsUrl, { localAddress: '127.0.0.2' });
      expect(other.status).toBe(101);
      mine.push(other.ws!);
      // A slot freed is a slot again.
      mine.shift()!.close();
      await new Promise((r) => setTimeout(r, 200));
      const again = await ws(wsUrl, { localAddress: '127.0.0.1' });
      expect(again.status).toBe(101);
      mine.push(again.ws!);
    } finally {
      for (const s of mine) s.terminate();
    }
  });
});

describe('with DASHBOARD_TOKEN', () => {
  it('the token decides, from any peer and Host; DASHBOARD_ALLOWED_HOSTS, when set, is checked too', async () => {
    const stack = await startStack({ env: { IDLE_WORKERS: '0', DASHBOARD_TOKEN: TOKEN } });
    const allow = await startStack({ env: { IDLE_WORKERS: '0', DASHBOARD_TOKEN: TOKEN, DASHBOARD_ALLOWED_HOSTS: 'dash.example.com' } });
    try {
      const auth = { authorization: `Bearer ${TOKEN}` };
      expect(await get(`${stack.url}/dashboard`, { ...auth, 'x-forwarded-for': '203.0.113.5', host: 'dash.example.com' })).toBe(200);
      expect(await get(`${stack.url}/calls`, { 'x-forwarded-for': '203.0.113.5' })).toBe(401);
      expect(await get(`${allow.url}/dashboard`, { ...auth, host: 'dash.example.com' })).toBe(200);
      expect(await get(`${allow.url}/dashboard`, { ...auth, host: 'evil.example' })).toBe(403);
      expect(await get(`${allow.url}/calls`, { ...auth, host: 'localhost' })).toBe(200);
    } finally {
      await stack.close();
      await allow.close();
    }
  });
});

describe('NODE_ENV=production', () => {
  it('without a token the dashboard, its socket and /calls are disabled, and listening on 0.0.0.0 says so loudly', async () => {
    const stack = await startStack({ env: { IDLE_WORKERS: '0', NODE_ENV: 'production' } });
    try {
      expect(await get(`${stack.url}/dashboard`)).toBe(404);
      expect(await get(`${stack.url}/calls`)).toBe(404);
      expect((await ws(`${stack.url.replace('http', 'ws')}/ws/events`)).status).toBe(404);
      expect(await get(`${stack.url}/health/live`)).toBe(200);
    } finally {
      await stack.close();
    }
    const withToken = await startStack({ env: { IDLE_WORKERS: '0', NODE_ENV: 'production', DASHBOARD_TOKEN: TOKEN } });
    try {
      expect(await get(`${withToken.url}/dashboard?token=${TOKEN}`)).toBe(200);
    } finally {
      await withToken.close();
    }
    // The start-up warning (server.ts writes it once listening).
    const base = { nodeEnv: 'production', host: '0.0.0.0', dashboard: { token: undefined } };
    expect(exposureWarning(base)).toMatch(/every interface/);
    expect(exposureWarning({ ...base, host: '::' })).toMatch(/every interface/);
    expect(exposureWarning({ ...base, host: '127.0.0.1' })).toBeUndefined();
    expect(exposureWarning({ ...base, nodeEnv: 'development' })).toBeUndefined();
    expect(exposureWarning({ ...base, dashboard: { token: TOKEN } })).toBeUndefined();
  });
});
