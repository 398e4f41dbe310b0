/**
 * Callbacks instead of hold (issue 26, item 2) on the real app: the real emulator (callers, dial-out
 * far ends), real forked workers, the built-in offer bot, the callback store in the records database
 * (SQLite), the callbacks dialled through the outbound machinery. One stack for the file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmulatedCall } from '../../src/emulator/types.js';
import { FIXTURE_BOTS } from '../helpers/ops.js';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';
import { until } from '../helpers/invariants.js';

const said = (c: EmulatedCall) => c.transcript.filter((t) => t.who === 'bot').map((t) => t.text);
const BUSY = /All our agents are busy/;
const SERVED = /Hello, a inbound bot is here/;

describe('callbacks instead of hold (CALLBACK_OFFER=true)', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack({
      env: {
        BOTS_DIR: FIXTURE_BOTS,
        DEFAULT_BOT: 'callback',
        CALLBACK_OFFER: 'true',
        CALLBACK_OFFER_MAX_CONCURRENT: '4',
        MAX_CONCURRENT_BOTS: '1',
        MAX_QUEUED_CALLS: '0',
        IDLE_WORKERS: '1',
        OUTBOUND_MAX_CONCURRENT: '1',
        OUTBOUND_RING_TIMEOUT_MS: '5000',
        VOICEMAIL_DETECT: 'false',
        // Prompts as text (at once): what is tested is admission and the callbacks, not speech.
        TTS_PROVIDER: 'text',
      },
    });
  }, 60_000);
  afterAll(async () => {
    await s?.close();
  });

  const rows = () => s.rt.callbacks!.callbacks.list();
  const answering = (n: string) =>
    s.emulator.setDialOutTarget(n, {
      answer: 'answer',
      answerAfterMs: 50,
      script: [{ waitFor: 'say', match: 'callback', timeoutMs: 20_000 }],
    });

  it('a burst beyond capacity: every caller gets a bot or a recorded callback; each callback is placed once when capacity frees', async () => {
    const numbers = ['+15550002001', '+15550002002', '+15550002003'];
    for (const n of numbers) answering(n);
    // Every caller waits for the first line, presses 1 (the offer's "call me back on this number";
    // a served caller's key goes to its bot, which ignores it), and hangs up 2.5 s later.
    const calls = numbers.map((from) =>
      s.emulator.placeCall({
        to: NUMBER,
        from,
        script: [{ waitFor: 'say', timeoutMs: 30_000 }, { press: '1' }, { wait: 2_500 }, { hangup: true }],
      }),
    );
    await Promise.all(calls.map((c) => c.ended));
    const offered = calls.filter((c) => said(c).some((t) => BUSY.test(t)));
    const served = calls.filter((c) => said(c).some((t) => SERVED.test(t)));
    expect(offered.length + served.length).toBe(numbers.length);
    expect(served.length).toBeGreaterThanOrEqual(1);
    expect(offered.length).toBeGreaterThanOrEqual(1);
    for (const c of offered) expect(said(c).at(-1)).toMatch(/We will call you back/);
    // Each offered caller's callback is recorded, then placed once capacity frees (the served callers hung up).
    await until(
      async () => (await rows()).filter((r) => r.state === 'done').length === offered.length,
      60_000,
      'every callback placed',
    ).catch(async (err: unknown) => {
      console.log(
        JSON.stringify({ rows: await rows(), offered: offered.map((c) => [c.from, said(c)]), served: served.map((c) => c.from) }, null, 1),
      );
      console.log(JSON.stringify(s.ended.map((e) => [e.id, e.from, e.to, e.outcome, e.detail])));
      throw err;
    });
    const done = await rows();
    expect(done.map((r) => r.number).sort()).toEqual(offered.map((c) => c.from).sort());
    for (const r of done) {
      expect(r.result).toBe('answered');
      expect(r.bot).toBe('callback');
      expect(r.reason).toMatch(/^(queue_full|overloaded)$/);
      const legs = s.emulator.dialOutsTo(r.number);
      expect(legs).toHaveLength(1);
      // The bot saw call.callback: the original call's id and why.
      expect(said(legs[0]!).join(' ')).toContain(
        `This is your callback (${r.reason}) for call ${r.id} of ${new Date(r.requestedAtMs).toISOString()}`,
      );
      expect(s.ended.find((e) => e.id === r.id)?.from).toBe(r.number);
    }
    for (const c of served) expect(s.emulator.dialOutsTo(c.from)).toHaveLength(0);
    // Nothing dials again later.
    await new Promise((r) => setTimeout(r, 500));
    for (const r of done) expect(s.emulator.dialOutsTo(r.number)).toHaveLength(1);
  }, 120_000);

  it('a withheld number keys one in (a wrong one is asked again); it is called back on that number, after a try that got no room', async () => {
    // The bot slot taken by a caller who stays until told.
    const holders = [0].map(() => s.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'say', timeoutMs: 30_000 }, { wait: 60_000 }] }));
    await until(() => holders.every((h) => said(h).length > 0), 30_000, 'the slot busy');
    answering('+445550100200');
    const caller = s.emulator.placeCall({
      to: NUMBER,
      withheld: 'anonymous',
      script: [
        { waitFor: 'say', match: 'key in', timeoutMs: 30_000 },
        { press: '12#' },
        { waitFor: 'say', match: 'not a phone number' },
        { press: '445550100200#' },
        { waitFor: 'say', match: 'call you back' },
      ],
    });
    await caller.ended;
    expect(said(caller)[0]).toMatch(BUSY);
    await until(async () => (await rows()).some((r) => r.number === '+445550100200'), 10_000, 'the keyed-in callback stored');
    // Not before capacity frees: inbound callers keep their slots.
    await new Promise((r) => setTimeout(r, 500));
    expect(s.emulator.dialOutsTo('+445550100200')).toHaveLength(0);
    // Its first try cannot even get a room (Daily refuses once): nothing was dialled, so it waits again and is placed later.
    s.emulator.faults.inject({ method: 'POST', path: '/rooms', status: 400, times: 1 });
    for (const h of holders) h.hangup();
    await until(() => s.emulator.dialOutsTo('+445550100200').length === 1, 30_000, 'the callback dialled');
    await until(async () => (await rows()).find((r) => r.number === '+445550100200')?.state === 'done', 30_000, 'the callback done');
    expect(said(s.emulator.dialOutsTo('+445550100200')[0]!).join(' ')).toMatch(/This is your callback/);
    expect((await rows()).find((r) => r.number === '+445550100200')?.result).toBe('answered');
    // The refused try was an outbound call of its own that ended before dialling.
    expect(s.ended.filter((e) => e.to === '+445550100200').map((e) => e.outcome)).toEqual(['room_failed', 'completed']);
  }, 90_000);
});
