/**
 * Reload without restart and canary routes (issue 25, items 4 and 5), on one real replica: the
 * real emulator, app and forked workers, one warm slot and one idle worker, bots in a temporary
 * directory under test-output/ (at the depth of test/fixtures/bots, so their `../../../src/sdk`
 * import resolves, from BOTS_DIR and from its reload snapshots alike).
 *
 *  - a reload during a 20-call burst drops no call; each call's record names the version the
 *    caller heard (the bot says its version), and every call placed after the reload answered got v2;
 *  - a bot with a syntax error, and one whose prewarm() throws, are refused (422, the bot and the
 *    error named, one log line) and v2 keeps answering, also from workers started after the refusal;
 *  - a canary route over 400 caller numbers: the split is within tolerance and sticky per number.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/core/logger.js';
import { canaryPlace, loadRoutes } from '../../src/admission/router.js';
import type { PinlessCall } from '../../src/daily/types.js';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';

const ROOT = path.resolve(import.meta.dirname, '../../test-output', `reload-${process.pid}`);
const BOTS = path.join(ROOT, 'bots');
const TOKEN = 'reload-test-token-0123456789abcdef';

const menuBot = (version: string, body = '') => `import { defineBot } from '../../../src/sdk/index.js';
${body}
export default defineBot({
  name: 'menu',
  version: '${version}',
  async onCall(call) {
    await call.say('menu version ${version}');
    await call.hangup('done');
  },
});
`;
const canaryBot = `import { defineBot } from '../../../src/sdk/index.js';
export default defineBot({
  name: 'menu-v2',
  version: 'canary-1',
  async onCall(call) {
    await call.say('menu version canary');
    await call.hangup('done');
  },
});
`;

interface Logged {
  msg: string;
  [k: string]: unknown;
}

describe('reload without restart', () => {
  let stack: Stack;
  const lines: Logged[] = [];

  const reload = async () => {
    const res = await fetch(`${stack.url}/admin/reload`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  /** Places a call; resolves with what the bot said its version was and the call's record. */
  const call = async (from?: string) => {
    const c = stack.emulator.placeCall({
      to: NUMBER,
      ...(from ? { from } : {}),
      script: [{ waitFor: 'say', match: 'menu version', timeoutMs: 120_000 }],
    });
    await c.ended;
    const rec = await stack.waitEnded(c.callId, 30_000);
    const said = c.transcript.find((l) => l.who === 'bot' && l.text.startsWith('menu version'))?.text.replace('menu version ', '');
    return { said, rec };
  };

  beforeAll(async () => {
    rmSync(ROOT, { recursive: true, force: true });
    mkdirSync(BOTS, { recursive: true });
    writeFileSync(path.join(BOTS, 'menu.ts'), menuBot('v1'));
    writeFileSync(path.join(BOTS, 'routes.json'), JSON.stringify({ default: 'menu' }));
    // Log lines as objects (the refusal's line is asserted).
    const logger = createLogger({
      level: 'info',
      name: 'test',
      destination: { write: (l: string) => void lines.push(JSON.parse(l) as Logged) },
    });
    stack = await startStack({
      logger,
      env: {
        BOTS_DIR: BOTS,
        DASHBOARD_TOKEN: TOKEN,
        IDLE_WORKERS: '1',
        WARM_ROOMS: '1',
        MAX_CONCURRENT_BOTS: '10',
        LOG_LEVEL: 'info',
        // 20 calls start 20 workers on this machine's 2 shared cores: a slow start is not what is tested here.
        DIALIN_READY_TIMEOUT_MS: '20000',
        JOIN_TIMEOUT_MS: '20000',
        PINLESS_UPDATE_DEADLINE_MS: '20000',
        QUEUE_TIMEOUT_MS: '90000',
        HOLD_BUDGET_MS: '120000',
      },
    });
    // Until the first reload, workers load BOTS_DIR itself (a worker started after an edit runs the
    // edit: docs/operations.md); from it on, the snapshot it took. Reload once to pin v1.
    const first = await reload();
    expect(first.status, JSON.stringify(first.body)).toBe(200);
  }, 90_000);

  afterAll(async () => {
    await stack?.close();
    rmSync(ROOT, { recursive: true, force: true });
  });

  it('a reload during a 20-call burst drops no call, and each record names the version that served it', async () => {
    const calls: Array<ReturnType<typeof call>> = [];
    const place = async () => {
      calls.push(call());
      await new Promise((r) => setTimeout(r, 150));
    };
    // 6 calls, then the reload; calls go on while it runs (up to 16 in all), and the rest after its answer.
    while (calls.length < 6) await place();
    writeFileSync(path.join(BOTS, 'menu.ts'), menuBot('v2'));
    let answered = false;
    const reloading = reload().finally(() => (answered = true));
    while (!answered && calls.length < 16) await place();
    await reloading;
    const firstAfter = calls.length;
    while (calls.length < 20) await place();
    const [r, results] = await Promise.all([reloading, Promise.all(calls)]);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ generation: 2, bots: { menu: 'v2' } });
    for (const { said, rec } of results) {
      expect(rec.outcome).toBe('completed');
      expect(said).toMatch(/^v[12]$/);
      expect(rec.botVersion).toBe(said);
    }
    expect(results.filter((x) => x.said === 'v1').length).toBeGreaterThan(0);
    for (const x of results.slice(firstAfter)) expect(x.said).toBe('v2');
    const status = (await (await fetch(`${stack.url}/status`)).json()) as { bots: { generation: number; bots: Record<string, string> } };
    expect(status.bots).toMatchObject({ generation: 2, bots: { menu: 'v2' } });
  }, 180_000);

  it('a broken bot is refused with the bot and the error named, and v2 keeps answering', async () => {
    writeFileSync(path.join(BOTS, 'menu.ts'), menuBot('v3', 'const broken = ;'));
    const bad = await reload();
    expect(bad.status, JSON.stringify(bad.body)).toBe(422);
    expect(bad.body).toMatchObject({ error: 'bot_load_failed', bot: 'menu' });
    expect(String(bad.body.message)).toMatch(/menu\.ts/);
    const line = lines.find((l) => l.msg === 'reload refused; the running bots keep serving');
    expect(line).toMatchObject({ code: 'bot_load_failed', bot: 'menu' });

    writeFileSync(
      path.join(BOTS, 'menu.ts'),
      menuBot('v4', '').replace('async onCall', 'prewarm() { throw new Error("model file missing"); },\n  async onCall'),
    );
    const prewarm = await reload();
    expect(prewarm.status).toBe(422);
    expect(String(prewarm.body.message)).toMatch(/prewarm\(\) failed.*model file missing/);

    // More calls than the idle workers and the warm slot: some run on workers started after the refusals.
    const after = await Promise.all(Array.from({ length: 3 }, () => call()));
    for (const { said, rec } of after) {
      expect(rec.outcome).toBe('completed');
      expect(said).toBe('v2');
      expect(rec.botVersion).toBe('v2');
    }
    // Snapshots of refused trees are kept for nobody: at most the live one and its predecessors.
    expect(readdirSync(ROOT).filter((n) => n.startsWith('.bots@')).length).toBeLessThanOrEqual(4);
  }, 60_000);

  it('a canary route splits callers by number, within tolerance, the same way every time', async () => {
    writeFileSync(path.join(BOTS, 'menu.ts'), menuBot('v2'));
    writeFileSync(path.join(BOTS, 'menu-v2.ts'), canaryBot);
    writeFileSync(path.join(BOTS, 'routes.json'), JSON.stringify({ default: 'menu', canary: { bot: 'menu-v2', percent: 10 } }));
    const ok = await reload();
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(ok.body.bots).toMatchObject({ menu: 'v2', 'menu-v2': 'canary-1' });

    // The split over 400 callers: the router the dispatcher runs, loaded from the same routes file
    // (400 real calls would take minutes here; the real calls below check that admission follows it).
    const { route } = loadRoutes({ botsDir: BOTS, defaultBot: 'menu' });
    const pinless = (from: string): PinlessCall => ({ to: NUMBER, from, callId: 'c', callDomain: 'd', sipHeaders: {} });
    const numbers = Array.from({ length: 400 }, (_, i) => `+1555${String(2_000_000 + i * 7919).padStart(7, '0')}`);
    const sides = numbers.map((n) => route(pinless(n)));
    const canaries = sides.filter((s) => typeof s !== 'string' && s.side === 'canary').length;
    // 10 % of 400 = 40; binomial sd = sqrt(400 · 0.1 · 0.9) = 6: ±3 sd.
    expect(canaries).toBeGreaterThanOrEqual(22);
    expect(canaries).toBeLessThanOrEqual(58);
    for (const n of numbers) expect(route(pinless(n))).toEqual(route(pinless(n.replace('+1555', '+1 (555) '))));
    expect(new Set(numbers.map((n) => canaryPlace(n, 'menu-v2') < 10)).size).toBe(2);
    // A canary naming a bot that does not exist, or a share past 100 %, is refused when loaded.
    const bad = (canary: unknown) => {
      writeFileSync(path.join(ROOT, 'bad-routes.json'), JSON.stringify({ default: 'menu', canary }));
      return () => loadRoutes({ botsDir: BOTS, defaultBot: 'menu', routesFile: path.join(ROOT, 'bad-routes.json') });
    };
    expect(bad({ bot: 'menu-v9', percent: 10 })).toThrow(/unknown bot "menu-v9"/);
    expect(bad({ bot: 'menu-v2', percent: 150 })).toThrow(/canary\.percent/);

    // Real calls through admission: a canary caller and a stable one; the record's bot is the side that served it.
    const canaryNum = numbers.find((n) => canaryPlace(n, 'menu-v2') < 10)!;
    const stableNum = numbers.find((n) => canaryPlace(n, 'menu-v2') >= 10)!;
    const real = await Promise.all([canaryNum, stableNum].map((n) => call(n)));
    real.forEach(({ said, rec }, i) => {
      const isCanary = i === 0;
      expect(said).toBe(isCanary ? 'canary' : 'v2');
      expect((rec as { bot?: string }).bot).toBe(isCanary ? 'menu-v2' : 'menu');
    });
  }, 60_000);
});
