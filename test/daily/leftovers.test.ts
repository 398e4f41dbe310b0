/**
 * The pieces of the restart story (issue 11, item 7) on their own: the start-up sweep pages through
 * every room of the domain (real emulator, GET /rooms 100 a page) and picks only this replica's
 * rooms from before the process started; the admitted-ids log survives a reopen, drops what is
 * older than its window and skips a torn last line.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DailyRestClient } from '../../src/daily/rest.js';
import { AdmittedLog } from '../../src/admission/admitted-log.js';
import { ownRoomCreatedAtMs, roomNameFor, sweepLeftovers, takeReplicaLock } from '../../src/daily/leftovers.js';
import { createEmulator } from '../../src/emulator/server.js';
import type { Emulator } from '../../src/emulator/types.js';
import { createLogger } from '../../src/core/logger.js';

const logger = createLogger({ level: 'silent' });
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pb-leftovers-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('start-up sweep of leftover rooms', () => {
  let emulator: Emulator;
  let rest: DailyRestClient;
  beforeAll(async () => {
    emulator = await createEmulator({ host: '127.0.0.1', port: 0, apiKey: 'test_key_leftovers', logger, rateLimits: false });
    rest = new DailyRestClient({ apiUrl: emulator.apiUrl, apiKey: 'test_key_leftovers', timeoutMs: 2_000 });
  });
  afterAll(async () => emulator?.close());

  it('pages through 260 rooms and releases exactly this replica’s old, unused rooms', async () => {
    const old = Date.now() - 60_000;
    const mine = Array.from({ length: 130 }, (_, i) => roomNameFor('r1', old + i));
    const inUse = mine[7]!;
    const others = [
      ...Array.from({ length: 80 }, (_, i) => roomNameFor('r2', old + i)),
      ...Array.from({ length: 50 }, (_, i) => `standup-${i}`),
    ];
    for (const name of [...mine, ...others])
      await rest.createDialinRoom({
        name,
        displayName: 'x',
        expSec: Math.ceil(Date.now() / 1000) + 600,
        numEndpoints: 1,
        enableDialout: false,
      });
    const startedAtMs = Date.now();
    const fresh = roomNameFor('r1'); // created by this process: not a leftover
    await rest.createDialinRoom({
      name: fresh,
      displayName: 'x',
      expSec: Math.ceil(Date.now() / 1000) + 600,
      numEndpoints: 1,
      enableDialout: false,
    });

    const released: string[] = [];
    const r = await sweepLeftovers({
      rest,
      release: async (n) => void released.push(n),
      replicaId: 'r1',
      startedAtMs,
      inUse: (n) => n === inUse,
      logger,
    });
    expect(r.listed).toBe(261);
    expect(new Set(released)).toEqual(new Set(mine.filter((n) => n !== inUse)));
  });

  it('names carry the replica and the creation time', () => {
    const n = roomNameFor('abc', 1_700_000_000_000);
    expect(n).toMatch(/^pb-abc-[0-9a-z]+-[0-9a-f]{8}$/);
    expect(ownRoomCreatedAtMs(n, 'abc')).toBe(1_700_000_000_000);
    expect(ownRoomCreatedAtMs(n, 'ab')).toBeUndefined();
    expect(ownRoomCreatedAtMs('pb-abc-zz', 'abc')).toBeUndefined();
  });

  it('a data directory held by another live process is not swept', () => {
    const d = mkdtempSync(path.join(dir, 'lock-'));
    expect(takeReplicaLock(d)).toEqual({ ok: true });
    appendFileSync(path.join(d, 'replica.lock'), ''); // still ours
    expect(takeReplicaLock(d)).toEqual({ ok: true });
    // PID 1 is always alive: a lock it holds is respected.
    rmSync(path.join(d, 'replica.lock'));
    appendFileSync(path.join(d, 'replica.lock'), '1\n');
    expect(takeReplicaLock(d)).toEqual({ ok: false, holder: 1 });
  });
});

describe('admitted call ids', () => {
  it('survive a reopen, expire after their window, and a torn line is skipped', () => {
    const file = path.join(dir, 'admitted.jsonl');
    const now = Date.now();
    const a = AdmittedLog.open(file, 300_000, logger, now);
    a.add({ callId: 'old', id: 'i0', roomUrl: 'u0', atMs: now - 400_000 });
    a.add({ callId: 'c1', id: 'i1', roomUrl: 'u1', atMs: now - 1_000 });
    a.add({ callId: 'c2', id: 'i2', roomUrl: 'u2', atMs: now });
    appendFileSync(file, '{"callId":"torn","id":'); // the process died mid-write
    const b = AdmittedLog.open(file, 300_000, logger, now);
    expect(b.get('c1', now)).toMatchObject({ id: 'i1', roomUrl: 'u1' });
    expect(b.get('c2', now)?.id).toBe('i2');
    expect(b.get('old', now)).toBeUndefined();
    expect(b.get('torn', now)).toBeUndefined();
    // Reopening compacted the file: only live entries remain, one per line.
    expect(
      readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { callId: string }).callId),
    ).toEqual(['c1', 'c2']);
    expect(b.get('c1', now + 300_000)).toBeUndefined();
  });
});
