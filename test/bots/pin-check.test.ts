import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pinCheck from '../../bots/pin-check.js';
import { createBotHarness, type BotHarness } from '../../src/testing/index.js';

describe('pin-check bot', () => {
  let h: BotHarness;
  beforeAll(async () => {
    h = await createBotHarness({ firstBot: pinCheck });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('accepts the right PIN ended by #', async () => {
    const r = await h.run(pinCheck, { config: { pin: '4321' }, caller: [{ waitFor: 'say', match: /enter your PIN/ }, { press: '4321#' }] });
    expect(r.digits).toEqual(['4321']);
    expect(r.said.at(-1)).toBe('PIN accepted. Welcome back!');
    expect(r.hangup).toBe('pin accepted');
    expect(r.outcome).toBe('completed');
  }, 30_000);

  it('branches on a wrong PIN: retry, then accept', async () => {
    const r = await h.run(pinCheck, {
      config: { pin: '4321' },
      caller: [
        { waitFor: 'say', match: /enter your PIN/ },
        { press: '1111#' },
        { waitFor: 'say', match: /not correct/ },
        { press: '4321#' },
      ],
    });
    expect(r.digits).toEqual(['1111', '4321']);
    expect(r.steps).toEqual(['pin', 'pin-retry', 'welcome-back']);
    expect(r.said).toContain('That PIN is not correct. Please try again.');
    expect(r.hangup).toBe('pin accepted');
  }, 30_000);

  it('hangs up after three wrong PINs', async () => {
    const r = await h.run(pinCheck, {
      caller: [
        { waitFor: 'say', match: /enter your PIN/ },
        { press: '0#' },
        { waitFor: 'say', match: /not correct/ },
        { press: '00#' },
        { waitFor: 'say', match: /not correct/ },
        { press: '000#' },
      ],
    });
    expect(r.digits).toEqual(['0', '00', '000']);
    expect(r.said.at(-1)).toBe('Too many attempts. Goodbye.');
    expect(r.hangup).toBe('pin rejected');
    expect(r.outcome).toBe('completed');
  }, 30_000);

  it('says goodbye when no PIN comes', async () => {
    const r = await h.run(pinCheck, { config: { digitTimeoutMs: 500 }, caller: [{ waitFor: 'say', match: /goodbye/ }] });
    expect(r.digits).toEqual(['']);
    expect(r.hangup).toBe('no pin');
  }, 30_000);
});
