/**
 * Domain webhooks nobody can verify (issue 21, item 14), on the real server process against Daily
 * (an external emulator, DAILY_API_KEY set) with neither DAILY_WEBHOOK_HMAC nor DAILY_WEBHOOK_BASIC_AUTH:
 * a forged `dialin.stopped` for a live call's room used to end the call. It is refused now, unless
 * DAILY_WEBHOOK_ALLOW_UNSIGNED=true says so for development.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEmulator } from '../../src/emulator/server.js';
import type { Emulator } from '../../src/emulator/types.js';
import { createLogger } from '../../src/core/logger.js';
import { FIXTURE_BOTS, startServerProcess, waitFor, type ServerProcess } from '../helpers/ops.js';

const NUMBER = '+15550004100';
const SECRET = randomBytes(32).toString('base64');
const API_KEY = `test_${randomBytes(8).toString('hex')}`;

let emulator: Emulator;
const servers: ServerProcess[] = [];

beforeAll(async () => {
  emulator = await createEmulator({
    host: '127.0.0.1',
    port: 0,
    apiKey: API_KEY,
    holdTimeoutMs: 60_000,
    logger: createLogger({ level: 'silent' }),
  });
});
afterEach(async () => {
  for (const s of servers.splice(0)) await s.kill();
});
afterAll(async () => {
  await emulator?.close();
});

async function start(env: Record<string, string> = {}): Promise<ServerProcess> {
  const s = await startServerProcess({
    DAILY_API_KEY: API_KEY,
    DAILY_API_URL: emulator.apiUrl,
    CALL_CLIENT: 'emulator',
    DAILY_PINLESS_HMAC: SECRET,
    CALL_RECORDS_PATH: ':memory:',
    BOTS_DIR: FIXTURE_BOTS,
    DEFAULT_BOT: 'linger',
    IDLE_WORKERS: '1',
    DAILY_WEBHOOK_RECONCILE_GRACE_MS: '0',
    ...env,
  });
  servers.push(s);
  emulator.setPinlessDialin([{ phone_number: NUMBER, room_creation_api: `${s.url}/dialin`, hmac: SECRET }]);
  return s;
}

/** A connected call and a forged, unsigned `dialin.stopped` for its room. */
async function forgeStop(s: ServerProcess) {
  const call = emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'say', timeoutMs: 20_000 }, { wait: 60_000 }] });
  await waitFor('the caller connected', () => call.state === 'connected', 20_000);
  const room = emulator.snapshot().rooms.find((r) => r.sipEndpoints.some((e) => e.callId === call.callId))!.name;
  const res = await fetch(`${s.url}/webhooks/daily`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ version: '1.0.0', type: 'dialin.stopped', id: randomUUID(), payload: { room }, event_ts: Date.now() / 1000 }),
  });
  return { call, status: res.status };
}

describe('unsigned domain webhooks (DAILY_API_KEY, no DAILY_WEBHOOK_HMAC)', () => {
  it('are refused by default: a forged dialin.stopped does not end a live call', { timeout: 60_000 }, async () => {
    const s = await start();
    const { call, status } = await forgeStop(s);
    expect(status).toBe(401);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(call.state).toBe('connected');
    expect(s.lines.some((l) => String(l.msg).includes('POST /webhooks/daily refuses every event'))).toBe(true);
    call.hangup();
    await call.ended;
  });

  it('are accepted with DAILY_WEBHOOK_ALLOW_UNSIGNED=true (development), with a loud warning', { timeout: 60_000 }, async () => {
    const s = await start({ DAILY_WEBHOOK_ALLOW_UNSIGNED: 'true' });
    expect(s.lines.some((l) => String(l.msg).includes('DAILY_WEBHOOK_ALLOW_UNSIGNED=true: domain webhooks are NOT verified'))).toBe(true);
    const { call, status } = await forgeStop(s);
    expect(status).toBe(200);
    await waitFor('the call ended by the event', () => call.state === 'ended', 10_000);
  });
});
