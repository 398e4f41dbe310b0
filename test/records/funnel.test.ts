/**
 * Step funnels (issue 25) over real calls: the real emulator places scripted calls to the example
 * `ivr-menu` bot (real app, real workers) that end at known steps; GET /analytics/funnel must give
 * the counts a hand count of those scripts gives, on SQLite and on a real PostgreSQL server; the
 * medians equal the ones computed from the stored calls' own step events; the version filter and
 * the time range select; `patchbay_bot_step_total` counts each call once per step reached.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { botSourceHash, resolveBotFile } from '../../src/core/bot-files.js';
import type { CallerStep } from '../../src/emulator/types.js';
import { startPostgres, type PgServer } from '../helpers/postgres.js';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';

const BOTS = path.resolve('bots');
const dir = mkdtempSync(path.join(tmpdir(), 'patchbay-funnel-'));
let pg: PgServer | undefined;

afterAll(async () => {
  await pg?.remove();
  rmSync(dir, { recursive: true, force: true });
});

/** The scripts, and by hand: the steps each call reaches, its last step and outcome, and whether it transferred. */
const SCRIPTS: Array<{ name: string; script: CallerStep[] }> = [
  { name: 'sales', script: [{ waitFor: 'say', match: 'Press 1' }, { press: '1' }] },
  { name: 'support', script: [{ waitFor: 'say', match: 'Press 1' }, { press: '2' }] },
  { name: 'hangs up at the menu', script: [{ waitFor: 'say', match: 'Press 1' }, { wait: 300 }, { hangup: true }] },
  {
    name: 'wrong key, then hangs up at the menu again',
    script: [
      { waitFor: 'say', match: 'Press 1' },
      { press: '7' },
      { waitFor: 'say', match: 'not an option' },
      { wait: 300 },
      { hangup: true },
    ],
  },
  { name: 'never answers: goodbye', script: [{ waitFor: 'say', match: 'Goodbye' }] },
];
const HAND_COUNT = {
  welcome: { reached: 5, last: {}, hangups: 0, transfers: 0 },
  'main-menu': { reached: 5, last: { caller_hangup: 2 }, hangups: 2, transfers: 0 },
  'transfer-sales': { reached: 1, last: { completed: 1 }, hangups: 0, transfers: 1 },
  'transfer-support': { reached: 1, last: { completed: 1 }, hangups: 0, transfers: 1 },
  goodbye: { reached: 1, last: { completed: 1 }, hangups: 0, transfers: 0 },
};

interface Funnel {
  bot: string;
  version?: string;
  steps: Array<{ step: string; reached: number; last: Record<string, number>; medianMs: number; hangups: number; transfers: number }>;
}
interface Stored {
  id: string;
  botVersion: string | null;
  endedAtMs: number;
  events: Array<{ kind: string; value: string; atMs: number }>;
}

/** Time spent per step in one call, from its events (a step lasts until the next one, the last until the end). */
function spentByHand(c: Stored): Map<string, number> {
  const out = new Map<string, number>();
  const steps = c.events.filter((e) => e.kind === 'step');
  steps.forEach((e, i) => {
    const until = steps[i + 1]?.atMs ?? c.endedAtMs;
    out.set(e.value, (out.get(e.value) ?? 0) + (until - e.atMs));
  });
  return out;
}

const lowerMedian = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.ceil(xs.length / 2) - 1]!;

describe.each(['sqlite', 'postgres'] as const)('funnel on %s', (kind) => {
  let stack: Stack;
  let t0: number;

  beforeAll(async () => {
    let db: Record<string, string>;
    if (kind === 'postgres') {
      pg ??= await startPostgres();
      db = { DATABASE_URL: await pg.createDatabase('funnel') };
    } else db = { CALL_RECORDS_PATH: path.join(dir, 'calls.db') };
    stack = await startStack({
      env: { ...db, IDLE_WORKERS: '2' },
      runtime: {
        route: () => ({
          bot: 'ivr-menu',
          config: { salesUri: 'sip:sales@pbx.test', supportUri: 'sip:support@pbx.test', attempts: 2, digitTimeoutMs: 1_500 },
        }),
        preloadBots: ['ivr-menu'],
      },
    });
  }, 90_000);
  afterAll(async () => {
    await stack?.close();
  });

  it('counts what a hand count of scripted calls gives: reached, last by outcome, hang-ups, transfers, medians', async () => {
    t0 = Date.now();
    const calls = SCRIPTS.map((s) => stack.emulator.placeCall({ to: NUMBER, from: '+15557654321', script: s.script }));
    const records = await Promise.all(calls.map((c) => c.ended.then(() => stack.waitEnded(c.callId, 30_000))));
    expect(records.map((r) => r.outcome)).toEqual(['completed', 'completed', 'caller_hangup', 'caller_hangup', 'completed']);

    const res = await fetch(`${stack.url}/analytics/funnel?bot=ivr-menu`);
    expect(res.status).toBe(200);
    const funnel = (await res.json()) as Funnel;
    expect(funnel.bot).toBe('ivr-menu');
    const got = Object.fromEntries(
      funnel.steps.map(({ step, reached, last, hangups, transfers }) => [step, { reached, last, hangups, transfers }]),
    );
    expect(got).toEqual(HAND_COUNT);
    // Most reached first; of equal reach, the one calls entered first.
    expect(funnel.steps.slice(0, 2).map((s) => s.step)).toEqual(['welcome', 'main-menu']);

    // Medians: from each stored call's own events.
    const stored = await Promise.all(
      records.map(async (r) => ((await (await fetch(`${stack.url}/calls/${r.id}`)).json()) as { call: Stored }).call),
    );
    for (const s of funnel.steps) {
      const spent = stored.map(spentByHand).flatMap((m) => (m.has(s.step) ? [m.get(s.step)!] : []));
      expect(spent).toHaveLength(s.reached);
      expect(s.medianMs, s.step).toBe(lowerMedian(spent));
    }
    expect(funnel.steps.find((s) => s.step === 'main-menu')!.medianMs).toBeGreaterThan(0);

    // Every record names the version that served it: here the hash of bots/ivr-menu.ts (no declared version).
    const hash = botSourceHash(BOTS, resolveBotFile(BOTS, 'ivr-menu')!);
    expect(stored.map((c) => c.botVersion)).toEqual(stored.map(() => hash));
    const byVersion = (await (await fetch(`${stack.url}/analytics/funnel?bot=ivr-menu&version=${hash}`)).json()) as Funnel;
    expect(byVersion).toEqual({ ...funnel, version: hash });
    const otherVersion = (await (await fetch(`${stack.url}/analytics/funnel?bot=ivr-menu&version=v0-none`)).json()) as Funnel;
    expect(otherVersion.steps).toEqual([]);
    const later = new Date(Date.now() + 60_000).toISOString();
    const outOfRange = (await (await fetch(`${stack.url}/analytics/funnel?bot=ivr-menu&from=${later}`)).json()) as Funnel;
    expect(outOfRange.steps).toEqual([]);
    const inRange = (await (
      await fetch(`${stack.url}/analytics/funnel?bot=ivr-menu&from=${new Date(t0 - 1_000).toISOString()}&to=${later}`)
    ).json()) as Funnel;
    expect(inRange.steps).toEqual(funnel.steps);
    const otherBot = (await (await fetch(`${stack.url}/analytics/funnel?bot=greeter`)).json()) as Funnel;
    expect(otherBot.steps).toEqual([]);

    // The metric: calls that reached each step, once per call (main-menu was visited twice by one of them).
    const metrics = await (await fetch(`${stack.url}/metrics`)).text();
    for (const [step, c] of Object.entries(HAND_COUNT))
      expect(metrics, step).toContain(`patchbay_bot_step_total{bot="ivr-menu",step="${step}"} ${c.reached}`);
  }, 120_000);

  it('refuses a query without a bot, with an unknown parameter or a bad time', async () => {
    for (const [q, msg] of [
      ['', /"bot" is required/],
      ['bot=ivr-menu&outcome=completed', /unknown query parameter "outcome"/],
      ['bot=ivr-menu&from=yesterday', /from must be an ISO 8601 time/],
      ['bot=../x', /bot/],
    ] as const) {
      const res = await fetch(`${stack.url}/analytics/funnel?${q}`);
      expect(res.status, q).toBe(400);
      expect(((await res.json()) as { message: string }).message).toMatch(msg);
    }
  });
});
