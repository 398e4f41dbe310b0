/**
 * Refused unauthenticated requests are logged per source and interval, not per request (issue 11,
 * item 8d), on the real server process: 300 forged webhooks and 100 wrong dashboard tokens from
 * two sources write one line per source and kind at once, then one summary line per source and
 * kind with the count when AUTH_FAILURE_LOG_INTERVAL_MS ends.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServerProcess, type ServerProcess } from '../helpers/ops.js';

const TOKEN = 'refusal-log-token-0123456789';
let s: ServerProcess;
beforeAll(async () => {
  s = await startServerProcess({
    DAILY_PINLESS_HMAC: randomBytes(32).toString('base64'),
    DASHBOARD_TOKEN: TOKEN,
    IDLE_WORKERS: '0',
    AUTH_FAILURE_LIMIT: '100000',
    AUTH_FAILURE_LOG_INTERVAL_MS: '1500',
  });
}, 30_000);
afterAll(async () => {
  await s?.kill();
});

describe('refusal logging', () => {
  it('one line per source and kind at once, then one summary per source and kind with the count', { timeout: 30_000 }, async () => {
    const sources = ['203.0.113.1', '203.0.113.2'];
    const forged = (ip: string) =>
      fetch(`${s.url}/dialin`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-forwarded-for': ip,
          'x-pinless-timestamp': String(Math.floor(Date.now() / 1000)),
          'x-pinless-signature': Buffer.alloc(32, 3).toString('base64'),
        },
        body: JSON.stringify({ To: '+15550001000', From: '+15551112222', callId: `c-${Math.random()}`, callDomain: 'd' }),
      }).then((r) => r.status);
    const wrongToken = (ip: string) =>
      fetch(`${s.url}/calls?token=wrong-${TOKEN}`, { headers: { 'x-forwarded-for': ip } }).then((r) => r.status);
    const start = s.lines.length;
    const t0 = Date.now();
    const statuses: number[] = [];
    for (let i = 0; i < 150; i++) statuses.push(...(await Promise.all(sources.map(forged))));
    for (let i = 0; i < 50; i++) statuses.push(...(await Promise.all(sources.map(wrongToken))));
    expect(new Set(statuses)).toEqual(new Set([401]));

    const kinds = [
      ['dialin webhook refused: bad signature', 150],
      ['dashboard: missing or wrong token', 50],
    ] as const;
    const refusals = () => s.lines.slice(start).filter((l) => /refused|wrong token/.test(String(l.msg)));
    const accounted = (ip: string, msg: string) => {
      const r = refusals();
      const first = r.filter((l) => l.ip === ip && l.msg === msg);
      const summary = r.filter((l) => l.ip === ip && l.msg === `${msg} (repeated)`);
      return { first, summary, total: first.length + summary.reduce((k, l) => k + Number(l.count), 0) };
    };
    // The summaries come at the end of each interval (on a loaded machine the requests span several,
    // each with its own first line and summary): wait for the last ones.
    const deadline = Date.now() + 6_000;
    while (Date.now() < deadline && !sources.every((ip) => kinds.every(([msg, n]) => accounted(ip, msg).total >= n)))
      await new Promise((r) => setTimeout(r, 50));
    // Every refusal is accounted for: first lines (one per interval) plus the summaries' counts.
    const intervals = Math.ceil((Date.now() - t0) / 1500) + 1;
    for (const ip of sources) {
      for (const [msg, n] of kinds) {
        const { first, summary, total } = accounted(ip, msg);
        expect(first.length).toBeGreaterThanOrEqual(1);
        expect(summary.length).toBeGreaterThanOrEqual(1);
        expect(first.length).toBeLessThanOrEqual(intervals);
        expect(summary.length).toBeLessThanOrEqual(intervals);
        expect(total).toBe(n);
      }
    }
    // 400 refused requests, a handful of lines.
    expect(refusals().length).toBeLessThanOrEqual(8 * intervals);
    expect(refusals().length).toBeLessThan(40);
  });
});

describe('requests for no route (issue 21, item 16)', () => {
  it(
    'a flood of long unknown URLs is logged per source and interval, each line short and without the query',
    { timeout: 30_000 },
    async () => {
      const start = s.lines.length;
      const longPath = `/no/such/${'a'.repeat(6_000)}`;
      const statuses: number[] = [];
      for (let i = 0; i < 100; i++) {
        const r = await fetch(`${s.url}${longPath}${i}?token=${TOKEN}&q=${'b'.repeat(1_000)}`, {
          headers: { 'x-forwarded-for': '203.0.113.9' },
        });
        await r.arrayBuffer();
        statuses.push(r.status);
      }
      expect(new Set(statuses)).toEqual(new Set([404]));
      const mine = () => s.lines.slice(start).filter((l) => String(l.msg).startsWith('no such route'));
      const deadline = Date.now() + 6_000;
      const total = () => mine().reduce((k, l) => k + (l.count === undefined ? 1 : Number(l.count)), 0);
      while (Date.now() < deadline && total() < 100) await new Promise((r) => setTimeout(r, 50));
      // Every 404 accounted for, in a few lines: the first per interval and the summaries.
      expect(total()).toBe(100);
      expect(mine().length).toBeLessThan(10);
      for (const l of s.lines.slice(start)) {
        const line = JSON.stringify(l);
        expect(line.length).toBeLessThan(600);
        expect(line).not.toContain(TOKEN);
        expect(line).not.toContain('bbbbbbbbbb');
      }
      expect(String(mine()[0]!.path)).toMatch(/^\/no\/such\/a+…\(6\d{3} chars\)$/);
    },
  );
});
