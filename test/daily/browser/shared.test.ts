/**
 * The shared-browser layout (BROWSER_LAYOUT=shared, the default for CALL_CLIENT=daily), for real:
 * the service's BrowserHost runs Debian's Chromium, each forked worker connects to it and runs the
 * real daily-js in its own context and page, bridged by the call-machine stand-in to the emulator.
 * Blast radius: a worker killed takes only its own page; a browser killed ends exactly its calls
 * with `browser_lost` and is restarted; a page that leaks is killed by the worker's memory watch.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type CDPSession } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallRecord } from '../../../src/admission/dispatcher.js';
import { CallMachineStandIn } from '../../../src/emulator/call-machine/stand-in.js';
import { FIXTURE_BOTS, isAlive, waitFor, waitRecord } from '../../helpers/ops.js';
import { NUMBER, startStack, type Stack } from '../../helpers/stack.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`SKIPPING test/daily-browser-shared.test.ts: ${CHROMIUM} is missing`);
const MEMORY_LIMIT_MB = 450;

describe.skipIf(!haveChromium)('shared browsers (CALL_CLIENT=daily, BROWSER_LAYOUT=shared)', () => {
  let si: CallMachineStandIn;
  let stack: Stack;
  let observer: Browser;
  let cdp: CDPSession;

  beforeAll(async () => {
    si = await CallMachineStandIn.start({ bridge: 'emulator' });
    stack = await startStack({
      env: {
        CALL_CLIENT: 'daily',
        CHROMIUM_PATH: CHROMIUM,
        DAILY_BUNDLE_URL: si.bundleUrl,
        BOTS_DIR: FIXTURE_BOTS,
        DEFAULT_BOT: 'linger',
        MAX_CONCURRENT_BOTS: '3',
        IDLE_WORKERS: '1',
        BOTS_PER_BROWSER: '4',
        WORKER_INIT_TIMEOUT_MS: '30000',
        JOIN_TIMEOUT_MS: '10000',
        DIALIN_READY_TIMEOUT_MS: '10000',
        WORKER_PING_INTERVAL_MS: '250',
        WORKER_PING_TIMEOUT_MS: '10000',
        WORKER_MEMORY_WARN_MB: '300',
        WORKER_MEMORY_LIMIT_MB: String(MEMORY_LIMIT_MB),
      },
    });
    expect(stack.rt.browsers?.stats().browsers).toHaveLength(1);
    await waitFor('a warm worker', () => stack.rt.pool.stats().idle >= 1, 40_000);
  }, 60_000);

  afterAll(async () => {
    await observer?.close().catch(() => undefined);
    await stack?.close();
    await si?.close();
  });

  /** A CDP session on the host's (current) browser, as a separate client: sees every worker's page. */
  async function observe(): Promise<CDPSession> {
    const b = stack.rt.browsers!.stats().browsers[0]!;
    if (observer?.isConnected()) return cdp;
    expect(b.state).toBe('up');
    observer = await chromium.connectOverCDP(stack.rt.browsers!.wsEndpointOf(0)!);
    cdp = await observer.newBrowserCDPSession();
    return cdp;
  }

  async function botPages(): Promise<string[]> {
    const s = await observe();
    const t = (await s.send('Target.getTargets')) as { targetInfos: { targetId: string; type: string; url: string }[] };
    return t.targetInfos.filter((x) => x.type === 'page' && x.url.startsWith('http://127.0.0.1:')).map((x) => x.targetId);
  }

  async function evalIn(targetId: string, expression: string): Promise<void> {
    const s = await observe();
    const attached = await s.send('Target.attachToTarget', { targetId, flatten: false });
    const sessionId = String(attached.sessionId);
    await s.send('Target.sendMessageToTarget', {
      sessionId,
      message: JSON.stringify({ id: 1, method: 'Runtime.evaluate', params: { expression } }),
    });
  }

  async function placeLinger(): Promise<{
    record: CallRecord;
    ended: Promise<CallRecord>;
    emulated: ReturnType<Stack['emulator']['placeCall']>;
  }> {
    const emulated = stack.emulator.placeCall({ to: NUMBER, from: '+15557654321' });
    const ended = stack.waitEnded(emulated.callId, 60_000);
    ended.catch(() => undefined);
    const record = await waitRecord(stack, emulated.callId, (r) => r.timeline.bot_started !== undefined || r.state === 'ended', 40_000);
    expect(record.state, record.detail).toBe('active');
    return { record, ended, emulated };
  }

  async function finishLinger(call: Awaited<ReturnType<typeof placeLinger>>, digit: string): Promise<void> {
    await call.emulated.press(digit);
    const rec = await call.ended;
    expect(rec.outcome, rec.detail).toBe('completed');
    expect(rec.detail).toContain(`caller pressed ${digit}`);
    expect(call.emulated.transcript.filter((l) => l.who === 'bot').map((l) => l.text)).toContain(`bye ${digit}`);
  }

  it('two workers share one browser, each runs a full call', async () => {
    const [a, b] = await Promise.all([placeLinger(), placeLinger()]);
    expect(a.record.workerPid).not.toBe(b.record.workerPid);
    const st = stack.rt.browsers!.stats();
    expect(st.up).toBe(1);
    // Both busy workers (and the idle one) have their page in the one browser.
    expect(st.browsers[0]!.bots).toBeGreaterThanOrEqual(2);
    expect((await botPages()).length).toBeGreaterThanOrEqual(2);
    await Promise.all([finishLinger(a, '3'), finishLinger(b, '5')]);
  }, 90_000);

  it("SIGKILL of one worker mid-call: the other's call is unharmed, the killed worker's page is gone within 2 s", async () => {
    const [a, b] = await Promise.all([placeLinger(), placeLinger()]);
    const before = await botPages();
    process.kill(a.record.workerPid!, 'SIGKILL');
    const t0 = Date.now();
    const gone = await waitFor(
      'one page to go',
      async () => {
        const now = await botPages();
        const missing = before.filter((id) => !now.includes(id));
        return missing.length > 0 ? missing : undefined;
      },
      6_000,
      50,
    );
    // Chromium disposes the context when the worker's DevTools connection drops: measured well under
    // a second; the bound is generous for a loaded CI machine.
    expect(Date.now() - t0).toBeLessThan(4_000);
    expect(gone).toHaveLength(1);
    const ra = await a.ended;
    expect(ra.outcome).toBe('worker_crashed');
    // The other call still works end to end.
    await finishLinger(b, '8');
  }, 90_000);

  it('browser killed with 3 calls in it: 3 × browser_lost, no caller left on the line, browser restarted, next call works', async () => {
    const calls = await Promise.all([placeLinger(), placeLinger(), placeLinger()]);
    const host = stack.rt.browsers!;
    const oldPid = host.stats().browsers[0]!.pid!;
    const restartsBefore = host.stats().restarts;
    const t0 = Date.now();
    host.kill(0, 'test');
    const recs = await Promise.all(calls.map((c) => c.ended));
    const endedWithinMs = Date.now() - t0;
    for (const r of recs) {
      expect(r.outcome, r.detail).toBe('browser_lost');
      expect(r.detail).toMatch(/browser went away/);
    }
    expect(endedWithinMs).toBeLessThan(10_000);
    // Rooms are deleted just after the calls end (queued at the outcome, never awaited by it).
    for (const r of recs)
      await waitFor('the room deleted', () => !stack.emulator.snapshot().rooms.some((x) => x.name === r.roomName), 10_000);
    for (const c of calls) expect(['room_closed', 'ejected']).toContain((await c.emulated.ended).reason);
    for (const c of calls) await waitFor('worker gone', () => !isAlive(c.record.workerPid!), 5_000);
    await host.waitUp(0, 30_000);
    expect(host.stats().restarts).toBe(restartsBefore + 1);
    expect(host.stats().browsers[0]!.pid).not.toBe(oldPid);
    expect(isAlive(oldPid)).toBe(false);
    await observer?.close().catch(() => undefined);
    const next = await placeLinger();
    await finishLinger(next, '1');
  }, 120_000);

  it("a page that allocates without bound is killed by its worker's memory watch: worker_memory", async () => {
    const call = await placeLinger();
    // The worker must have found its renderer (it does so while idle, before the call).
    const pages = await botPages();
    for (const id of pages) {
      await evalIn(
        id,
        'window.__leak = []; setInterval(() => { for (let i = 0; i < 16; i++) window.__leak.push(new Uint8Array(1 << 20).fill(7)); }, 100); 1',
      );
    }
    const rec = await call.ended;
    expect(rec.outcome, rec.detail).toBe('worker_memory');
    const m = /^memory (\d+) MB > (\d+) MB \(worker (\d+) MB \+ page (\d+) MB PSS\)$/.exec(rec.detail ?? '');
    expect(m, rec.detail).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(MEMORY_LIMIT_MB);
    // It was the page, not the worker, that grew.
    expect(Number(m![4])).toBeGreaterThan(Number(m![3]));
    expect(isAlive(call.record.workerPid!)).toBe(false);
    await waitFor('the leaking pages to go', async () => (await botPages()).every((id) => !pages.includes(id)), 10_000);
    expect(stack.rt.browsers!.stats().browsers[0]!.state).toBe('up');
  }, 90_000);
});
