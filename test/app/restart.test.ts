/**
 * kill -9 of the real server process, then a restart (issue 11, item 7): the rooms the killed
 * replica left at Daily are found by name and deleted (other replicas' rooms and foreign rooms are
 * not touched), and a signed webhook replayed to the restarted service is answered like a
 * duplicate and starts nothing. The emulator runs in the test process so it outlives the server.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { signPinless } from '../../src/daily/signature.js';
import { createEmulator } from '../../src/emulator/server.js';
import type { Emulator } from '../../src/emulator/types.js';
import { createLogger } from '../../src/core/logger.js';
import { childPids, FIXTURE_BOTS, getJson, startServerProcess, waitFor, type ServerProcess } from '../helpers/ops.js';

const NUMBER = '+15550004000';
const SECRET = randomBytes(32).toString('base64');
const API_KEY = `test_${randomBytes(8).toString('hex')}`;

let emulator: Emulator;
let dataDir: string;
const servers: ServerProcess[] = [];

beforeAll(async () => {
  emulator = await createEmulator({
    host: '127.0.0.1',
    port: 0,
    apiKey: API_KEY,
    holdTimeoutMs: 60_000,
    logger: createLogger({ level: 'silent' }),
  });
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'pb-restart-'));
});
afterEach(async () => {
  for (const s of servers.splice(0)) await s.kill();
});
afterAll(async () => {
  await emulator?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function start(env: Record<string, string> = {}): Promise<ServerProcess> {
  const s = await startServerProcess({
    DAILY_API_KEY: API_KEY,
    DAILY_API_URL: emulator.apiUrl,
    CALL_CLIENT: 'emulator',
    DAILY_PINLESS_HMAC: SECRET,
    CALL_RECORDS_PATH: path.join(dataDir, 'calls.db'),
    REPLICA_ID: 'r1',
    BOTS_DIR: FIXTURE_BOTS,
    DEFAULT_BOT: 'linger',
    IDLE_WORKERS: '1',
    DAILY_ROOM_DELETE_INTERVAL_MS: '50',
    WORKER_CLOSE_TIMEOUT_MS: '1000',
    ...env,
  });
  servers.push(s);
  emulator.setPinlessDialin([{ phone_number: NUMBER, room_creation_api: `${s.url}/dialin`, hmac: SECRET }]);
  return s;
}

async function roomNames(): Promise<string[]> {
  const r = await getJson<{ data: Array<{ name: string }> }>(`${emulator.apiUrl}/rooms`, {
    headers: { authorization: `Bearer ${API_KEY}` },
  });
  return r.body.data.map((x) => x.name);
}

async function createRoom(name: string): Promise<void> {
  const r = await fetch(`${emulator.apiUrl}/rooms`, {
    method: 'POST',
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  expect(r.status).toBe(200);
}

describe('kill -9 and restart (real server process)', () => {
  it('the restarted replica deletes its leftover rooms (only its own) and a replayed webhook starts nothing', async () => {
    const first = await start();
    const call = emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'say', timeoutMs: 20_000 }, { wait: 120_000 }] });
    await waitFor('the caller connected', () => call.state === 'connected', 20_000);
    const own = (await roomNames()).filter((n) => n.startsWith('pb-r1-'));
    expect(own).toHaveLength(1);
    // Rooms that are not this replica's: another replica's, and someone else's.
    const others = [`pb-r2-${Date.now().toString(36)}-0badf00d`, 'team-standup'];
    for (const n of others) await createRoom(n);
    // The webhook Daily sent, signed; replayed after the restart (still inside SIGNATURE_WINDOW_MS).
    const body = JSON.stringify({ To: NUMBER, From: call.from, callId: call.callId, callDomain: call.callDomain });
    const ts = String(Math.floor(Date.now() / 1000));

    await first.kill(); // SIGKILL, then its workers
    expect((await first.exited).signal).toBe('SIGKILL');
    expect(await roomNames()).toEqual(expect.arrayContaining(own));

    const second = await start();
    await second.waitLine((l) => l.msg === 'deleting rooms this replica left behind', 10_000);
    await waitFor('the leftover room deleted', async () => !(await roomNames()).some((n) => own.includes(n)), 10_000);
    expect(await roomNames()).toEqual(expect.arrayContaining(others));

    const replay = await fetch(`${second.url}/dialin`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-pinless-timestamp': ts, 'x-pinless-signature': signPinless(body, SECRET, ts) },
      body,
    });
    expect(replay.status).toBe(200);
    expect(await replay.json()).toMatchObject({ callId: call.callId, duplicate: true, status: 'ended' });
    const status = (await getJson<{ activeCalls: number }>(`${second.url}/status`)).body;
    expect(status.activeCalls).toBe(0);
    expect((await roomNames()).filter((n) => n.startsWith('pb-r1-'))).toEqual([]);
    expect(second.lines.some((l) => l.msg === 'call admitted')).toBe(false);
    // The call id is in the data directory, not only in memory.
    expect(readFileSync(path.join(dataDir, 'admitted-calls.jsonl'), 'utf8')).toContain(call.callId);

    // And the restarted replica serves new calls.
    const next = emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'say', timeoutMs: 20_000 }, { hangup: true }] });
    expect((await next.ended).reason).toBe('caller_hangup');
    call.hangup();
  });

  it('CALL_RECORDS_PATH=off: the admitted log is kept anyway (ADMITTED_LOG_PATH), and a replay after kill -9 starts nothing (issue 21, item 13)', async () => {
    const admittedFile = path.join(dataDir, 'admitted', 'ids.jsonl');
    const env = { CALL_RECORDS_PATH: 'off', ADMITTED_LOG_PATH: admittedFile };
    const first = await start(env);
    const call = emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'say', timeoutMs: 20_000 }, { wait: 120_000 }] });
    await waitFor('the caller connected', () => call.state === 'connected', 20_000);
    const body = JSON.stringify({ To: NUMBER, From: call.from, callId: call.callId, callDomain: call.callDomain });
    const ts = String(Math.floor(Date.now() / 1000));
    await first.kill();
    expect((await first.exited).signal).toBe('SIGKILL');

    const second = await start(env);
    const replay = await fetch(`${second.url}/dialin`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-pinless-timestamp': ts, 'x-pinless-signature': signPinless(body, SECRET, ts) },
      body,
    });
    expect(replay.status).toBe(200);
    expect(await replay.json()).toMatchObject({ callId: call.callId, duplicate: true, status: 'ended' });
    expect(second.lines.some((l) => l.msg === 'call admitted')).toBe(false);
    expect(readFileSync(admittedFile, 'utf8')).toContain(call.callId);
    call.hangup();
  });

  it('kill -9 of the main process only (issue 21, item 5): its worker finishes the live call, and the restarted service records it once, with its real outcome', async () => {
    const first = await start();
    const call = emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'say', timeoutMs: 20_000 }, { wait: 120_000 }] });
    await waitFor('the caller connected', () => call.state === 'connected', 20_000);
    await waitFor('the bot spoke', () => call.transcript.some((l) => l.who === 'bot' && l.text === 'lingering'), 10_000);
    const workers = childPids(first.pid);
    expect(workers.length).toBeGreaterThan(0);
    first.proc.kill('SIGKILL'); // the main process only: its workers are orphaned
    expect((await first.exited).signal).toBe('SIGKILL');
    try {
      // The caller is not cut off: 3 s later still connected, and the bot still answers.
      await new Promise((r) => setTimeout(r, 3_000));
      expect(call.state).toBe('connected');
      const second = await start();
      await second.waitLine(
        (l) => l.msg === 'calls the last process left to its workers: recorded with their outcomes, or followed until they end',
        10_000,
      );
      // The room the orphan still uses is not swept as a leftover.
      await new Promise((r) => setTimeout(r, 1_000));
      expect(call.state).toBe('connected');
      await call.press('7');
      await waitFor('the bot answered the key', () => call.transcript.some((l) => l.who === 'bot' && l.text === 'bye 7'), 15_000);
      expect((await call.ended).reason).not.toBe('caller_hangup_on_hold');
      // One record, closed with what the bot did (not `interrupted`), with its stages.
      const rec = await waitFor(
        'the call recorded',
        async () => {
          const r = await getJson<{
            calls: Array<{ id: string; callId: string; outcome: string | null; detail?: string; timeline: Record<string, number> }>;
          }>(`${second.url}/calls?format=json`);
          const mine = r.body.calls.filter((c) => c.callId === call.callId);
          return mine.length > 0 && mine.every((c) => c.outcome !== null) ? mine : undefined;
        },
        20_000,
      );
      expect(rec).toHaveLength(1);
      expect(rec[0]!.outcome).toBe('completed');
      expect(rec[0]!.detail).toMatch(/finished by its worker after the service stopped/);
      expect(rec[0]!.timeline.connected).toBeGreaterThan(0);
      // Its room is deleted once recorded, and no file is left behind.
      await waitFor('the room deleted', async () => !(await roomNames()).some((n) => n.startsWith('pb-r1-')), 10_000);
      expect(readdirSync(path.join(dataDir, 'orphans'))).toEqual([]);
    } finally {
      for (const pid of workers) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
  }, 90_000);
});
