/**
 * The dashboard's call detail view in a real headless Chromium (playwright-core) against the real
 * emulator, app and workers, with records in a SQLite file: click a live call and watch its
 * conversation grow, see it end; search the history by number and bot; export CSV. The screenshot
 * goes to test-output/call-detail.png; `UPDATE_SCREENSHOTS=1` writes docs/images/call-detail.png
 * (docs/operations.md) instead.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'records-dashboard-token-0123456789';
const CALLER = '+15557654321';
const WAIT_MS = 20_000;
const dir = mkdtempSync(path.join(tmpdir(), 'patchbay-records-dash-'));

describe('call detail in the dashboard (Chromium)', () => {
  let stack: Stack;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing (apt-get install -y chromium; .ci/run does)`);
    [stack, browser] = await Promise.all([
      startStack({
        env: { DASHBOARD_TOKEN: TOKEN, CALL_RECORDS_PATH: path.join(dir, 'calls.db') },
        emulator: { holdTimeoutMs: 15_000 },
        runtime: {
          route: () => ({
            bot: 'ivr-menu',
            config: { salesUri: 'sip:sales@pbx.test', supportUri: 'sip:support@pbx.test', digitTimeoutMs: 8_000 },
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
    page = await browser.newPage({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
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

  it('shows a live call as a conversation that grows, then its end; searches and exports the history', async () => {
    await page.goto(`${stack.url}/dashboard?token=${TOKEN}`);
    await page.locator('#conn[data-state="open"]').waitFor({ timeout: WAIT_MS });

    const call = stack.emulator.placeCall({
      to: NUMBER,
      from: CALLER,
      script: [
        { waitFor: 'say', match: 'Press 1' },
        { wait: 500 },
        { press: '7' },
        { waitFor: 'say', match: 'not an option' },
        { wait: 2_500 },
        { press: '1' },
      ],
    });
    const liveRow = page.locator(`#live tbody tr[data-call-id="${call.callId}"]`);
    await liveRow.waitFor({ timeout: WAIT_MS });
    await liveRow.click();
    const detail = page.locator('#detail');
    await page.locator('#detail[data-live="true"]').waitFor({ timeout: WAIT_MS });
    await detail.locator('.msg.bot', { hasText: 'Thanks for calling.' }).waitFor({ timeout: WAIT_MS });
    // While the call is still live, what happens next appears without a click.
    await page.locator('#detail[data-live="true"] .msg[data-kind="digits"]').waitFor({ timeout: WAIT_MS });
    expect(await page.locator('#detail[data-live="true"] .msg.bot', { hasText: 'is not an option' }).count()).toBe(1);

    // The end: the view follows the call to its outcome.
    await call.ended;
    await page.locator('#detail[data-live="false"]').waitFor({ timeout: WAIT_MS });
    await expect.poll(() => page.locator('#detail-status').textContent(), { timeout: WAIT_MS }).toBe('completed');
    const allKinds = await detail.locator('.msg').evaluateAll((els) => els.map((e) => e.getAttribute('data-kind')));
    const allSaid = await detail.locator('.msg .text').allTextContents();
    // A key pressed while the menu plays interrupts it: turn-taking's `turn` entry ("interrupted (key)"),
    // there when the key came before the prompt's end (timing), and only that.
    expect(allSaid.filter((_, i) => allKinds[i] === 'turn').every((t) => t === 'interrupted (key)')).toBe(true);
    const kinds = allKinds.filter((k) => k !== 'turn');
    const said = allSaid.filter((_, i) => allKinds[i] !== 'turn');
    expect(kinds).toEqual(['step', 'say', 'step', 'say', 'digits', 'say', 'step', 'say', 'digits', 'step', 'say', 'transfer']);
    expect(said).toEqual([
      'step: welcome',
      'Thanks for calling.',
      'step: main-menu',
      'Press 1 for sales, 2 for support.',
      '[not stored]',
      'Sorry, 7 is not an option.',
      'step: main-menu',
      'Press 1 for sales, 2 for support.',
      '[not stored]',
      'step: transfer-sales',
      'Connecting you to sales.',
      'transfer to sip:*ales@pbx.test',
    ]);
    const stages = await page.locator('#detail-timeline li').evaluateAll((els) => els.map((e) => e.getAttribute('data-stage')));
    for (const s of ['received', 'queued', 'worker_assigned', 'joined', 'dialin_ready', 'connected', 'ended']) expect(stages).toContain(s);
    expect(stages.indexOf('received')).toBe(0);
    expect(stages.at(-1)).toBe('ended');
    const text = await page.locator('body').innerText();
    expect(text).toContain('4321');
    expect(text).not.toContain('5557654321');
    // test-output/ always; the picture in the docs with UPDATE_SCREENSHOTS=1.
    const shot = process.env.UPDATE_SCREENSHOTS === '1' ? 'docs/images/call-detail.png' : 'test-output/call-detail.png';
    mkdirSync(path.dirname(shot), { recursive: true });
    await page.screenshot({ path: shot, fullPage: true });

    // Search: by the caller's last digits, by bot; another number finds nothing.
    const other = stack.emulator.placeCall({
      to: NUMBER,
      from: '+15550002222',
      script: [{ waitFor: 'say', match: 'Press 1' }, { hangup: true }],
    });
    await other.ended;
    await page.locator(`#recent tbody tr[data-call-id="${other.callId}"]`).waitFor({ timeout: WAIT_MS });
    await page.fill('#search-number', '4321');
    await page.click('#search-go');
    await expect
      .poll(() => page.locator('#recent tbody tr').evaluateAll((els) => els.map((e) => e.getAttribute('data-call-id'))), {
        timeout: WAIT_MS,
      })
      .toEqual([call.callId]);
    await page.fill('#search-number', '');
    await page.fill('#search-bot', 'no-such-bot');
    await page.click('#search-go');
    await page.locator('#recent-empty:not([hidden])').waitFor({ timeout: WAIT_MS });
    await page.click('#search-clear');
    await expect.poll(() => page.locator('#recent tbody tr').count(), { timeout: WAIT_MS }).toBe(2);

    // Export what is shown (CSV), fetched with the token header, saved as a file.
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: WAIT_MS }), page.click('#export-csv')]);
    expect(download.suggestedFilename()).toMatch(/^calls-.*\.csv$/);
    const csv = readFileSync(await download.path(), 'utf8');
    expect(csv.split('\r\n')[0]).toMatch(/^id,callId,/);
    expect(csv).toContain(call.callId);
    expect(csv).toContain(other.callId);
    expect(csv).not.toContain('5557654321');

    // An ended call from the list opens too.
    await page.locator(`#recent tbody tr[data-call-id="${other.callId}"]`).click();
    await expect
      .poll(() => page.locator('#detail').getAttribute('data-id'), { timeout: WAIT_MS })
      .toBe(stack.ended.find((r) => r.callId === other.callId)!.id);
    await page.locator('#detail[data-live="false"]').waitFor({ timeout: WAIT_MS });
    await page.click('#detail-close');
    expect(await detail.isHidden()).toBe(true);
    expect(pageErrors).toEqual([]);
  }, 90_000);
});
