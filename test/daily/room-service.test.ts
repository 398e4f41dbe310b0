/**
 * The room service against the real emulator: provisioning (room + token, display names), and the
 * paced deletion queue (≤ 2 DELETE /rooms per second, call path first, 429 deferred, none lost).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config.js';
import { DailyRestClient } from '../../src/daily/rest.js';
import { createRoomService } from '../../src/daily/room-service.js';
import { LocalRateLimiter, parseRateLimits, rateClassOf } from '../../src/daily/rate-limit.js';
import { MAX_DISPLAY_NAME_CHARS } from '../../src/daily/sip.js';
import { DailyApiError } from '../../src/core/errors.js';
import { createEmulator } from '../../src/emulator/server.js';
import type { Emulator } from '../../src/emulator/types.js';
import { createLogger } from '../../src/core/logger.js';

const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent', name: 'test' });
const apiKey = `test_${randomBytes(8).toString('hex')}`;
const config = loadConfig({ LOG_LEVEL: 'silent', DAILY_TOKEN_MODE: 'rest' });
let emu: Emulator;
let rest: DailyRestClient;

const exp = () => Math.floor(Date.now() / 1000) + 600;
const name = () => `rs-${randomBytes(5).toString('hex')}`;
const deletes = (since: number) => emu.requestLog.filter((r) => r.method === 'DELETE' && r.path.startsWith('/rooms/') && r.atMs >= since);

beforeAll(async () => {
  emu = await createEmulator({ host: '127.0.0.1', port: 0, apiKey, logger });
  rest = new DailyRestClient({ apiUrl: emu.apiUrl, apiKey, timeoutMs: 2_000 });
});
afterAll(async () => {
  await emu?.close();
});
afterEach(() => {
  emu.faults.clear();
  emu.setLatencies({ roomCreateMs: 0, roomDeleteMs: 0 });
});

describe('provision', () => {
  it('creates the SIP room and a token for it; a long display name is shortened', async () => {
    const rooms = createRoomService({ rest, config, logger });
    const long = `sip:${'x'.repeat(300)}@carrier.example`;
    const r = await rooms.provision({ roomName: name(), displayName: long, expSec: exp(), numEndpoints: 1 });
    expect(r.roomUrl).toContain(r.roomName);
    expect(r.token.split('.')).toHaveLength(3);
    const info = await rest.getRoom(r.roomName);
    const dn = (info.config.sip as { display_name: string }).display_name;
    expect([...dn].length).toBeLessThanOrEqual(MAX_DISPLAY_NAME_CHARS);
    expect(dn.startsWith('sip:xxx')).toBe(true);
    await rooms.release(r.roomName);
    rooms.close();
  });

  it('a permanent Daily 400 is thrown as a non-retryable DailyApiError, at once', async () => {
    const rooms = createRoomService({ rest, config, logger });
    const t0 = Date.now();
    emu.faults.inject({ method: 'POST', path: '/rooms', status: 400, times: 5 });
    const err = await rooms.provision({ roomName: name(), displayName: 'A', expSec: exp(), numEndpoints: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DailyApiError);
    expect((err as DailyApiError).retryable).toBe(false);
    expect((err as DailyApiError).status).toBe(400);
    expect(emu.requestLog.filter((r) => r.method === 'POST' && r.path === '/rooms' && r.atMs >= t0)).toHaveLength(1);
    rooms.close();
  });
});

describe('paced deletion', () => {
  it('a burst of releases: DELETE /rooms at most 2 per second, every room deleted', async () => {
    const rooms = createRoomService({ rest, config, logger });
    const names: string[] = [];
    for (let i = 0; i < 10; i++)
      names.push((await rooms.provision({ roomName: name(), displayName: 'A', expSec: exp(), numEndpoints: 1 })).roomName);
    const t0 = Date.now();
    await Promise.all(names.map((n) => rooms.release(n)));
    const d = deletes(t0);
    expect(d.map((r) => r.status)).toEqual(names.map(() => 200));
    // Sent one per 500 ms: any three consecutive answers span about a second (answer times carry some jitter).
    for (let i = 2; i < d.length; i++) expect(d[i]!.atMs - d[i - 2]!.atMs).toBeGreaterThanOrEqual(800);
    const left = new Set(emu.snapshot().rooms.map((r) => r.name));
    expect(names.filter((n) => left.has(n))).toEqual([]);
    expect(rooms.stats()).toMatchObject({ deleted: 10, givenUp: 0 });
    rooms.close();
  }, 30_000);

  it('a 429 pauses the queue for its Retry-After (no retry into more 429s); no room is lost', async () => {
    const rooms = createRoomService({ rest, config, logger });
    const names: string[] = [];
    for (let i = 0; i < 3; i++)
      names.push((await rooms.provision({ roomName: name(), displayName: 'A', expSec: exp(), numEndpoints: 1 })).roomName);
    emu.faults.inject({ method: 'DELETE', path: '/rooms', status: 429, times: 1, retryAfterSec: 2 });
    const t0 = Date.now();
    await Promise.all(names.map((n) => rooms.release(n)));
    const d = deletes(t0);
    expect(d.map((r) => r.status)).toEqual([429, 200, 200, 200]);
    expect(d[1]!.atMs - d[0]!.atMs).toBeGreaterThanOrEqual(1_900);
    expect(rooms.stats()).toMatchObject({ deleted: 3, givenUp: 0, rateLimited: 1 });
    rooms.close();
  }, 30_000);

  it('the call path goes first: no DELETE is sent while a room is being created', async () => {
    const rooms = createRoomService({ rest, config, logger });
    const names: string[] = [];
    for (let i = 0; i < 3; i++)
      names.push((await rooms.provision({ roomName: name(), displayName: 'A', expSec: exp(), numEndpoints: 1 })).roomName);
    emu.setLatencies({ roomCreateMs: 1_000 });
    const t0 = Date.now();
    const provisioning = rooms.provision({ roomName: name(), displayName: 'A', expSec: exp(), numEndpoints: 1 });
    await new Promise((r) => setTimeout(r, 50));
    const released = Promise.all(names.map((n) => rooms.release(n)));
    const created = await provisioning;
    const createdAt = Date.now();
    await released;
    const d = deletes(t0);
    expect(d).toHaveLength(3);
    expect(d[0]!.atMs).toBeGreaterThanOrEqual(createdAt - 100);
    expect(rooms.stats().deferredForCalls).toBeGreaterThan(0);
    await rooms.release(created.roomName);
    rooms.close();
  }, 30_000);

  it('a DELETE failing for good is given up after the cleanup policy; release still resolves', async () => {
    const fastConfig = { ...config, daily: { ...config.daily, roomDeleteIntervalMs: 50 } };
    const quick = new DailyRestClient({
      apiUrl: emu.apiUrl,
      apiKey,
      timeoutMs: 2_000,
      policies: { cleanup: { ...rest.policies.cleanup, deadlineMs: 1_500, baseDelayMs: 100, maxDelayMs: 300 } },
    });
    const rooms = createRoomService({ rest: quick, config: fastConfig, logger });
    const r = await rooms.provision({ roomName: name(), displayName: 'A', expSec: exp(), numEndpoints: 1 });
    emu.faults.inject({ method: 'DELETE', path: '/rooms', status: 500, times: 1_000 });
    const t0 = Date.now();
    await rooms.release(r.roomName);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(deletes(t0).length).toBeGreaterThan(1);
    expect(rooms.stats().givenUp).toBe(1);
    emu.faults.clear();
    await rest.deleteRoom(r.roomName);
    rooms.close();
  }, 30_000);

  it('releases faster than Daily deletes (its DELETE class): the backlog stays bounded, the oldest rooms are left to their exp', async () => {
    // Daily's deletion class is ≈1.7/s per domain (50 per 30 s); here 3 per 2 s, and rooms are
    // released at ≈20/s for 1.5 s: far above it, for long.
    emu.rateLimits.update({ classes: { 'room-delete': [{ requests: 3, windowMs: 2_000 }] } });
    // The replica's rate limiter knows the same class (DAILY_RATE_LIMITS), as the runtime wires it.
    const limiter = new LocalRateLimiter(parseRateLimits('delete=3/2000'));
    const limited = new DailyRestClient({
      apiUrl: emu.apiUrl,
      apiKey,
      timeoutMs: 2_000,
      rateLimit: (method, path, priority, signal, leaseMs) =>
        limiter.acquire(rateClassOf(method, path), priority, { ...(signal ? { signal } : {}), leaseMs }),
    });
    const fastConfig = { ...config, daily: { ...config.daily, roomDeleteIntervalMs: 100 } };
    const MAX = 8;
    const rooms = createRoomService({ rest: limited, config: fastConfig, logger, maxBacklog: MAX });
    const names: string[] = [];
    for (let i = 0; i < 30; i++)
      names.push((await rest.createDialinRoom({ name: name(), displayName: 'A', expSec: exp(), numEndpoints: 1 })).name);
    const t0 = Date.now();
    let unsettled = 0;
    let peakUnsettled = 0;
    const released: Array<Promise<void>> = [];
    for (const n of names) {
      unsettled++;
      released.push(rooms.release(n).then(() => void unsettled--));
      await new Promise((r) => setTimeout(r, 50));
      peakUnsettled = Math.max(peakUnsettled, unsettled);
    }
    // Nothing beyond the bound is held: at most MAX rooms (and the one DELETE in flight) wait at once.
    expect(peakUnsettled).toBeLessThanOrEqual(MAX + 1);
    await Promise.all(released);
    const st = rooms.stats();
    expect(st.backlogPeak).toBeLessThanOrEqual(MAX);
    expect(st.backlog).toBe(0);
    expect(st.deleted + st.dropped + st.givenUp).toBe(names.length);
    expect(st.dropped).toBeGreaterThan(0);
    // What was not deleted is still at Daily, each with its exp: it expires by itself.
    const left = names.filter((n) => new Set(emu.snapshot().rooms.map((r) => r.name)).has(n));
    expect(left.length).toBe(st.dropped + st.givenUp);
    for (const n of left.slice(0, 3)) expect((await rest.getRoom(n)).config.exp).toBeGreaterThan(Date.now() / 1000);
    // The DELETEs sent wait for the class's grants: none is answered 429, ≈3 per 2 s go through.
    const d = deletes(t0);
    expect(d.filter((r) => r.status === 429)).toEqual([]);
    expect(st.deleted).toBeLessThanOrEqual(3 * Math.ceil((Date.now() - t0) / 2_000));
    emu.rateLimits.update({ classes: { 'room-delete': [{ requests: 50, windowMs: 30_000 }] } });
    for (const n of left) await rest.deleteRoom(n).catch(() => undefined);
    rooms.close();
  }, 60_000);

  it('shutdown: flush lets the queued deletions finish within its budget; close alone leaves them to their exp', async () => {
    const create = async () => (await rest.createDialinRoom({ name: name(), displayName: 'A', expSec: exp(), numEndpoints: 1 })).name;
    const at = (names: string[]) => names.filter((n) => emu.snapshot().rooms.some((r) => r.name === n));
    const flushed = createRoomService({ rest, config, logger });
    const a = [await create(), await create(), await create()];
    for (const n of a) void flushed.release(n);
    await flushed.flush(10_000);
    flushed.close();
    expect(at(a)).toEqual([]);
    // A budget shorter than the pacing (3 rooms, one DELETE per 500 ms): flush returns at its budget.
    const short = createRoomService({ rest, config, logger });
    const b = [await create(), await create(), await create()];
    for (const n of b) void short.release(n);
    const t0 = Date.now();
    await short.flush(200);
    expect(Date.now() - t0).toBeLessThan(1_000);
    short.close();
    expect(at(b).length).toBeGreaterThan(0);
    for (const n of at(b)) await rest.deleteRoom(n).catch(() => undefined);
  }, 30_000);
});
