/**
 * GET /analytics/funnel is under the dashboard's access rules (issue 25), on the real app over real
 * sockets, as GET /calls is: with DASHBOARD_TOKEN, the token (query or Bearer) and nothing else; without
 * it, loopback peers only, with no proxy header and a Host this service answers to; NODE_ENV=production
 * without a token: 404. The same requests to GET /calls get the same statuses.
 */
import http from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../helpers/stack.js';

const TOKEN = 'analytics-access-token-0123456789';

function get(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
  });
}

/** The status of the funnel, checked to be the status of GET /calls for the same request. */
async function both(stack: Stack, query: string, headers: Record<string, string> = {}): Promise<number> {
  const sep = query ? '&' : '';
  const funnel = await get(`${stack.url}/analytics/funnel?bot=ivr-menu${sep}${query}`, headers);
  const calls = await get(`${stack.url}/calls${query ? `?${query}` : ''}`, headers);
  expect(funnel, `funnel and /calls differ for "${query}" ${JSON.stringify(headers)}`).toBe(calls);
  return funnel;
}

describe('GET /analytics/funnel access', () => {
  const stacks: Stack[] = [];
  afterAll(async () => {
    await Promise.all(stacks.map((s) => s.close()));
  });
  const start = async (env: Record<string, string>) => {
    const s = await startStack({ env: { IDLE_WORKERS: '0', ...env } });
    stacks.push(s);
    return s;
  };

  it('with DASHBOARD_TOKEN: the token, as ?token= or Bearer; nothing else', async () => {
    const s = await start({ DASHBOARD_TOKEN: TOKEN });
    expect(await both(s, '')).toBe(401);
    expect(await both(s, 'token=wrong-token')).toBe(401);
    expect(await both(s, '', { authorization: 'Bearer wrong-token' })).toBe(401);
    expect(await both(s, `token=${TOKEN}`)).toBe(200);
    expect(await both(s, '', { authorization: `Bearer ${TOKEN}` })).toBe(200);
  }, 60_000);

  it('without a token: loopback only, no proxy header, a Host of this service', async () => {
    const s = await start({});
    const port = new URL(s.url).port;
    expect(await both(s, '')).toBe(200);
    expect(await both(s, '', { 'x-forwarded-for': '203.0.113.9' })).toBe(403);
    expect(await both(s, '', { forwarded: 'for=203.0.113.9' })).toBe(403);
    expect(await both(s, '', { host: `evil.example:${port}` })).toBe(403);
  }, 60_000);

  it('NODE_ENV=production without a token: 404', async () => {
    const s = await start({ NODE_ENV: 'production' });
    expect(await both(s, '')).toBe(404);
  }, 60_000);
});
