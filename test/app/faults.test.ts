/**
 * Daily REST faults at each step (call-level faults: faults-calls.test.ts), each followed by the reliability invariant (test/helpers/invariants.ts): every call the
 * test placed ends with exactly one recorded outcome; no room, call client, busy worker, queued
 * call or stray child process is left.
 *
 * Complements test/e2e.test.ts (pinlessCallUpdate 5xx/429/4xx, dialin-ready never/twice, hang-up
 * on hold and in the call, SIGKILL, 3× burst), test/ops-*.test.ts (hang, crash, memory, drain on
 * the real server process) and test/sdk.test.ts (onCall throws, prewarm fails).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EmulatedCall, Emulator } from '../../src/emulator/types.js';
import { expectNoLeaks, until } from '../helpers/invariants.js';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';

/** A caller who waits for the greeting, then hangs up. */
const SHORT_CALL = [{ waitFor: 'say' as const, timeoutMs: 15_000 }, { hangup: true as const }];

const countRequests = (emu: Emulator, method: string, prefix: string, sinceMs: number) =>
  emu.requestLog.filter((r) => r.method === method && r.path.startsWith(prefix) && r.atMs >= sinceMs).length;

describe('Daily REST faults at each step', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      // DAILY_API_TIMEOUT_MS short: a hung Daily request is abandoned and retried within the deadlines.
      // DAILY_TOKEN_MODE=rest: the token step is a REST call here (self-signed tokens need none; see daily-rest.test.ts).
      env: { DAILY_API_TIMEOUT_MS: '700', IDLE_WORKERS: '1', DAILY_TOKEN_MODE: 'rest' },
      emulator: { holdTimeoutMs: 4_000 },
    });
  });
  afterAll(async () => {
    await stack?.close();
    await expectNoLeaks({ stack, closed: true, timeoutMs: 10_000 });
  });
  afterEach(() => stack.emulator.faults.clear());

  /** Places one call that hangs up after the greeting; returns it once over and checked. */
  async function callThrough(expectedOutcome: string | string[]): Promise<EmulatedCall> {
    const since = stack.ended.length;
    const call = stack.emulator.placeCall({ to: NUMBER, script: SHORT_CALL });
    await call.ended;
    const rec = await stack.waitEnded(call.callId);
    expect([expectedOutcome].flat()).toContain(rec.outcome);
    await expectNoLeaks({ stack, placed: [call], since });
    return call;
  }

  it.each([
    ['POST /rooms 500 ×2', { method: 'POST', path: '/rooms', status: 500, times: 2 }],
    ['POST /rooms 429 ×2 (Retry-After 0)', { method: 'POST', path: '/rooms', status: 429, times: 2, retryAfterSec: 0 }],
    ['POST /rooms hangs once (timeout)', { method: 'POST', path: '/rooms', delayMs: 3_000, times: 1 }],
    ['POST /meeting-tokens 503 ×2', { method: 'POST', path: '/meeting-tokens', status: 503, times: 2 }],
    ['POST /meeting-tokens hangs once (timeout)', { method: 'POST', path: '/meeting-tokens', delayMs: 3_000, times: 1 }],
    ['DELETE /rooms 502 ×2', { method: 'DELETE', path: '/rooms', status: 502, times: 2 }],
    ['DELETE /rooms hangs once (timeout)', { method: 'DELETE', path: '/rooms', delayMs: 3_000, times: 1 }],
    ['pinlessCallUpdate hangs once (timeout)', { method: 'POST', path: '/dialin/pinlessCallUpdate', delayMs: 2_500, times: 1 }],
  ])('transient %s: retried, the call connects, one outcome, nothing left', async (_name, fault) => {
    const t0 = Date.now();
    stack.emulator.faults.inject(fault);
    const call = await callThrough('caller_hangup');
    expect(call.webhook?.status).toBe(200);
    expect(stack.emulator.faults.pending).toHaveLength(0);
    // The faulted step was attempted again after the fault (the emulator logs no request whose client gave up).
    const answered = countRequests(stack.emulator, fault.method, fault.path, t0);
    expect(answered).toBeGreaterThanOrEqual('status' in fault ? fault.times + 1 : 1);
    // A hung create is carried out late, after our retry: no room may survive it (the late delete).
    if ('delayMs' in fault) await until(() => Date.now() > t0 + fault.delayMs + 300, 10_000, 'the hung request to be carried out');
    await expectNoLeaks({ stack, placed: [call], timeoutMs: 20_000 });
  });

  it('a timed-out POST /rooms that Daily carries out before our retry: the retry\'s "already exists" is our room, the call connects', async () => {
    // First attempt: lands at 1 s, after our 700 ms timeout. Retry: lands at ~2.3 s, when the room exists.
    stack.emulator.faults.inject({ method: 'POST', path: '/rooms', delayMs: 1_000, times: 1 });
    stack.emulator.faults.inject({ method: 'POST', path: '/rooms', delayMs: 1_500, times: 1 });
    const t0 = Date.now();
    const call = await callThrough('caller_hangup');
    expect(call.webhook?.status).toBe(200);
    const creates = stack.emulator.requestLog.filter((r) => r.method === 'POST' && r.path === '/rooms' && r.atMs >= t0);
    // The retry was refused as a duplicate, and the call went on in the room the first attempt created.
    expect(creates.map((r) => r.status)).toContain(400);
    expect(creates.filter((r) => r.status === 200)).toHaveLength(0);
  });

  it('POST /rooms failing for good: 503 to Daily, room_failed recorded once, no room, no bot', async () => {
    stack.emulator.faults.inject({ method: 'POST', path: '/rooms', status: 500, times: 1_000 });
    const since = stack.ended.length;
    const call = stack.emulator.placeCall({ to: NUMBER });
    await until(() => call.webhook?.status !== undefined, 15_000, 'the webhook answer');
    expect(call.webhook?.status).toBe(503);
    stack.emulator.faults.clear();
    // Daily keeps the caller on hold until its hold timeout.
    expect((await call.ended).reason).toBe('hold_timeout');
    const recs = stack.ended.slice(since).filter((r) => r.callId === call.callId);
    expect(recs.map((r) => r.outcome)).toEqual(['room_failed']);
    expect(recs[0]!.workerPid).toBeUndefined();
    await expectNoLeaks({ stack, placed: [call], since });
  });

  it('POST /meeting-tokens failing for good: the room that was created is deleted again', async () => {
    stack.emulator.faults.inject({ method: 'POST', path: '/meeting-tokens', status: 500, times: 1_000 });
    const since = stack.ended.length;
    const t0 = Date.now();
    const call = stack.emulator.placeCall({ to: NUMBER });
    await until(() => call.webhook?.status !== undefined, 15_000, 'the webhook answer');
    expect(call.webhook?.status).toBe(503);
    stack.emulator.faults.clear();
    expect(countRequests(stack.emulator, 'POST', '/rooms', t0)).toBeGreaterThanOrEqual(1);
    await until(() => countRequests(stack.emulator, 'DELETE', '/rooms', t0) >= 1, 10_000, 'the room to be deleted');
    expect((await call.ended).reason).toBe('hold_timeout');
    expect(
      stack.ended
        .slice(since)
        .filter((r) => r.callId === call.callId)
        .map((r) => r.outcome),
    ).toEqual(['room_failed']);
    await expectNoLeaks({ stack, placed: [call], since });
  });

  it('DELETE /rooms failing for good: the outcome is still recorded once and the slot freed; the room is left to expire', async () => {
    stack.emulator.faults.inject({ method: 'DELETE', path: '/rooms', status: 500, times: 1_000 });
    const since = stack.ended.length;
    const call = stack.emulator.placeCall({ to: NUMBER, script: SHORT_CALL });
    await call.ended;
    const rec = await stack.waitEnded(call.callId, 30_000);
    expect(rec.outcome).toBe('caller_hangup');
    await until(() => stack.rt.dispatcher.stats().active === 0 && stack.rt.pool.stats().busy === 0, 10_000, 'the slot to be freed');
    // The room outlives the call (Daily deletes it at its `exp`): the only thing a persistent DELETE failure leaks.
    const left = stack.emulator.snapshot().rooms;
    expect(left.map((r) => r.name)).toEqual([rec.roomName]);
    const info = await stack.rt.daily.getRoom(rec.roomName);
    expect(info.config?.exp).toBeGreaterThan(Date.now() / 1000);
    stack.emulator.faults.clear();
    await stack.rt.daily.deleteRoom(rec.roomName);
    await expectNoLeaks({ stack, placed: [call], since });
  });
});

describe('a lost answer to POST /rooms (issue 21, item 12)', () => {
  let stack: Stack;
  beforeAll(async () => {
    // The default DAILY_API_TIMEOUT_MS (5 s): longer than the `create` policy's own 4 s deadline.
    stack = await startStack({ env: { IDLE_WORKERS: '1' }, emulator: { holdTimeoutMs: 30_000 } });
  });
  afterAll(async () => {
    await stack?.close();
    await expectNoLeaks({ stack, closed: true, timeoutMs: 10_000 });
  });

  it('Daily creates the room but its answer never comes: retried within the hold budget, "already exists" is ours, the call connects', async () => {
    stack.emulator.faults.inject({ method: 'POST', path: '/rooms', answerDelayMs: 60_000, times: 1 });
    const since = stack.ended.length;
    const t0 = Date.now();
    const call = stack.emulator.placeCall({ to: NUMBER, script: SHORT_CALL });
    await call.ended;
    expect(call.webhook?.status).toBe(200);
    const rec = await stack.waitEnded(call.callId);
    expect(rec.outcome).toBe('caller_hangup');
    const creates = stack.emulator.requestLog.filter((r) => r.method === 'POST' && r.path === '/rooms' && r.atMs >= t0);
    // The retry was refused as a duplicate (400 "already exists"): the room the lost attempt created is the call's.
    expect(creates.map((r) => r.status)).toContain(400);
    expect(stack.emulator.requestLog.some((r) => r.method === 'GET' && r.path === `/rooms/${rec.roomName}` && r.atMs >= t0)).toBe(true);
    await expectNoLeaks({ stack, placed: [call], since, timeoutMs: 20_000 });
  });
});
