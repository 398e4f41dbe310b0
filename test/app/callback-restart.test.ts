/**
 * Callbacks survive a restart (issue 26, item 2): kill -9 of the real server process while a
 * callback waits for capacity; the restarted service (same data directory and REPLICA_ID) dials it
 * once. The emulator runs in the test process so it outlives the server.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmulator } from '../../src/emulator/server.js';
import type { EmulatedCall, Emulator } from '../../src/emulator/types.js';
import { createLogger } from '../../src/core/logger.js';
import { FIXTURE_BOTS, startServerProcess, type ServerProcess } from '../helpers/ops.js';
import { until } from '../helpers/invariants.js';

const NUMBER = '+15550004100';
const CALLER = '+15550004101';
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
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'pb-callback-restart-'));
});
afterAll(async () => {
  for (const s of servers.splice(0)) await s.kill();
  await emulator?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function start(): Promise<ServerProcess> {
  const s = await startServerProcess({
    DAILY_API_KEY: API_KEY,
    DAILY_API_URL: emulator.apiUrl,
    CALL_CLIENT: 'emulator',
    DAILY_PINLESS_HMAC: SECRET,
    CALL_RECORDS_PATH: path.join(dataDir, 'calls.db'),
    REPLICA_ID: 'r1',
    BOTS_DIR: FIXTURE_BOTS,
    DEFAULT_BOT: 'callback',
    CALLBACK_OFFER: 'true',
    MAX_CONCURRENT_BOTS: '1',
    MAX_QUEUED_CALLS: '0',
    IDLE_WORKERS: '1',
    TTS_PROVIDER: 'text',
    VOICEMAIL_DETECT: 'false',
    WORKER_CLOSE_TIMEOUT_MS: '1000',
  });
  servers.push(s);
  emulator.setPinlessDialin([{ phone_number: NUMBER, room_creation_api: `${s.url}/dialin`, hmac: SECRET }]);
  return s;
}

/** The callbacks table as the service wrote it (read-only, beside the running service: WAL). */
function rows(): Array<{ number: string; state: string; result: string | null }> {
  const db = new Database(path.join(dataDir, 'calls.db'), { readonly: true, fileMustExist: true });
  try {
    return db.prepare<[], { number: string; state: string; result: string | null }>('SELECT number, state, result FROM callbacks').all();
  } finally {
    db.close();
  }
}

const said = (c: EmulatedCall) => c.transcript.filter((t) => t.who === 'bot').map((t) => t.text);

describe('callbacks across a restart (real server process)', () => {
  it('a callback stored before kill -9 is dialled once by the restarted service', async () => {
    const first = await start();
    // The one bot slot is taken; the next caller is offered a callback and takes it.
    const holder = emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'say', timeoutMs: 30_000 }, { wait: 60_000 }] });
    await until(() => said(holder).length > 0, 30_000, 'the bot slot taken');
    const caller = emulator.placeCall({
      to: NUMBER,
      from: CALLER,
      script: [{ waitFor: 'say', match: 'Press 1', timeoutMs: 30_000 }, { press: '1' }, { waitFor: 'say', match: 'call you back' }],
    });
    await caller.ended;
    await until(() => rows().some((r) => r.number === CALLER), 10_000, 'the callback stored');
    expect(rows()).toEqual([{ number: CALLER, state: 'pending', result: null }]);
    await first.kill(); // SIGKILL, then its workers
    expect((await first.exited).signal).toBe('SIGKILL');
    holder.hangup();
    emulator.setDialOutTarget(CALLER, {
      answer: 'answer',
      answerAfterMs: 50,
      script: [{ waitFor: 'say', match: 'callback', timeoutMs: 20_000 }],
    });
    expect(emulator.dialOutsTo(CALLER)).toHaveLength(0);

    await start();
    await until(() => rows()[0]?.state === 'done', 45_000, 'the callback placed after the restart');
    expect(rows()).toEqual([{ number: CALLER, state: 'done', result: 'answered' }]);
    const legs = emulator.dialOutsTo(CALLER);
    expect(legs).toHaveLength(1);
    expect(said(legs[0]!).join(' ')).toMatch(/^This is your callback \(queue_full\) for call /);
  }, 120_000);
});
