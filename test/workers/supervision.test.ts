/**
 * Worker supervision with real forked workers and the real emulator: a worker that hangs, one that
 * crashes, one killed from outside, one over its memory limit. Each ends its call with the right
 * outcome, its room deleted, its slot freed, its process gone, and the next call works.
 */
import { existsSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { CallRecord } from '../../src/admission/dispatcher.js';
import type { Outcome } from '../../src/core/outcome.js';
import { markerFile } from '../fixtures/bots/hang.js';
import { FIXTURE_BOTS, isAlive, waitFor, waitRecord } from '../helpers/ops.js';
import { startStack, type Stack } from '../helpers/stack.js';

const BY_NUMBER: Record<string, string> = {
  '+15550002001': 'linger',
  '+15550002002': 'hang',
  '+15550002003': 'crash',
  '+15550002004': 'memory',
};
const numberOf = (bot: string) => Object.entries(BY_NUMBER).find(([, b]) => b === bot)![0];

const PING_TIMEOUT_MS = 3_000;
const MEMORY_LIMIT_MB = 220;

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({
    env: {
      BOTS_DIR: FIXTURE_BOTS,
      DEFAULT_BOT: 'linger',
      EMULATOR_NUMBERS: Object.keys(BY_NUMBER).join(','),
      IDLE_WORKERS: '1',
      WORKER_PING_INTERVAL_MS: '200',
      WORKER_PING_TIMEOUT_MS: String(PING_TIMEOUT_MS),
      WORKER_MEMORY_WARN_MB: '180',
      WORKER_MEMORY_LIMIT_MB: String(MEMORY_LIMIT_MB),
      WORKER_CLOSE_TIMEOUT_MS: '1000',
    },
    runtime: { route: (call) => BY_NUMBER[call.to] ?? 'linger' },
  });
  await waitFor('a warm worker', () => stack.rt.pool.stats().idle >= 1, 20_000);
});

afterAll(async () => {
  await stack?.close();
});

/** Places a call to `bot` and resolves once the bot is running (worker known). */
async function callBot(
  bot: string,
): Promise<{ record: CallRecord; ended: Promise<CallRecord>; emulated: ReturnType<Stack['emulator']['placeCall']> }> {
  const emulated = stack.emulator.placeCall({ to: numberOf(bot) });
  const ended = stack.waitEnded(emulated.callId, 30_000);
  ended.catch(() => undefined);
  const record = await waitRecord(stack, emulated.callId, (r) => r.timeline.bot_started !== undefined || r.state === 'ended');
  return { record, ended, emulated };
}

/** What every abnormal end must leave behind: nothing. */
async function expectCleanEnd(record: CallRecord, outcome: Outcome, emulated: { ended: Promise<{ reason: string }> }): Promise<void> {
  expect(record.outcome).toBe(outcome);
  expect(record.state).toBe('ended');
  expect(record.timeline.ended).toBeGreaterThanOrEqual(record.timeline.bot_started!);
  // Room deleted (at Daily, i.e. in the emulator): queued at the call's end, never awaited by it.
  await waitFor('the room deleted', () => !stack.emulator.snapshot().rooms.some((r) => r.name === record.roomName), 10_000);
  // The caller was not left on the line.
  const end = await emulated.ended;
  expect(['room_closed', 'ejected']).toContain(end.reason);
  // Slot freed and worker gone.
  await waitFor('the slot to be freed', () => stack.rt.dispatcher.stats().active === 0, 10_000);
  expect(stack.rt.dispatcher.liveCalls()).toHaveLength(0);
  // The call is over at its outcome; its worker is reaped just after.
  await waitFor('the worker gone', () => !isAlive(record.workerPid!), 10_000);
  expect(stack.rt.pool.all().map((w) => w.pid)).not.toContain(record.workerPid);
}

/** A normal call still works afterwards (the pool refilled). */
async function expectNextCallWorks(): Promise<void> {
  await waitFor('a warm worker again', () => stack.rt.pool.stats().idle >= 1, 20_000);
  const { record, ended, emulated } = await callBot('linger');
  expect(record.warmStart).toBe(true);
  await emulated.press('7');
  const done = await ended;
  expect(done.outcome).toBe('completed');
  expect(done.detail).toContain('caller pressed 7');
}

describe('worker supervision', () => {
  test('a worker that hangs stops answering pings, is killed: worker_crashed, room deleted, slot freed', async () => {
    const { record, ended, emulated } = await callBot('hang');
    const pid = record.workerPid!;
    expect(isAlive(pid)).toBe(true);
    await waitFor('the bot to spin', () => existsSync(markerFile(pid)), 20_000);
    rmSync(markerFile(pid), { force: true });
    const t0 = Date.now();
    const done = await ended;
    const tookMs = Date.now() - t0;
    expect(done.detail).toBe(`no pong for ${PING_TIMEOUT_MS} ms`);
    // Detected by the ping timeout, not by some later deadline.
    expect(tookMs).toBeGreaterThanOrEqual(PING_TIMEOUT_MS - 500);
    expect(tookMs).toBeLessThan(PING_TIMEOUT_MS + 8_000);
    await expectCleanEnd(done, 'worker_crashed', emulated);
    await expectNextCallWorks();
  });

  test('a worker that crashes (process.exit(1) in the bot): worker_crashed, room deleted, slot freed', async () => {
    const { record, ended, emulated } = await callBot('crash');
    const done = await ended;
    expect(done.id).toBe(record.id);
    expect(done.detail).toMatch(/exited \(code 1\) before reporting an outcome/);
    await expectCleanEnd(done, 'worker_crashed', emulated);
    await expectNextCallWorks();
  });

  test('a worker SIGKILLed from outside during a call: worker_crashed, room deleted, slot freed', async () => {
    const { record, ended, emulated } = await callBot('linger');
    expect(record.state).toBe('active');
    expect(stack.rt.dispatcher.stats().active).toBe(1);
    process.kill(record.workerPid!, 'SIGKILL');
    const done = await ended;
    expect(done.detail).toMatch(/SIGKILL/);
    await expectCleanEnd(done, 'worker_crashed', emulated);
    await expectNextCallWorks();
  });

  test('a worker over WORKER_MEMORY_LIMIT_MB is killed: worker_memory', async () => {
    const { record, ended, emulated } = await callBot('memory');
    const pid = record.workerPid!;
    const done = await ended;
    expect(done.detail).toMatch(new RegExp(`rss \\d+ MB > ${MEMORY_LIMIT_MB} MB`));
    const rssMb = Number(/rss (\d+) MB/.exec(done.detail!)![1]);
    expect(rssMb).toBeGreaterThan(MEMORY_LIMIT_MB);
    expect(rssMb).toBeLessThan(1_200);
    await expectCleanEnd(done, 'worker_memory', emulated);
    expect(isAlive(pid)).toBe(false);
    await expectNextCallWorks();
  });

  test('every call ended exactly once, and the metrics agree', async () => {
    const ids = stack.ended.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    const byOutcome: Record<string, number> = {};
    for (const r of stack.ended) byOutcome[r.outcome!] = (byOutcome[r.outcome!] ?? 0) + 1;
    expect(byOutcome).toEqual({ worker_crashed: 3, worker_memory: 1, completed: 4 });
    const text = await (await fetch(`${stack.url}/metrics`)).text();
    expect(text).toMatch(/^patchbay_calls_total\{outcome="worker_crashed"\} 3$/m);
    expect(text).toMatch(/^patchbay_calls_total\{outcome="worker_memory"\} 1$/m);
    expect(text).toMatch(/^patchbay_calls_total\{outcome="completed"\} 4$/m);
    expect(text).toMatch(/^patchbay_active_bots 0$/m);
  });
});

describe('closing a worker that does not listen', () => {
  test('hangup, then SIGTERM, then SIGKILL after WORKER_CLOSE_TIMEOUT_MS each; the call ends shutdown', async () => {
    const CLOSE_TIMEOUT_MS = 600;
    const s = await startStack({
      env: {
        BOTS_DIR: FIXTURE_BOTS,
        DEFAULT_BOT: 'hang',
        IDLE_WORKERS: '1',
        // Supervision by ping stays out of the way: only close() acts here.
        WORKER_PING_TIMEOUT_MS: '60000',
        WORKER_CLOSE_TIMEOUT_MS: String(CLOSE_TIMEOUT_MS),
      },
    });
    try {
      const emulated = s.emulator.placeCall({ to: '+15550001000' });
      const ended = s.waitEnded(emulated.callId, 30_000);
      ended.catch(() => undefined);
      const record = await waitRecord(s, emulated.callId, (r) => r.timeline.bot_started !== undefined);
      // The bot's event loop is blocked from now on.
      await waitFor('the bot to spin', () => existsSync(markerFile(record.workerPid!)), 20_000);
      rmSync(markerFile(record.workerPid!), { force: true });
      const handle = s.rt.pool.all().find((w) => w.pid === record.workerPid)!;
      const exit = new Promise<NodeJS.Signals | null>((resolve) => handle.once('exit', (_code, signal) => resolve(signal)));
      const t0 = Date.now();
      await s.rt.dispatcher.drain(0);
      const signal = await exit;
      const tookMs = Date.now() - t0;
      expect(signal).toBe('SIGKILL');
      // hangup ignored for CLOSE_TIMEOUT_MS, SIGTERM ignored for CLOSE_TIMEOUT_MS, then SIGKILL.
      expect(tookMs).toBeGreaterThanOrEqual(2 * CLOSE_TIMEOUT_MS - 50);
      const done = await ended;
      expect(done.outcome).toBe('shutdown');
      await waitFor('the room deleted', () => !s.emulator.snapshot().rooms.some((r) => r.name === done.roomName), 10_000);
      await waitFor('the worker gone', () => !isAlive(record.workerPid!), 10_000);
    } finally {
      await s.close();
    }
  });
});
