/**
 * The live dashboard in a real headless Chromium (Debian's, driven by playwright-core) against the
 * real emulator, app and workers: the page needs the token, shows an emulated call live with its
 * stage, then its outcome; the socket refuses missing tokens and other origins.
 * Screenshots go to test-output/ (gitignored).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import WebSocket from 'ws';
import { ConfigError, loadConfig } from '../../src/core/config.js';
import { OUTCOMES } from '../../src/core/outcome.js';
import { CSP } from '../../src/server/routes/dashboard.js';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'dashboard-test-token-0123456789';
const CALLER = '+15557654321';
const OUT = 'test-output';
const WAIT_MS = 20_000;

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`SKIPPING test/dashboard.test.ts: ${CHROMIUM} is missing (apt-get install -y chromium)`);

/** Resolves with the HTTP status a WebSocket handshake got (101 when it opened). */
function wsHandshake(url: string, headers: Record<string, string> = {}): Promise<{ status: number; first?: any; ws?: WebSocket }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0 });
      ws.terminate();
    });
    ws.once('message', (data) => resolve({ status: 101, first: JSON.parse(String(data)), ws }));
    ws.once('error', (err) => {
      if (!String(err.message).includes('Unexpected server response')) reject(err);
    });
  });
}

describe('dashboard and records configuration', () => {
  it('validates DASHBOARD_TOKEN, CALL_RECORDS_PATH and CALL_RECORDS_STORE_PII', () => {
    expect(loadConfig({}).dashboard.token).toBeUndefined();
    expect(loadConfig({}).records).toEqual({
      path: './data/calls.db',
      storePii: false,
      retentionDays: 0,
      queueMax: 10_000,
      replicaId: expect.any(String),
    });
    expect(loadConfig({ CALL_RECORDS_PATH: 'off' }).records.path).toBeUndefined();
    expect(loadConfig({ CALL_RECORDS_PATH: ':memory:', CALL_RECORDS_STORE_PII: 'true' }).records).toMatchObject({
      path: ':memory:',
      storePii: true,
    });
    expect(loadConfig({ DASHBOARD_TOKEN: TOKEN }).dashboard.token).toBe(TOKEN);
    expect(() => loadConfig({ DASHBOARD_TOKEN: 'short' })).toThrow(ConfigError);
    expect(() => loadConfig({ DASHBOARD_TOKEN: 'short' })).toThrow(/DASHBOARD_TOKEN/);
    expect(() => loadConfig({ CALL_RECORDS_STORE_PII: 'maybe' })).toThrow(/CALL_RECORDS_STORE_PII/);
    expect(() => loadConfig({ CALL_RECORDS_PATH: '' })).toThrow(/CALL_RECORDS_PATH/);
  });
});

describe('dashboard without DASHBOARD_TOKEN', () => {
  it('is open: page, socket and /calls answer without a token; other origins are still refused', async () => {
    const open = await startStack({ env: { IDLE_WORKERS: '0' } });
    try {
      expect((await fetch(`${open.url}/dashboard`)).status).toBe(200);
      expect((await fetch(`${open.url}/calls`)).status).toBe(200);
      const wsUrl = `${open.url.replace('http', 'ws')}/ws/events`;
      const ok = await wsHandshake(wsUrl);
      expect(ok.status).toBe(101);
      expect(ok.first.type).toBe('hello');
      ok.ws!.close();
      expect((await wsHandshake(wsUrl, { origin: 'http://evil.example' })).status).toBe(403);
      expect((await wsHandshake(`${open.url.replace('http', 'ws')}/ws/other`)).status).toBe(404);
    } finally {
      await open.close();
    }
  });
});

describe.skipIf(!haveChromium)('dashboard in headless Chromium', () => {
  let stack: Stack;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    [stack, browser] = await Promise.all([
      startStack({ env: { DASHBOARD_TOKEN: TOKEN, CALL_RECORDS_PATH: ':memory:' }, emulator: { holdTimeoutMs: 15_000 } }),
      chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      }),
    ]);
    page = await browser.newPage({ viewport: { width: 1280, height: 760 } });
    page.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(`console: ${m.text()}`);
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await stack?.close();
  });

  it('refuses the page and the socket without the token', async () => {
    const noToken = await fetch(`${stack.url}/dashboard`);
    expect(noToken.status).toBe(401);
    expect(noToken.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await fetch(`${stack.url}/dashboard?token=not-the-token-at-all`)).status).toBe(401);
    expect((await fetch(`${stack.url}/dashboard`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);

    // The browser gets the 401 too, and no page.
    const p = await browser.newPage();
    try {
      const res = await p.goto(`${stack.url}/dashboard`);
      expect(res?.status()).toBe(401);
      expect(await p.locator('#live').count()).toBe(0);
    } finally {
      await p.close();
    }

    const wsUrl = `${stack.url.replace('http', 'ws')}/ws/events`;
    expect((await wsHandshake(wsUrl)).status).toBe(401);
    expect((await wsHandshake(`${wsUrl}?token=wrong-token-wrong-token`)).status).toBe(401);
    // Another site's page, even with the token, is refused.
    expect((await wsHandshake(`${wsUrl}?token=${TOKEN}`, { origin: 'http://evil.example' })).status).toBe(403);
    const ok = await wsHandshake(wsUrl, { authorization: `Bearer ${TOKEN}` });
    expect(ok.status).toBe(101);
    expect(ok.first).toMatchObject({ type: 'hello', live: [], stats: { queued: 0, active: 0 } });
    ok.ws!.close();
  });

  it('streams a call over /ws/events: stages in order, then the outcome; numbers always masked', async () => {
    const frames: string[] = [];
    const ws = new WebSocket(`${stack.url.replace('http', 'ws')}/ws/events?token=${TOKEN}`);
    ws.on('message', (d) => frames.push(String(d)));
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    try {
      const call = stack.emulator.placeCall({ to: NUMBER, from: CALLER, script: [{ waitFor: 'say', match: 'Hello' }, { hangup: true }] });
      const msgs = () =>
        frames.map(
          (f) => JSON.parse(f) as { type: string; call?: { callId: string; stage: string; outcome: string | null; from: string } },
        );
      await expect.poll(() => msgs().some((m) => m.type === 'ended' && m.call?.callId === call.callId), { timeout: WAIT_MS }).toBe(true);
      const mine = msgs().filter((m) => m.call?.callId === call.callId);
      const stages = mine.filter((m) => m.type === 'call').map((m) => m.call!.stage);
      expect(stages[0]).toBe('queued');
      for (const s of ['worker_assigned', 'joined', 'dialin_ready', 'connected']) expect(stages).toContain(s);
      expect(stages.indexOf('joined')).toBeLessThan(stages.indexOf('connected'));
      const ended = mine.find((m) => m.type === 'ended')!;
      expect(ended.call).toMatchObject({ outcome: 'caller_hangup', stage: 'ended', from: '********4321' });
      expect(msgs()[0]!.type).toBe('hello');
      // Not one frame carries the caller's number.
      expect(frames.join('\n')).not.toContain('5557654321');
    } finally {
      ws.close();
    }
  });

  it('serves the page with a strict CSP and security headers', async () => {
    const res = await fetch(`${stack.url}/dashboard?token=${TOKEN}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toBe(CSP);
    expect(CSP).toContain("default-src 'none'");
    expect(CSP).not.toMatch(/unsafe|\*|https?:/);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    const html = await res.text();
    expect(html).not.toMatch(/https?:\/\//);
    const js = await fetch(`${stack.url}/dashboard/assets/app.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect((await fetch(`${stack.url}/dashboard/assets/../../package.json`)).status).toBe(404);
    expect((await fetch(`${stack.url}/dashboard/assets/nope.js`)).status).toBe(404);
  });

  it('shows a call live with its stage, then its outcome', async () => {
    const res = await page.goto(`${stack.url}/dashboard?token=${TOKEN}`);
    expect(res?.status()).toBe(200);
    await page.locator('#conn[data-state="open"]').waitFor({ timeout: WAIT_MS });
    await expect.poll(() => page.locator('#stat-active').textContent(), { timeout: WAIT_MS }).toBe('0');
    expect(Number(await page.locator('#stat-idle').textContent())).toBeGreaterThanOrEqual(0);

    // A first, short call: it ends in the recent outcomes.
    const short = stack.emulator.placeCall({
      to: NUMBER,
      from: '+15550002222',
      script: [{ waitFor: 'say', match: 'Hello' }, { hangup: true }],
    });
    const shortRow = page.locator(`#recent tbody tr[data-call-id="${short.callId}"]`);
    await shortRow.waitFor({ timeout: WAIT_MS });
    expect(await shortRow.getAttribute('data-outcome')).toBe('caller_hangup');

    // A second call that stays on the line a while: it shows up live, reaches the bot, then ends.
    const call = stack.emulator.placeCall({
      to: NUMBER,
      from: CALLER,
      script: [{ waitFor: 'say', match: 'Hello' }, { wait: 2_500 }, { hangup: true }],
    });
    const liveRow = page.locator(`#live tbody tr[data-call-id="${call.callId}"]`);
    await liveRow.waitFor({ timeout: WAIT_MS });
    await page.locator(`#live tbody tr[data-call-id="${call.callId}"][data-stage="bot_started"]`).waitFor({ timeout: WAIT_MS });
    const liveText = await liveRow.innerText();
    expect(liveText).toContain('4321');
    expect(liveText).not.toContain(CALLER);
    expect(liveText).toContain('default');
    expect(liveText).toMatch(/active/);
    await expect.poll(() => page.locator('#stat-active').textContent(), { timeout: WAIT_MS }).toBe('1');
    expect(await liveRow.locator('.bar .seg').count()).toBeGreaterThanOrEqual(5);
    await page.screenshot({ path: `${OUT}/dashboard-live.png`, fullPage: true });

    const end = await call.ended;
    expect(end.reason).toBe('caller_hangup');
    const recentRow = page.locator(`#recent tbody tr[data-call-id="${call.callId}"]`);
    await recentRow.waitFor({ timeout: WAIT_MS });
    await liveRow.waitFor({ state: 'detached', timeout: WAIT_MS });
    expect(await recentRow.getAttribute('data-outcome')).toBe('caller_hangup');
    expect(await recentRow.innerText()).toMatch(/caller_hangup/);
    await expect.poll(() => page.locator('#stat-active').textContent(), { timeout: WAIT_MS }).toBe('0');
    // Newest first.
    expect(await page.locator('#recent tbody tr').first().getAttribute('data-call-id')).toBe(call.callId);
    await page.screenshot({ path: `${OUT}/dashboard.png`, fullPage: true });

    // The filter offers every outcome the server knows (sent in its hello, not copied into the page).
    const choices = await page.locator('#outcome-filter option').evaluateAll((os) => os.map((o) => o.getAttribute('value')));
    expect(choices).toEqual(['', ...OUTCOMES]);
    // The outcome filter queries GET /calls (with the token, from the page).
    await page.selectOption('#outcome-filter', 'queue_timeout');
    await page.locator('#recent-empty:not([hidden])').waitFor({ timeout: WAIT_MS });
    expect(await page.locator('#recent tbody tr').count()).toBe(0);
    await page.selectOption('#outcome-filter', 'caller_hangup');
    const hangups = stack.ended.filter((r) => r.outcome === 'caller_hangup').length;
    expect(hangups).toBeGreaterThanOrEqual(2);
    await expect.poll(() => page.locator('#recent tbody tr').count(), { timeout: WAIT_MS }).toBe(hangups);
    expect(await page.locator('#recent tbody tr[data-outcome="caller_hangup"]').count()).toBe(hangups);
    expect(await page.locator(`#recent tbody tr[data-call-id="${short.callId}"]`).count()).toBe(1);

    expect(pageErrors).toEqual([]);
  });
});
