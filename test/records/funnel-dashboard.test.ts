/**
 * The funnel page (GET /dashboard/funnel) in a real headless Chromium (playwright-core) against
 * the real emulator, app and workers, records in a SQLite file: scripted calls to the example
 * `ivr-menu` bot end at known steps; the page draws one bar per step (reached, and the calls that
 * ended there by outcome) and the step breakdown with the same figures as GET /analytics/funnel.
 * The screenshot goes to test-output/funnel.png; `UPDATE_SCREENSHOTS=1` writes docs/images/funnel.png.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallerStep } from '../../src/emulator/types.js';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'funnel-dashboard-token-0123456789';
const WAIT_MS = 20_000;
const dir = mkdtempSync(path.join(tmpdir(), 'patchbay-funnel-dash-'));

const menu: CallerStep = { waitFor: 'say', match: 'Press 1' };
const SCRIPTS: CallerStep[][] = [
  [menu, { press: '1' }],
  [menu, { press: '1' }],
  [menu, { press: '1' }],
  [menu, { press: '2' }],
  [menu, { press: '2' }],
  [menu, { wait: 300 }, { hangup: true }],
  [menu, { press: '9' }, { waitFor: 'say', match: 'not an option' }, { wait: 300 }, { hangup: true }],
  [{ waitFor: 'say', match: 'Goodbye' }],
];

describe('funnel page (Chromium)', () => {
  let stack: Stack;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing (apt-get install -y chromium; .ci/run does)`);
    [stack, browser] = await Promise.all([
      startStack({
        env: { DASHBOARD_TOKEN: TOKEN, CALL_RECORDS_PATH: path.join(dir, 'calls.db'), IDLE_WORKERS: '2' },
        runtime: {
          route: () => ({
            bot: 'ivr-menu',
            config: { salesUri: 'sip:sales@pbx.test', supportUri: 'sip:support@pbx.test', attempts: 2, digitTimeoutMs: 1_500 },
          }),
          preloadBots: ['ivr-menu'],
        },
      }),
      chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
      }),
    ]);
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(`console: ${m.text()}`);
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await stack?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('draws the funnel and the step breakdown of real calls, as the API counts them', async () => {
    const calls = SCRIPTS.map((script) => stack.emulator.placeCall({ to: NUMBER, from: '+15557654321', script }));
    await Promise.all(calls.map((c) => c.ended.then(() => stack.waitEnded(c.callId, 30_000))));
    const api = (await (
      await fetch(`${stack.url}/analytics/funnel?bot=ivr-menu`, { headers: { authorization: `Bearer ${TOKEN}` } })
    ).json()) as { steps: Array<{ step: string; reached: number; last: Record<string, number>; hangups: number; transfers: number }> };
    expect(Object.fromEntries(api.steps.map((s) => [s.step, s.reached]))).toEqual({
      welcome: 8,
      'main-menu': 8,
      'transfer-sales': 3,
      'transfer-support': 2,
      goodbye: 1,
    });

    // Reached from the live dashboard's link, which carries the token.
    await page.goto(`${stack.url}/dashboard?token=${TOKEN}`);
    await page.click('#funnel-link');
    await page.fill('#f-bot', 'ivr-menu');
    await page.click('#f-go');
    await page.locator('body[data-loaded="true"]').waitFor({ timeout: WAIT_MS });
    expect(new URL(page.url()).searchParams.get('bot')).toBe('ivr-menu');

    const bars = await page
      .locator('#funnel li')
      .evaluateAll((els) => els.map((e) => ({ step: e.getAttribute('data-step'), figures: e.querySelector('.figures')?.textContent })));
    expect(bars).toEqual(api.steps.map((s) => ({ step: s.step, figures: `${s.reached} · ${Math.round((100 * s.reached) / 8)}%` })));
    // The bar of a step is as wide as its reach; the part that ended there, as wide as its share.
    const widths = await page.locator('#funnel li .reach').evaluateAll((els) => els.map((e) => e.getBoundingClientRect().width));
    expect(widths[0]).toBeGreaterThan(0);
    const sales = api.steps.findIndex((s) => s.step === 'transfer-sales');
    expect(widths[sales]! / widths[0]!).toBeCloseTo(3 / 8, 1);
    const mainMenu = page.locator('#funnel li[data-step="main-menu"] .ended > div');
    expect(await mainMenu.count()).toBe(1);
    expect(await mainMenu.getAttribute('class')).toBe('out-caller_hangup');
    const hungUp = await mainMenu.evaluate((e) => e.getBoundingClientRect().width);
    const mainIdx = api.steps.findIndex((s) => s.step === 'main-menu');
    expect(hungUp / widths[mainIdx]!).toBeCloseTo(2 / 8, 1);

    const rows = await page
      .locator('#steps tbody tr')
      .evaluateAll((els) => els.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
    expect(rows.map((r) => [r[0], r[1], r[4], r[5], r[6]])).toEqual(
      api.steps.map((s) => [
        s.step,
        String(s.reached),
        String(Object.values(s.last).reduce((a, b) => a + b, 0)),
        String(s.hangups),
        String(s.transfers),
      ]),
    );
    expect(rows.find((r) => r[0] === 'main-menu')![7]).toBe('caller_hangup 2');

    const shot = process.env.UPDATE_SCREENSHOTS === '1' ? 'docs/images/funnel.png' : 'test-output/funnel.png';
    mkdirSync(path.dirname(shot), { recursive: true });
    await page.screenshot({ path: shot, fullPage: true });

    // Another version: nothing recorded under it.
    await page.fill('#f-version', 'v-none');
    await page.click('#f-go');
    await page.locator('#funnel-empty:not([hidden])').waitFor({ timeout: WAIT_MS });
    expect(pageErrors).toEqual([]);
  }, 120_000);
});
