/**
 * The canary comparison (issue 25, item 5): GET /analytics/canary and the funnel page's Canary
 * section in a real headless Chromium (playwright-core), against the real app on a SQLite records
 * file. The records are written beforehand through the real records store (its public `close`), as
 * the dispatcher writes them: 60 calls on the stable bot and 40 on its canary, with known outcomes
 * and steps — 100 real calls would take minutes here, and the calls' path to the records is
 * covered by test/admission/reload.test.ts (the record's `bot` is the side that served it).
 * The figures are checked against a hand count: outcomes 42/18 vs 16/24 (chi-square 8.87, df 1,
 * p ≈ 0.003: larger than chance); `main-menu` reached by 50/60 vs 38/40 (z 1.76, p ≈ 0.079: not).
 * The screenshot goes to test-output/canary.png; `UPDATE_SCREENSHOTS=1` writes docs/images/canary.png.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/core/logger.js';
import { openRecordStore } from '../../src/records/open.js';
import type { RecordInput } from '../../src/records/types.js';
import { startStack, type Stack } from '../helpers/stack.js';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'canary-dashboard-token-0123456789';
const dir = mkdtempSync(path.join(tmpdir(), 'patchbay-canary-dash-'));
const DB = path.join(dir, 'calls.db');
const T = Date.now() - 3_600_000;

/** `n` ended calls of `bot` through `steps`, with `outcome`. */
function calls(bot: string, n: number, steps: string[], outcome: RecordInput['outcome'], from: number): RecordInput[] {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    const at = T + i * 10_000;
    return {
      id: `${bot}-${i}`,
      callId: `daily-${bot}-${i}`,
      callDomain: 'dom',
      from: `+1555${String(1_000_000 + i)}`,
      to: '+15550001000',
      bot,
      botVersion: bot === 'menu' ? 'v1' : 'canary-1',
      roomName: `room-${bot}-${i}`,
      state: 'ended',
      outcome,
      timeline: { received: at, ended: at + 100 + steps.length * 1_000 },
      events: steps.map((s, j) => ({ kind: 'step', value: s, atMs: at + 100 + j * 1_000 })),
    };
  });
}

describe('canary comparison (API and Chromium)', () => {
  let stack: Stack;
  let browser: Browser;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing (apt-get install -y chromium; .ci/run does)`);
    const store = await openRecordStore({ path: DB, storePii: false, logger: createLogger({ level: 'silent' }), replicaId: 'seed' });
    const both = ['welcome', 'main-menu'];
    for (const r of [
      // stable: 42 completed (40 reached main-menu), 18 hung up (10 reached it): 50 of 60 reached main-menu
      ...calls('menu', 40, both, 'completed', 0),
      ...calls('menu', 2, ['welcome'], 'completed', 40),
      ...calls('menu', 10, both, 'caller_hangup', 42),
      ...calls('menu', 8, ['welcome'], 'caller_hangup', 52),
      // canary: 16 completed, 24 hung up; 38 of 40 reached main-menu
      ...calls('menu-v2', 16, both, 'completed', 100),
      ...calls('menu-v2', 22, both, 'caller_hangup', 116),
      ...calls('menu-v2', 2, ['welcome'], 'caller_hangup', 138),
    ])
      store.close(r);
    await store.shutdown();
    [stack, browser] = await Promise.all([
      startStack({ env: { DASHBOARD_TOKEN: TOKEN, CALL_RECORDS_PATH: DB, IDLE_WORKERS: '0' } }),
      chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] }),
    ]);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await stack?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('compares the sides by outcome and by step, with the tests named and their p-values', async () => {
    const res = await fetch(`${stack.url}/analytics/canary?bot=menu&canary=menu-v2`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    const api = (await res.json()) as {
      stable: { calls: number; outcomes: Record<string, number> };
      canary: { calls: number; outcomes: Record<string, number> };
      outcomes: { test: string; statistic: number; df: number; p: number; significant: boolean; statement: string };
      steps: Array<{
        step: string;
        stable: { reached: number };
        canary: { reached: number };
        z: { statistic: number; p: number; significant: boolean };
      }>;
    };
    expect(api.stable).toMatchObject({ calls: 60, outcomes: { completed: 42, caller_hangup: 18 } });
    expect(api.canary).toMatchObject({ calls: 40, outcomes: { completed: 16, caller_hangup: 24 } });
    expect(api.outcomes).toMatchObject({ test: 'chi-square test of homogeneity', df: 1, significant: true });
    expect(api.outcomes.statistic).toBeCloseTo(8.867, 2);
    expect(api.outcomes.p).toBeCloseTo(0.0029, 3);
    expect(api.outcomes.statement).toMatch(
      /differ by more than chance would explain \(chi-square test of homogeneity, p = 0\.003 < 0\.05\)/,
    );
    const menu = api.steps.find((s) => s.step === 'main-menu')!;
    expect([menu.stable.reached, menu.canary.reached]).toEqual([50, 38]);
    expect(menu.z.statistic).toBeCloseTo(1.759, 2);
    expect(menu.z.p).toBeCloseTo(0.0786, 3);
    expect(menu.z.significant).toBe(false);
    // Refused without the token, as the dashboard is.
    expect((await fetch(`${stack.url}/analytics/canary?bot=menu&canary=menu-v2`)).status).toBe(401);

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${stack.url}/dashboard/funnel?token=${TOKEN}&bot=menu&canary=menu-v2`);
    await page.locator('body[data-canary-loaded="true"]').waitFor({ timeout: 20_000 });
    expect(await page.locator('#c-verdict').textContent()).toBe(api.outcomes.statement);
    const outcomeRows = await page
      .locator('#c-outcomes tbody tr')
      .evaluateAll((els) => els.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
    expect(outcomeRows).toContainEqual(['completed', '42', '70.0%', '16', '40.0%']);
    expect(outcomeRows).toContainEqual(['caller_hangup', '18', '30.0%', '24', '60.0%']);
    expect(outcomeRows).toContainEqual(['calls', '60', '', '40', '']);
    const stepRow = await page.locator('#c-steps tr[data-step="main-menu"] td').allTextContents();
    // 40 × (1 − 88/100) = 4.8 expected hang-ups before main-menu on the canary side: below 5, so approximate.
    expect(stepRow).toEqual(['main-menu', '50 · 83.3%', '38 · 95.0%', '0.079', 'no (few calls)']);
    const shot = process.env.UPDATE_SCREENSHOTS === '1' ? 'docs/images/canary.png' : 'test-output/canary.png';
    mkdirSync(path.dirname(shot), { recursive: true });
    await page.locator('body[data-loaded="true"]').waitFor({ timeout: 20_000 });
    await page.screenshot({ path: shot, fullPage: true });
    expect(errors).toEqual([]);
  }, 60_000);
});
