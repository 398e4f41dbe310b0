/**
 * Warm rooms with the production call client: real worker processes, each with the real daily-js in
 * Chromium, against the embedded emulator through the call-machine stand-in (bridge mode).
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallMachineStandIn } from '../../src/emulator/call-machine/stand-in.js';
import { FIXTURE_BOTS } from '../helpers/ops.js';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`SKIPPING test/warm-rooms-daily.test.ts: ${CHROMIUM} is missing (apt-get install -y chromium)`);

async function until<T>(what: string, f: () => T | undefined | false, timeoutMs = 30_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe.skipIf(!haveChromium)('warm rooms with CALL_CLIENT=daily (real daily-js in Chromium, offline)', () => {
  let si: CallMachineStandIn;
  let stack: Stack;

  beforeAll(async () => {
    si = await CallMachineStandIn.start({ bridge: 'emulator' });
    stack = await startStack({
      env: {
        CALL_CLIENT: 'daily',
        CHROMIUM_PATH: CHROMIUM,
        DAILY_BUNDLE_URL: si.bundleUrl,
        WORKER_INIT_TIMEOUT_MS: '20000',
        JOIN_TIMEOUT_MS: '8000',
        DIALIN_READY_TIMEOUT_MS: '8000',
        BOTS_DIR: FIXTURE_BOTS,
        DEFAULT_BOT: 'greeting',
        WARM_ROOMS: '1',
      },
      emulator: { holdTimeoutMs: 20_000 },
    });
    await until('a warm slot', () => stack.rt.warm!.stats().ready === 1, 40_000);
  }, 60_000);

  afterAll(async () => {
    await stack?.close();
    await si?.close();
  });

  it("a warm call on daily-js: one update, the caller's display name, the greeting first; the slot is refilled", async () => {
    const slot = stack.rt.warm!.slots()[0]!;
    const from = '+15557654321';
    const call = stack.emulator.placeCall({
      to: NUMBER,
      from,
      script: [{ waitFor: 'say', match: 'Caller' }, { wait: 300 }, { press: '1' }],
    });
    const name = await until(
      'the SIP participant in the warm room',
      () =>
        stack.emulator
          .snapshot()
          .rooms.find((r) => r.name === slot.roomName)
          ?.participants.find((p) => p.isSip)?.userName,
    );
    expect(name).toBe(from);
    const end = await call.ended;
    expect(end.reason, JSON.stringify(end.transcript)).toBe('ejected');
    const bot = end.transcript.filter((l) => l.who === 'bot').map((l) => l.text);
    expect(bot[0]).toBe('Welcome to patchbay.');
    expect(bot[1]).toBe(`Caller ${from}.`);
    const rec = await stack.waitEnded(call.callId);
    expect(rec.path).toBe('warm');
    expect(rec.roomName).toBe(slot.roomName);
    expect(rec.outcome).toBe('completed');
    expect(stack.emulator.requestLog.filter((r) => r.path.endsWith('/pinlessCallUpdate') && r.callId === call.callId)).toHaveLength(1);
    // The join happened in the page's daily-js before the call arrived.
    expect(si.actions.some((a) => a.action === 'join-meeting')).toBe(true);
    await until(
      'a refilled slot',
      () => stack.rt.warm!.stats().ready === 1 && stack.rt.warm!.slots()[0]!.roomName !== slot.roomName,
      40_000,
    );
  }, 60_000);
});
