/**
 * The whole service with CALL_CLIENT=daily: real worker processes, each with the real daily-js in
 * Chromium, talking to the embedded emulator through the call-machine stand-in (bridge mode).
 * Proves the worker ↔ DailyBrowserCallClient integration offline; Daily itself is not involved.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findProcessesWithArg } from '../../../src/daily/browser/chromium.js';
import { CallMachineStandIn } from '../../../src/emulator/call-machine/stand-in.js';
import { isAlive } from '../../helpers/ops.js';
import { NUMBER, startStack, type Stack } from '../../helpers/stack.js';

/** This process's worker children (forked `workers/child/main`), from /proc. */
function workerChildren(): { pid: number }[] {
  const out: { pid: number }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== process.pid) continue;
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      if (/workers[/\\]child[/\\]main\.(ts|js)/.test(cmd)) out.push({ pid: Number(name) });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`SKIPPING test/daily-browser-service.test.ts: ${CHROMIUM} is missing (apt-get install -y chromium)`);

describe.skipIf(!haveChromium)('service with CALL_CLIENT=daily (real daily-js in Chromium, offline)', () => {
  let si: CallMachineStandIn;
  let stack: Stack;
  const workerPids = new Set<number>();
  let sampler: NodeJS.Timeout | undefined;

  beforeAll(async () => {
    si = await CallMachineStandIn.start({ bridge: 'emulator' });
    stack = await startStack({
      env: {
        CALL_CLIENT: 'daily',
        CHROMIUM_PATH: CHROMIUM,
        DAILY_BUNDLE_URL: si.bundleUrl,
        // Chromium start-up on a busy 2-core machine: more room than the emulator client needs.
        WORKER_INIT_TIMEOUT_MS: '20000',
        JOIN_TIMEOUT_MS: '8000',
        DIALIN_READY_TIMEOUT_MS: '8000',
      },
    });
    sampler = setInterval(() => {
      for (const w of workerChildren()) workerPids.add(w.pid);
    }, 100);
  }, 40_000);

  afterAll(async () => {
    if (sampler) clearInterval(sampler);
    await stack?.close();
    await si?.close();
  });

  it('a caller is answered by a bot on the real daily-js; digits and words flow; nothing is left behind', async () => {
    const call = stack.emulator.placeCall({
      to: NUMBER,
      from: '+15557654321',
      script: [{ waitFor: 'say', match: 'Hello' }, { press: '42#' }, { waitFor: 'say', match: '4 2' }, { hangup: true }],
    });
    const end = await call.ended;
    const botLines = end.transcript.filter((l) => l.who === 'bot').map((l) => l.text);
    expect(end.reason, JSON.stringify(end.transcript)).toBe('caller_hangup');
    expect(botLines[0]).toMatch(/Hello! You reached patchbay/);
    expect(botLines.join(' ')).toMatch(/You pressed 4 2\./);
    const rec = await stack.waitEnded(call.callId);
    expect(rec.outcome).toBe('caller_hangup');
    // The page's daily-js really did the work: its actions went through the stand-in.
    expect(si.actions.some((a) => a.action === 'join-meeting')).toBe(true);
    expect(si.speeches.some((s) => /Hello! You reached patchbay/.test(s.text ?? ''))).toBe(true);

    // BROWSER_LAYOUT=shared (the default): the bots' pages lived in the replica's supervised browsers.
    const host = stack.rt.browsers;
    expect(host?.stats().up).toBeGreaterThan(0);
    const browserPids = host!.stats().browsers.map((b) => b.pid!);
    await stack.close();
    for (const pid of browserPids)
      expect((await findProcessesWithArg(`patchbay-chromium-${process.pid}-host`)).length + (isAlive(pid) ? 1 : 0), `browser ${pid}`).toBe(
        0,
      );
    for (const w of workerChildren()) workerPids.add(w.pid);
    expect(workerPids.size).toBeGreaterThan(0);
    // No Chromium of any of this stack's workers survives the shutdown.
    const deadline = Date.now() + 5_000;
    let left: number[];
    do {
      left = (await Promise.all([...workerPids].map((pid) => findProcessesWithArg(`patchbay-chromium-${pid}-`)))).flat();
      if (left.length === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    } while (Date.now() < deadline);
    expect(left).toEqual([]);
  }, 60_000);
});
