/**
 * `call.step()` and the `step` option of `collectDigits` and `listen` (issue 25, item 1), in a real
 * worker against the real emulator (patchbay/testing): each marks a `step` event, in order, with
 * its time; a name that is not a step name is refused with a TypeError and marks nothing; the
 * record carries the bot's declared version.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBotTest } from '../../src/testing/index.js';

const BOT = path.resolve('test/fixtures/bots/steps.ts');

describe('steps', () => {
  it('call.step, collectDigits({ step }) and listen({ step }) mark steps in order; bad names are refused', async () => {
    const r = await runBotTest(BOT, { caller: [{ wait: 500 }, { press: '4' }] });
    expect(r.outcome).toBe('completed');
    expect(r.steps).toEqual(['start', 'menu', 'ask', 'menu']);
    expect(r.said.filter((s) => s.startsWith('refused'))).toEqual(Array(4).fill('refused: TypeError'));
    expect(r.said.at(-1)).toBe('pressed 4');
    const steps = r.events.filter((e) => e.kind === 'step');
    for (let i = 1; i < steps.length; i++) expect(steps[i]!.atMs).toBeGreaterThanOrEqual(steps[i - 1]!.atMs);
    expect(r.version).toBe('steps-1');
  }, 60_000);
});
