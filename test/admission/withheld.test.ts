/**
 * Issue 12 (patchbay's side), end to end through the real emulator, app and workers: withheld
 * caller IDs are real calls from `withheld`; a permanent Daily 400 on room creation is answered 502
 * (not 503 + Retry-After); long caller names are shortened before the room is created.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { signPinless } from '../../src/daily/signature.js';
import { MAX_DISPLAY_NAME_CHARS, WITHHELD_CALLER, WITHHELD_DISPLAY_NAME } from '../../src/daily/sip.js';
import type { EmulatedCall } from '../../src/emulator/types.js';
import { FIXTURE_BOTS } from '../helpers/ops.js';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';

/** The SIP participant's name once the caller is in the room (the room's `sip.display_name`). */
function sipNameWhenConnected(stack: Stack, call: EmulatedCall): Promise<string | undefined> {
  return new Promise((resolve) => {
    const off = call.on('state', (s) => {
      if (s !== 'connected') return;
      off();
      const p = stack.emulator
        .snapshot()
        .rooms.flatMap((r) => r.participants)
        .find((x) => x.isSip);
      resolve(p?.userName);
    });
    void call.ended.then(() => resolve(undefined));
  });
}

describe('withheld caller IDs', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      env: { BOTS_DIR: FIXTURE_BOTS, DEFAULT_BOT: 'say-from', MAX_CONCURRENT_BOTS: '1' },
      emulator: { holdTimeoutMs: 10_000 },
    });
  });
  afterAll(async () => {
    await stack?.close();
  });
  afterEach(() => stack.emulator.faults.clear());

  it.each([
    '',
    '   ',
    'anonymous',
    'Anonymous',
    'ANONYMOUS',
    'sip:anonymous@anonymous.invalid',
    '"Anonymous" <sip:anonymous@10.0.0.1>;tag=1',
    'restricted',
    'tel:private',
  ])(
    'From %j is a real call: connected, the bot and the record see "withheld", the room shows "Withheld"',
    async (from) => {
      const call = stack.emulator.placeCall({ to: NUMBER, from, script: [{ waitFor: 'say', match: 'Caller' }, { hangup: true }] });
      const sipName = sipNameWhenConnected(stack, call);
      const end = await call.ended;
      expect(call.webhook?.status).toBe(200);
      expect(end.reason).toBe('caller_hangup');
      expect(end.transcript.filter((l) => l.who === 'bot').map((l) => l.text)).toContain(`Caller ${WITHHELD_CALLER}.`);
      expect(await sipName).toBe(WITHHELD_DISPLAY_NAME);
      const rec = await stack.waitEnded(call.callId);
      expect(rec.from).toBe(WITHHELD_CALLER);
    },
    20_000,
  );

  it.each([
    ['no From at all', {}],
    ['From: null', { From: null }],
  ])(
    'a webhook with %s is a call from "withheld" too (200, not 400)',
    async (name, extra) => {
      // The emulator always sends a From string: post the webhook ourselves, signed, for a call it holds.
      const held = stack.emulator.placeCall({ to: NUMBER, from: '+15550002222' });
      await new Promise((r) => setTimeout(r, 20));
      const callId = `${held.callId}-${name.length}`;
      const body = JSON.stringify({ To: NUMBER, callId, callDomain: held.callDomain, ...extra });
      const ts = String(Math.floor(Date.now() / 1000));
      const res = await fetch(`${stack.url}/dialin`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-pinless-timestamp': ts,
          'x-pinless-signature': signPinless(body, stack.secret, ts),
        },
        body,
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ status: 'accepted' });
      const rec = await stack.waitEnded(callId, 20_000);
      expect(rec.from).toBe(WITHHELD_CALLER);
      held.hangup();
      await held.ended;
    },
    30_000,
  );

  it('a real number is kept; a long caller name is shortened for the room', async () => {
    const call = stack.emulator.placeCall({
      to: NUMBER,
      from: '+15557654321',
      script: [{ waitFor: 'say', match: 'Caller' }, { hangup: true }],
    });
    const name = sipNameWhenConnected(stack, call);
    const end = await call.ended;
    expect(end.transcript.filter((l) => l.who === 'bot').map((l) => l.text)).toContain('Caller +15557654321.');
    expect(await name).toBe('+15557654321');
    const long = `sip:${'a'.repeat(200)}@trunk.example.com`;
    const c2 = stack.emulator.placeCall({ to: NUMBER, from: long, script: [{ waitFor: 'say', match: 'Caller' }, { hangup: true }] });
    const n2 = sipNameWhenConnected(stack, c2);
    expect((await c2.ended).reason).toBe('caller_hangup');
    const shown = await n2;
    expect(shown).toBeDefined();
    expect([...shown!].length).toBeLessThanOrEqual(MAX_DISPLAY_NAME_CHARS);
    expect((await stack.waitEnded(c2.callId)).from).toBe(long);
  }, 30_000);

  it('a permanent Daily 400 on room creation is answered 502 without Retry-After (not 503), once, with a clear message', async () => {
    // Through the emulator's own call: Daily sees 502.
    stack.emulator.faults.inject({ method: 'POST', path: '/rooms', status: 400, times: 1 });
    const call = stack.emulator.placeCall({ to: NUMBER, from: '+15550003333' });
    const w0 = Date.now();
    while (call.webhook?.status === undefined && Date.now() - w0 < 10_000) await new Promise((r) => setTimeout(r, 20));
    expect(call.webhook?.status).toBe(502);
    expect((await stack.waitEnded(call.callId)).outcome).toBe('room_failed');
    call.hangup();
    await call.ended;
    // The answer itself: no Retry-After, a clear body, one POST /rooms (no retry).
    stack.emulator.faults.inject({ method: 'POST', path: '/rooms', status: 400, times: 1 });
    const body = JSON.stringify({ To: NUMBER, From: '+15550003333', callId: `${call.callId}-400`, callDomain: call.callDomain });
    const ts = String(Math.floor(Date.now() / 1000));
    const t0 = Date.now();
    const res = await fetch(`${stack.url}/dialin`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-pinless-timestamp': ts,
        'x-pinless-signature': signPinless(body, stack.secret, ts),
      },
      body,
    });
    expect(res.status).toBe(502);
    expect(res.headers.get('retry-after')).toBeNull();
    expect(await res.json()).toMatchObject({
      error: 'room_refused',
      reason: 'room_refused',
      message: expect.stringMatching(/Daily refused the room.*400/),
    });
    expect(stack.emulator.requestLog.filter((r) => r.method === 'POST' && r.path === '/rooms' && r.atMs >= t0)).toHaveLength(1);
    expect((await stack.waitEnded(`${call.callId}-400`)).outcome).toBe('room_failed');
  }, 30_000);

  it('a transient failure that outlasts the create policy is still 503 + Retry-After', async () => {
    stack.emulator.faults.inject({ method: 'POST', path: '/rooms', status: 503, times: 1_000 });
    const call = stack.emulator.placeCall({ to: NUMBER, from: '+15550004444' });
    const t0 = Date.now();
    while (call.webhook?.status === undefined && Date.now() - t0 < 15_000) await new Promise((r) => setTimeout(r, 50));
    expect(call.webhook?.status).toBe(503);
    stack.emulator.faults.clear();
    call.hangup();
    await call.ended;
  }, 30_000);
});
