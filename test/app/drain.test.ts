/**
 * Drain and process supervision on the real server process (`node --import tsx src/app/main.ts`,
 * embedded emulator inside it, calls driven through the emulator's HTTP control API).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, test } from 'vitest';
import { signPinless } from '../../src/daily/signature.js';
import {
  childPids,
  FIXTURE_BOTS,
  getJson,
  isAlive,
  postJson,
  startServerProcess,
  waitFor,
  type LogLine,
  type ServerProcess,
} from '../helpers/ops.js';

const NUMBER = '+15550003000';
const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const SECRET = randomBytes(32).toString('base64');

const baseEnv = {
  DAILY_PINLESS_HMAC: SECRET,
  EMULATOR_NUMBERS: NUMBER,
  BOTS_DIR: FIXTURE_BOTS,
  DEFAULT_BOT: 'linger',
  IDLE_WORKERS: '1',
  WORKER_CLOSE_TIMEOUT_MS: '1000',
  WORKER_PING_INTERVAL_MS: '500',
};

const servers: ServerProcess[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.kill();
});

async function start(env: Record<string, string>): Promise<ServerProcess> {
  const s = await startServerProcess({ ...baseEnv, ...env });
  servers.push(s);
  return s;
}

interface EmuCall {
  id: string;
  callId: string;
  state: string;
  reason?: string;
  webhook?: { status?: number };
  transcript: Array<{ who: string; text: string }>;
}

/** Places a call through the control API and waits until the bot talks to the caller. */
async function liveCall(s: ServerProcess): Promise<EmuCall> {
  const placed = await postJson<EmuCall>(`${s.emulator}/_emulator/calls`, { to: NUMBER });
  expect(placed.status).toBe(200);
  return waitFor(
    'the bot to greet the caller',
    async () => {
      const c = (await getJson<EmuCall>(`${s.emulator}/_emulator/calls/${placed.body.id}`)).body;
      return c.state === 'connected' && c.transcript.some((t) => t.who === 'bot' && t.text === 'lingering') ? c : undefined;
    },
    20_000,
  );
}

function signedWebhook(s: ServerProcess) {
  const body = JSON.stringify({ To: NUMBER, From: '+15557654321', callId: randomUUID(), callDomain: randomUUID() });
  const ts = String(Math.floor(Date.now() / 1000));
  return fetch(`${s.url}/dialin`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-pinless-timestamp': ts, 'x-pinless-signature': signPinless(body, SECRET, ts) },
    body,
  });
}

const callEndedLines = (s: ServerProcess): LogLine[] => s.lines.filter((l) => l.msg === 'call ended');
const TIMELINE_ORDER = [
  'received',
  'room_created',
  'queued',
  'worker_assigned',
  'joined',
  'dialin_ready',
  'forward_sent',
  'forwarded',
  'connected',
  'ended',
];

describe('drain on SIGTERM (real server process)', () => {
  test('readiness 503 at once, new webhooks 503 + Retry-After, the live call finishes, exit 0', async () => {
    const s = await start({ DRAIN_TIMEOUT_MS: '60000' });
    await waitFor(
      'a warm worker',
      async () => (await getJson<{ workers: { idle: number } }>(`${s.url}/status`)).body.workers.idle === 1,
      20_000,
    );
    expect((await getJson(`${s.url}/health/ready`)).status).toBe(200);

    // A signed webhook is admitted before the signal (sanity check of the signing used below).
    const call = await liveCall(s);
    const status = (await getJson<{ activeCalls: number; draining: boolean; version: string }>(`${s.url}/status`)).body;
    expect(status).toMatchObject({ activeCalls: 1, draining: false, version: VERSION });
    const workers = childPids(s.pid);
    expect(workers.length).toBeGreaterThanOrEqual(1);

    s.proc.kill('SIGTERM');
    // The signal is delivered asynchronously: a request already on its way may be answered first.
    // "At once" = within a few hundred ms of the signal, before any call could finish.
    const signalledAt = Date.now();
    const ready = await waitFor(
      'readiness 503 after SIGTERM',
      async () => {
        const r = await getJson<{ status: string; reason?: string }>(`${s.url}/health/ready`);
        return r.status === 503 ? r : undefined;
      },
      2_000,
    );
    expect(Date.now() - signalledAt).toBeLessThan(2_000);
    expect(ready.status).toBe(503);
    expect(ready.body.reason).toBe('draining');
    expect((await getJson(`${s.url}/health/live`)).status).toBe(200);

    const refused = await signedWebhook(s);
    expect(refused.status).toBe(503);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await refused.json()).toMatchObject({ error: 'busy', reason: 'draining' });

    // A call placed at Daily while we drain is refused too (Daily tries elsewhere / keeps holding).
    const late = await postJson<EmuCall>(`${s.emulator}/_emulator/calls`, { to: NUMBER });
    const lateState = await waitFor('the late webhook to be answered', async () => {
      const c = (await getJson<EmuCall>(`${s.emulator}/_emulator/calls/${late.body.id}`)).body;
      return c.webhook?.status !== undefined ? c : undefined;
    });
    expect(lateState.webhook!.status).toBe(503);

    // The live call is untouched: still connected, the process still running.
    await s.waitLine((l) => l.msg === 'draining: no new calls; live calls may finish');
    const still = (await getJson<EmuCall>(`${s.emulator}/_emulator/calls/${call.id}`)).body;
    expect(still.state).toBe('connected');
    expect(s.proc.exitCode).toBeNull();

    // The caller finishes; the call completes and the process exits cleanly.
    expect((await postJson(`${s.emulator}/_emulator/calls/${call.id}/actions`, { press: '4' })).status).toBe(200);
    const exit = await s.exited;
    expect(exit).toEqual({ code: 0, signal: null });

    const ended = callEndedLines(s);
    expect(ended).toHaveLength(1);
    const line = ended[0]!;
    expect(line).toMatchObject({ outcome: 'completed', callId: call.callId, bot: 'linger', detail: 'caller pressed 4', warmStart: true });
    expect(typeof line.pid).toBe('number');
    const tl = line.timelineMs as Record<string, number>;
    const present = TIMELINE_ORDER.filter((k) => tl[k] !== undefined);
    expect(present).toEqual(TIMELINE_ORDER);
    for (let i = 1; i < present.length; i++) expect(tl[present[i]!]).toBeGreaterThanOrEqual(tl[present[i - 1]!]!);
    expect(tl.received).toBe(0);
    expect(line.holdAddedMs).toBe(tl.forward_sent);
    // Secrets never in logs.
    const all = JSON.stringify(s.lines) + s.stderr();
    expect(all).not.toContain(SECRET);
    expect(s.lines.some((l) => l.msg === 'dialin webhook refused: busy' && l.reason === 'draining')).toBe(true);
    await waitFor('the workers to be gone', () => workers.every((p) => !isAlive(p)), 10_000);
  });

  test('drain timeout: a call still live after DRAIN_TIMEOUT_MS is hung up with outcome shutdown', async () => {
    const DRAIN_TIMEOUT_MS = 1_500;
    const s = await start({ DRAIN_TIMEOUT_MS: String(DRAIN_TIMEOUT_MS) });
    const call = await liveCall(s);
    const workers = childPids(s.pid);
    const t0 = Date.now();
    s.proc.kill('SIGTERM');
    const exit = await s.exited;
    const tookMs = Date.now() - t0;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(tookMs).toBeGreaterThanOrEqual(DRAIN_TIMEOUT_MS);
    expect(tookMs).toBeLessThan(DRAIN_TIMEOUT_MS + 10_000);
    expect(s.lines.some((l) => l.msg === 'drain timeout: hanging up on live calls' && l.live === 1)).toBe(true);
    const ended = callEndedLines(s);
    expect(ended).toHaveLength(1);
    expect(ended[0]).toMatchObject({ outcome: 'shutdown', callId: call.callId });
    await waitFor('the workers to be gone', () => workers.every((p) => !isAlive(p)), 10_000);
  });

  test('a second SIGTERM forces exit at once; orphaned workers exit by themselves', async () => {
    const s = await start({ DRAIN_TIMEOUT_MS: '120000' });
    await liveCall(s);
    const workers = childPids(s.pid);
    expect(workers.length).toBeGreaterThanOrEqual(1);
    s.proc.kill('SIGTERM');
    await s.waitLine((l) => l.msg === 'draining: no new calls; live calls may finish');
    expect(s.proc.exitCode).toBeNull();
    const t0 = Date.now();
    s.proc.kill('SIGTERM');
    const exit = await s.exited;
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(exit.code).toBe(1);
    expect(callEndedLines(s)).toHaveLength(0);
    await waitFor('orphaned workers to exit', () => workers.every((p) => !isAlive(p)), 10_000);
  });
});

describe('memory supervision in the logs (real server process)', () => {
  test('a worker growing past WORKER_MEMORY_WARN_MB is warned about once, then killed past WORKER_MEMORY_LIMIT_MB', async () => {
    const s = await start({
      DEFAULT_BOT: 'memory',
      WORKER_PING_INTERVAL_MS: '200',
      WORKER_MEMORY_WARN_MB: '170',
      WORKER_MEMORY_LIMIT_MB: '260',
    });
    const placed = await postJson<EmuCall>(`${s.emulator}/_emulator/calls`, { to: NUMBER });
    expect(placed.status).toBe(200);
    const ended = await s.waitLine((l) => l.msg === 'call ended', 30_000);
    expect(ended).toMatchObject({ outcome: 'worker_memory', level: 40, callId: placed.body.callId });
    const warnAt = s.lines.findIndex((l) => l.msg === 'worker memory high');
    const killAt = s.lines.findIndex((l) => l.msg === 'worker over its memory limit; killing it');
    expect(warnAt).toBeGreaterThanOrEqual(0);
    expect(killAt).toBeGreaterThan(warnAt);
    expect(s.lines.filter((l) => l.msg === 'worker memory high')).toHaveLength(1);
    expect(s.lines[warnAt]).toMatchObject({ level: 40, warnMb: 170, pid: ended.pid });
    expect(s.lines[killAt]).toMatchObject({ level: 50, limitMb: 260, pid: ended.pid });
    expect(Number(s.lines[killAt]!.rssMb)).toBeGreaterThan(260);
  });

  test('a worker past both marks in one sample: the warning is still logged, before the kill', async () => {
    const s = await start({
      DEFAULT_BOT: 'memory-jump',
      WORKER_PING_INTERVAL_MS: '1000',
      WORKER_MEMORY_WARN_MB: '170',
      WORKER_MEMORY_LIMIT_MB: '260',
    });
    const placed = await postJson<EmuCall>(`${s.emulator}/_emulator/calls`, { to: NUMBER });
    expect(placed.status).toBe(200);
    const ended = await s.waitLine((l) => l.msg === 'call ended', 30_000);
    expect(ended).toMatchObject({ outcome: 'worker_memory', callId: placed.body.callId });
    const warnAt = s.lines.findIndex((l) => l.msg === 'worker memory high');
    const killAt = s.lines.findIndex((l) => l.msg === 'worker over its memory limit; killing it');
    expect(killAt).toBeGreaterThan(0);
    expect(warnAt).toBeGreaterThanOrEqual(0);
    expect(warnAt).toBeLessThan(killAt);
    // One sample: the same reading on both lines.
    expect(s.lines[warnAt]!.rssMb).toBe(s.lines[killAt]!.rssMb);
  });
});

describe('orphan exit (real server process)', () => {
  test('SIGKILL of the server: its idle and busy workers exit by themselves', async () => {
    const s = await start({ IDLE_WORKERS: '2', DRAIN_TIMEOUT_MS: '60000' });
    await waitFor(
      'two warm workers',
      async () => (await getJson<{ workers: { idle: number } }>(`${s.url}/status`)).body.workers.idle === 2,
      30_000,
    );
    await liveCall(s);
    // One busy worker, and the pool back at two idle ones.
    await waitFor(
      'busy + two idle',
      async () => {
        const w = (await getJson<{ workers: { idle: number; busy: number } }>(`${s.url}/status`)).body.workers;
        return w.idle === 2 && w.busy === 1;
      },
      30_000,
    );
    const workers = childPids(s.pid);
    expect(workers).toHaveLength(3);
    expect(workers.every(isAlive)).toBe(true);
    s.proc.kill('SIGKILL');
    expect((await s.exited).signal).toBe('SIGKILL');
    await waitFor('orphaned workers to exit', () => workers.every((p) => !isAlive(p)), 10_000);
  });
});
