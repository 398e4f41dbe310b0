/**
 * Failures before forwarding (issue 11, item 3): nothing has been forwarded yet, so the caller is
 * retried on a fresh worker within the hold budget, or sent to FALLBACK_SIP_URI, or told by the
 * built-in apology bot — never left on hold until Daily's timeout. Each path asserts the caller is
 * connected (or told) within 10 s of placing the call. Real emulator, real workers, real faults.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EmulatorCallClient } from '../../src/emulator/client.js';
import { createLogger } from '../../src/core/logger.js';
import { APOLOGY_TEXT } from '../../src/workers/child/apology-bot.js';
import type { EmulatedCall } from '../../src/emulator/types.js';
import { expectNoLeaks, until } from '../helpers/invariants.js';
import { FIXTURE_BOTS } from '../helpers/ops.js';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';

const BOUND_MS = 10_000;
const BROKEN_FROM = '+15557770000';
const SHORT_CALL = [{ waitFor: 'say' as const, timeoutMs: 15_000 }, { hangup: true as const }];

const env = {
  BOTS_DIR: FIXTURE_BOTS,
  DEFAULT_BOT: 'linger',
  IDLE_WORKERS: '2',
  HOLD_BUDGET_MS: '20000',
  WORKER_PING_TIMEOUT_MS: '30000',
};

/** Waits until the caller is connected to a room (the emulator's transcript line); returns how long after placing it took. */
async function connectedWithin(call: EmulatedCall, _t0: number): Promise<number> {
  const line = () => call.transcript.find((l) => l.who === 'system' && l.text.startsWith('connected to room'));
  await until(() => line() !== undefined || call.state === 'ended', BOUND_MS + 2_000, 'the caller connected');
  expect(line(), `caller never connected (${call.reason ?? call.state})`).toBeDefined();
  expect(line()!.atMs).toBeLessThan(BOUND_MS);
  return line()!.atMs;
}

describe('failures before forwarding: retry on a fresh worker', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ env, emulator: { holdTimeoutMs: 60_000 } });
  });
  afterAll(async () => {
    await stack?.close();
    await expectNoLeaks({ stack, closed: true, timeoutMs: 10_000 });
  });
  afterEach(() => stack.emulator.faults.clear());

  it('worker killed (SIGKILL) while the caller is on hold → a fresh worker connects the caller', async () => {
    stack.emulator.faults.dialinReadyDelayMs = 2_000;
    const since = stack.ended.length;
    const t0 = Date.now();
    const call = stack.emulator.placeCall({ to: NUMBER, script: SHORT_CALL });
    await until(
      () => stack.rt.dispatcher.liveCalls().some((r) => r.callId === call.callId && r.timeline.joined !== undefined),
      8_000,
      'the bot to join',
    );
    const pid = stack.rt.dispatcher.liveCalls().find((r) => r.callId === call.callId)!.workerPid!;
    process.kill(pid, 'SIGKILL');
    stack.emulator.faults.dialinReadyDelayMs = 0;
    await connectedWithin(call, t0);
    const rec = await stack.waitEnded(call.callId);
    expect(rec.outcome).toBe('caller_hangup');
    expect(rec.recovery?.map((s) => [s.kind, s.after])).toEqual([['retry', 'worker_crashed']]);
    expect(rec.workerPid).not.toBe(pid);
    await expectNoLeaks({ stack, placed: [call], since });
  });

  it('a hung idle worker is handed the call → noticed at once, a fresh worker connects the caller', async () => {
    await until(() => stack.rt.pool.stats().idle >= 2, 15_000, 'two warm workers');
    // Every idle worker hangs (SIGSTOP): whichever the call gets does not answer.
    const hung = stack.rt.pool.all().filter((w) => w.state === 'idle');
    for (const w of hung) process.kill(w.pid, 'SIGSTOP');
    const since = stack.ended.length;
    const t0 = Date.now();
    const call = stack.emulator.placeCall({ to: NUMBER, script: SHORT_CALL });
    try {
      await connectedWithin(call, t0);
    } finally {
      for (const w of hung) if (w.state !== 'exited') process.kill(w.pid, 'SIGCONT');
    }
    const rec = await stack.waitEnded(call.callId);
    expect(rec.outcome).toBe('caller_hangup');
    expect(rec.recovery?.[0]).toMatchObject({ kind: 'retry', after: 'worker_crashed' });
    expect(rec.recovery?.[0]?.detail).toMatch(/did not acknowledge/);
    await expectNoLeaks({ stack, placed: [call], since });
  });

  for (const [name, fault] of [
    ['a single 400', { status: 400 }],
    ['429 with Retry-After: 30', { status: 429, retryAfterSec: 30 }],
  ] as const) {
    it(`pinlessCallUpdate answers ${name} → retried on a fresh worker, connected`, async () => {
      const since = stack.ended.length;
      stack.emulator.faults.inject({ method: 'POST', path: '/dialin/pinlessCallUpdate', times: 1, ...fault });
      const t0 = Date.now();
      const call = stack.emulator.placeCall({ to: NUMBER, script: SHORT_CALL });
      await connectedWithin(call, t0);
      const rec = await stack.waitEnded(call.callId);
      expect(rec.outcome).toBe('caller_hangup');
      expect(rec.recovery?.map((s) => [s.kind, s.after])).toEqual([['retry', 'forward_failed']]);
      await expectNoLeaks({ stack, placed: [call], since });
    });
  }

  it('pinlessCallUpdate keeps failing for the first worker (its whole deadline) → a fresh worker connects', async () => {
    const since = stack.ended.length;
    stack.emulator.faults.inject({ method: 'POST', path: '/dialin/pinlessCallUpdate', status: 503, times: 1_000 });
    const t0 = Date.now();
    const call = stack.emulator.placeCall({ to: NUMBER, script: SHORT_CALL });
    await until(
      () => stack.rt.dispatcher.liveCalls().some((r) => r.callId === call.callId && r.recovery !== undefined),
      BOUND_MS,
      'a retry',
    );
    stack.emulator.faults.clear();
    await connectedWithin(call, t0);
    const rec = await stack.waitEnded(call.callId);
    expect(rec.recovery?.map((s) => [s.kind, s.after])).toEqual([['retry', 'forward_failed']]);
    await expectNoLeaks({ stack, placed: [call], since });
  });
});

describe('a call that cannot be served', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      env,
      emulator: { holdTimeoutMs: 60_000 },
      runtime: { route: (c) => (c.from === BROKEN_FROM ? 'broken-syntax' : 'linger') },
    });
  });
  afterAll(async () => {
    await stack?.close();
    await expectNoLeaks({ stack, closed: true, timeoutMs: 10_000 });
  });

  it('no FALLBACK_SIP_URI: the built-in apology bot tells the caller and hangs up', async () => {
    const since = stack.ended.length;
    const t0 = Date.now();
    const call = stack.emulator.placeCall({ to: NUMBER, from: BROKEN_FROM });
    await connectedWithin(call, t0);
    await until(() => call.transcript.some((l) => l.who === 'bot' && l.text === APOLOGY_TEXT), BOUND_MS, 'the apology');
    expect((await call.ended).reason).not.toBe('caller_hangup_on_hold');
    const rec = await stack.waitEnded(call.callId);
    expect(rec.outcome).toBe('bot_load_failed');
    expect(rec.recovery?.map((s) => s.kind)).toEqual(['apology']);
    expect(rec.detail).toMatch(/apology bot: completed/);
    await expectNoLeaks({ stack, placed: [call], since });
  });

  it('FALLBACK_SIP_URI set: the caller is forwarded there from the parent (a human queue room)', async () => {
    // The "human queue": a room with a SIP endpoint and someone in it.
    const queue = await stack.rt.rooms.provision({
      roomName: `humans-${Date.now()}`,
      displayName: 'humans',
      expSec: Math.ceil(Date.now() / 1000) + 600,
      numEndpoints: 1,
    });
    const agent = new EmulatorCallClient({ apiUrl: stack.emulator.apiUrl, logger: createLogger({ level: 'silent' }) });
    let endpoint: string | undefined;
    agent.on('dialin-ready', (e) => (endpoint ??= e.sipEndpoint));
    await agent.join({ roomUrl: queue.roomUrl, token: queue.token, userName: 'agent', timeoutMs: 5_000 });
    await until(() => endpoint !== undefined, 10_000, 'the queue room to be ready');
    stack.config.resilience.fallbackSipUri = endpoint;
    try {
      const t0 = Date.now();
      const call = stack.emulator.placeCall({ to: NUMBER, from: BROKEN_FROM });
      await connectedWithin(call, t0);
      expect(call.transcript.some((l) => l.text.includes(`connected to room ${queue.roomName}`))).toBe(true);
      const rec = await stack.waitEnded(call.callId);
      expect(rec.outcome).toBe('bot_load_failed');
      expect(rec.recovery?.map((s) => s.kind)).toEqual(['fallback_sip']);
      expect(rec.detail).toMatch(/forwarded to FALLBACK_SIP_URI/);
      call.hangup();
      await call.ended;
    } finally {
      stack.config.resilience.fallbackSipUri = undefined;
      await agent.leave().catch(() => undefined);
      await stack.rt.rooms.release(queue.roomName);
    }
  });
});

describe('FALLBACK_SIP_URI that fails (issue 21, item 7)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      env,
      emulator: { holdTimeoutMs: 60_000 },
      runtime: { route: (c) => (c.from === BROKEN_FROM ? 'broken-syntax' : 'linger') },
    });
  });
  afterAll(async () => {
    await stack?.close();
    await expectNoLeaks({ stack, closed: true, timeoutMs: 10_000 });
  });

  it("Daily's 404s told apart: an unknown SIP URI is not an unknown call", async () => {
    const api = (body: object) =>
      fetch(`${stack.emulator.apiUrl}/dialin/pinlessCallUpdate`, {
        method: 'POST',
        headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as { error: string; info: string } }));
    const call = stack.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'say', timeoutMs: 15_000 }, { hangup: true }] });
    const noRoom = await api({ callId: call.callId, callDomain: call.callDomain, sipUri: 'sip:nobody-here@example.sip.daily.co' });
    const noCall = await api({ callId: '00000000-0000-4000-8000-000000000000', callDomain: call.callDomain, sipUri: 'sip:x@y' });
    expect(noRoom).toEqual({ status: 404, body: { error: 'not-found', info: expect.stringMatching(/SIP endpoint/) } });
    expect(noCall).toEqual({ status: 404, body: { error: 'not-found', info: expect.stringMatching(/call .* not found/) } });
    await call.ended;
  });

  it('FALLBACK_SIP_URI names no room: Daily answers 404, and the caller still hears the apology', async () => {
    stack.config.resilience.fallbackSipUri = 'sip:no-such-room@example.sip.daily.co';
    try {
      const since = stack.ended.length;
      const t0 = Date.now();
      const call = stack.emulator.placeCall({ to: NUMBER, from: BROKEN_FROM });
      await connectedWithin(call, t0);
      await until(() => call.transcript.some((l) => l.who === 'bot' && l.text === APOLOGY_TEXT), BOUND_MS, 'the apology');
      expect((await call.ended).reason).not.toBe('caller_hangup_on_hold');
      const rec = await stack.waitEnded(call.callId);
      expect(rec.outcome).toBe('bot_load_failed');
      expect(rec.recovery?.map((s) => s.kind)).toEqual(['fallback_sip', 'apology']);
      expect(rec.detail).toMatch(/fallback forward to sip:no-such-room@example.sip.daily.co failed: .*404.*; apology bot: completed/);
      await expectNoLeaks({ stack, placed: [call], since });
    } finally {
      stack.config.resilience.fallbackSipUri = undefined;
    }
  });
});

describe('a call that waited past QUEUE_TIMEOUT_MS', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      env: { ...env, MAX_CONCURRENT_BOTS: '1', MAX_QUEUED_CALLS: '2', QUEUE_TIMEOUT_MS: '1500' },
      emulator: { holdTimeoutMs: 60_000 },
    });
  });
  afterAll(async () => {
    await stack?.close();
    await expectNoLeaks({ stack, closed: true, timeoutMs: 10_000 });
  });

  it('FALLBACK_SIP_URI set: forwarded there from the parent instead of being left on hold', async () => {
    const queue = await stack.rt.rooms.provision({
      roomName: `humans-${Date.now()}`,
      displayName: 'humans',
      expSec: Math.ceil(Date.now() / 1000) + 600,
      numEndpoints: 1,
    });
    const agent = new EmulatorCallClient({ apiUrl: stack.emulator.apiUrl, logger: createLogger({ level: 'silent' }) });
    let endpoint: string | undefined;
    agent.on('dialin-ready', (e) => (endpoint ??= e.sipEndpoint));
    await agent.join({ roomUrl: queue.roomUrl, token: queue.token, userName: 'agent', timeoutMs: 5_000 });
    await until(() => endpoint !== undefined, 10_000, 'the queue room to be ready');
    stack.config.resilience.fallbackSipUri = endpoint;
    const busy = stack.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'say', timeoutMs: 20_000 }, { wait: 60_000 }] });
    try {
      await until(() => busy.state === 'connected', 15_000, 'the one bot slot taken');
      const t0 = Date.now();
      const call = stack.emulator.placeCall({ to: NUMBER });
      await connectedWithin(call, t0);
      expect(call.transcript.some((l) => l.text.includes(`connected to room ${queue.roomName}`))).toBe(true);
      const rec = await stack.waitEnded(call.callId);
      expect(rec.outcome).toBe('queue_timeout');
      expect(rec.recovery?.map((s) => [s.kind, s.after])).toEqual([['fallback_sip', 'queue_timeout']]);
      call.hangup();
      await call.ended;
    } finally {
      stack.config.resilience.fallbackSipUri = undefined;
      busy.hangup();
      await busy.ended;
      await agent.leave().catch(() => undefined);
      await stack.rt.rooms.release(queue.roomName);
    }
  });
});
