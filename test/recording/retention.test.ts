/**
 * RECORDING_RETENTION_DAYS (issue 24): old recordings are deleted from both stores — Daily's (of
 * patchbay's `pb-` rooms only; their links die with them) and the local files — and recent ones are
 * kept. The real emulator over HTTP, real files.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, utimesSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createEmulator } from '../../src/emulator/server.js';
import type { Emulator } from '../../src/emulator/types.js';
import { EmulatorCallClient } from '../../src/emulator/client.js';
import { DailyRestClient } from '../../src/daily/rest.js';
import { DailyApiError } from '../../src/core/errors.js';
import { signMeetingToken } from '../../src/daily/token.js';
import { sweepRecordings } from '../../src/app/recording-retention.js';

const KEY = 'test_retention_key';
let emu: Emulator;
let rest: DailyRestClient;
let dir: string;

async function recordRoom(name: string): Promise<string> {
  await fetch(`${emu.apiUrl}/rooms`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name, privacy: 'private', properties: { enable_recording: 'cloud-audio-only' } }),
  });
  const domain = ((await (await fetch(`${emu.apiUrl}/`, { headers: { authorization: `Bearer ${KEY}` } })).json()) as { domain_id: string })
    .domain_id;
  const now = Math.floor(Date.now() / 1000);
  const token = signMeetingToken({ r: name, d: domain, o: true, iat: now, exp: now + 600 }, KEY);
  const c = new EmulatorCallClient({ apiUrl: emu.apiUrl, logger: pino({ level: 'silent' }) });
  await c.join({ roomUrl: `${emu.origin}/${name}`, token, userName: 'bot', timeoutMs: 5_000 });
  await rest.startRecording(name, { type: 'cloud-audio-only' });
  await rest.stopRecording(name, { type: 'cloud-audio-only' });
  await c.close();
  return (await rest.listRecordings({ roomName: name }))[0]!.id;
}

beforeAll(async () => {
  emu = await createEmulator({ apiKey: KEY, rateLimits: false });
  rest = new DailyRestClient({ apiUrl: emu.apiUrl, apiKey: KEY, timeoutMs: 5_000 });
  dir = mkdtempSync(join(tmpdir(), 'pb-retention-'));
});
afterAll(async () => {
  await emu?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('recording retention', () => {
  it('deletes recordings older than the retention from Daily (patchbay’s rooms only) and from disk; keeps recent ones', async () => {
    const ours = await recordRoom('pb-test-1-abc');
    const foreign = await recordRoom('someone-elses-room');
    const link = await rest.recordingAccessLink(ours);
    writeFileSync(join(dir, 'old.wav'), 'x');
    writeFileSync(join(dir, 'new.wav'), 'x');
    const threeDaysAgo = (Date.now() - 3 * 86_400_000) / 1000;
    utimesSync(join(dir, 'old.wav'), threeDaysAgo, threeDaysAgo);
    const o = { days: 1, daily: rest, dir, logger: pino({ level: 'silent' }) };

    const now = await sweepRecordings(o);
    expect(now).toEqual({ daily: [], local: ['old.wav'] });
    expect(readdirSync(dir)).toEqual(['new.wav']);

    const later = await sweepRecordings(o, Date.now() + 2 * 86_400_000);
    expect(later).toEqual({ daily: [ours], local: ['new.wav'] });
    const gone = await rest.getRecording(ours).catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(DailyApiError);
    expect((gone as DailyApiError).status).toBe(404);
    expect((await fetch(link.download_link)).status).toBe(404);
    expect((await rest.getRecording(foreign)).id).toBe(foreign);
  });
});
