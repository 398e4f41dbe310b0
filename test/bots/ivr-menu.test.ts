import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import menu from '../../bots/ivr-menu.js';
import { createBotHarness, type BotHarness } from '../../src/testing/index.js';

const config = { salesUri: 'sip:sales@pbx.test', supportUri: 'sip:support@pbx.test', digitTimeoutMs: 600, attempts: 2 };

describe('ivr-menu bot', () => {
  let h: BotHarness;
  beforeAll(async () => {
    h = await createBotHarness({ firstBot: menu });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('transfers to sales on 1, to the SIP URI from its config', async () => {
    const r = await h.run(menu, { config, caller: [{ waitFor: 'say', match: /press 1 for sales/ }, { press: '1' }] });
    expect(r.outcome).toBe('completed');
    expect(r.digits).toEqual(['1']);
    expect(r.transfer).toBe('sip:sales@pbx.test');
    expect(r.said).toContain('Connecting you to sales.');
    expect(r.detail).toBe('transferred to sip:sales@pbx.test');
    // The caller really was referred (not just hung up on).
    expect(r.callerEnd).toBe('transferred');
    expect(r.transcript.some((l) => l.who === 'system' && l.text === 'referred to sip:sales@pbx.test')).toBe(true);
    // Barge-in: the key stopped the menu prompt.
    expect(r.transcript.some((l) => l.who === 'system' && l.text === 'bot audio interrupted')).toBe(true);
  }, 30_000);

  it('re-prompts after a wrong key and then transfers to support', async () => {
    const r = await h.run(menu, {
      config,
      caller: [{ waitFor: 'say', match: /press 1/ }, { press: '7' }, { waitFor: 'say', match: /7 is not an option/ }, { press: '2' }],
    });
    expect(r.digits).toEqual(['7', '2']);
    expect(r.transfer).toBe('sip:support@pbx.test');
    // '2' was typed during the apology, so the interruptible menu prompt is not played again.
    expect(r.said.filter((s) => s.startsWith('Press 1'))).toHaveLength(1);
    expect(r.outcome).toBe('completed');
  }, 30_000);

  it('says goodbye and hangs up when the caller presses nothing', async () => {
    const r = await h.run(menu, { config, caller: [{ waitFor: 'say', match: /goodbye/ }] });
    expect(r.digits).toEqual(['', '']);
    expect(r.said).toEqual([
      'Thanks for calling.',
      'Press 1 for sales, 2 for support.',
      "Sorry, I didn't get that.",
      'Press 1 for sales, 2 for support.',
      'Goodbye.',
    ]);
    expect(r.transfer).toBeUndefined();
    expect(r.hangup).toBe('no valid choice');
    expect(r.outcome).toBe('completed');
    expect(r.callerEnd).toBe('ejected');
  }, 30_000);
});
