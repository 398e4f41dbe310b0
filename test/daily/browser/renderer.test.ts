/**
 * A shared-layout page finds its own renderer process (for the worker's memory watch) even when
 * other pages of the same browser are finding theirs at the same moment: each spins its main
 * thread on its own random schedule, and the renderer whose CPU time follows that schedule is its.
 * Several workers start at once after a browser restart, so this is the common case, not a corner.
 */
import { existsSync } from 'node:fs';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSharedPage, type BotPage } from '../../../src/daily/browser/bot-page.js';
import { BrowserHost } from '../../../src/daily/browser/host.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`SKIPPING test/daily-browser-renderer.test.ts: ${CHROMIUM} is missing`);
const log = pino({ level: 'silent' });
const PAGES = 3;

describe.skipIf(!haveChromium)("a shared page's renderer", () => {
  let host: BrowserHost;
  const pages: BotPage[] = [];

  beforeAll(async () => {
    host = new BrowserHost({ chromiumPath: CHROMIUM, browsers: 1, botsPerBrowser: PAGES, logger: log });
    await host.start();
    for (let i = 0; i < PAGES; i++) {
      const lease = host.lease()!;
      const page = await openSharedPage({
        chromiumPath: CHROMIUM,
        timeoutMs: 10_000,
        extraChromiumArgs: [],
        log,
        wsEndpoint: lease.wsEndpoint,
        browserPid: lease.browserPid,
      });
      // Each page on its own site, so that Chromium gives each its own renderer.
      await page.driver.goto(`data:text/html,<title>page ${i}</title>`, 10_000);
      pages.push(page);
    }
  }, 60_000);

  afterAll(async () => {
    for (const p of pages) await p.close(2_000);
    await host?.close();
  });

  it('pages that look for their renderers all at once each find their own', async () => {
    const spin = (p: BotPage) => (ms: number) =>
      p.driver.evaluate(`(() => { const t = performance.now(); while (performance.now() - t < ${ms}) {} return 1; })()`);
    // Started in the same tick: every page spins at the same moments unless the schedules differ.
    await Promise.all(pages.map((p) => p.identifyRenderer(spin(p))));
    const found = await Promise.all(pages.map(async (p) => (await p.pids())[0]));
    expect(
      found.every((pid) => pid !== undefined),
      `renderers: ${found.join(', ')}`,
    ).toBe(true);
    expect(new Set(found).size).toBe(PAGES);

    // And each is right: memory held by page 1 shows in page 1's count, not in the others'.
    const before = await Promise.all(pages.map((p) => p.memoryBytes()));
    await pages[1]!.driver.evaluate('window.__hold = Array.from({ length: 12 }, () => new Uint8Array(16 << 20).fill(1)); 1');
    const after = await Promise.all(pages.map((p) => p.memoryBytes()));
    const grownMb = after.map((a, i) => (a - before[i]!) / 1048576);
    expect(grownMb[1], `grown MB: ${grownMb.map((g) => g.toFixed(0)).join(', ')}`).toBeGreaterThan(150);
    expect(grownMb[0]).toBeLessThan(50);
    expect(grownMb[2]).toBeLessThan(50);
  }, 60_000);
});
