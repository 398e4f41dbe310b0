/**
 * The typed Daily REST client against the real emulator over HTTP: each retry policy's behaviour,
 * the `sip:` scheme of pinlessCallUpdate, self-signed meeting tokens.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { normalizeSipUri } from '../../src/daily/sip.js';
import { DailyRestClient } from '../../src/daily/rest.js';
import { retryPolicies } from '../../src/daily/policies.js';
import { claimsFor, createTokenSource, signMeetingToken } from '../../src/daily/token.js';
import { DailyApiError } from '../../src/core/errors.js';
import { EmulatorCallClient } from '../../src/emulator/client.js';
import { createEmulator } from '../../src/emulator/server.js';
import type { Emulator } from '../../src/emulator/types.js';
import { createLogger } from '../../src/core/logger.js';

const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent', name: 'test' });
const apiKey = `test_${randomBytes(8).toString('hex')}`;
let emu: Emulator;
let rest: DailyRestClient;

const count = (method: string, path: string, sinceMs: number) =>
  emu.requestLog.filter((r) => r.method === method && (r.path === path || r.path.startsWith(`${path}/`)) && r.atMs >= sinceMs);
const roomName = () => `t-${randomBytes(5).toString('hex')}`;
const exp = () => Math.floor(Date.now() / 1000) + 600;

beforeAll(async () => {
  emu = await createEmulator({ host: '127.0.0.1', port: 0, apiKey, logger, holdTimeoutMs: 20_000 });
  rest = new DailyRestClient({ apiUrl: emu.apiUrl, apiKey, timeoutMs: 2_000 });
});
afterAll(async () => {
  await emu?.close();
});
afterEach(() => emu.faults.clear());

describe('retry policies', () => {
  it('the table: every policy has its statuses, backoff, per-attempt timeout and deadline; none retries 400 or 404', () => {
    const t = retryPolicies({ apiTimeoutMs: 5_000, pinlessUpdateTimeoutMs: 1_500, pinlessUpdateDeadlineMs: 9_000 });
    for (const p of Object.values(t)) {
      expect(p.retryOn).toContain(429);
      expect(p.retryOn).toContain(503);
      expect(p.retryOn).not.toContain(400);
      expect(p.retryOn).not.toContain(404);
      expect(p.deadlineMs).toBeGreaterThan(0);
      expect(p.maxDelayMs).toBeGreaterThanOrEqual(p.baseDelayMs);
    }
    expect(t.forward).toMatchObject({ attemptTimeoutMs: 1_500, deadlineMs: 9_000 });
    expect(t.create.attemptTimeoutMs).toBe(5_000);
  });

  it('create: 503 ×2 then success (3 POST /rooms)', async () => {
    const t0 = Date.now();
    emu.faults.inject({ method: 'POST', path: '/rooms', status: 503, times: 2 });
    const room = await rest.createDialinRoom({ name: roomName(), displayName: 'x', expSec: exp() });
    expect(room.config.sip_uri?.endpoint).toMatch(/^sip:/);
    expect(count('POST', '/rooms', t0)).toHaveLength(3);
  });

  it('create: a 429 with Retry-After is honoured (the retry waits at least that long)', async () => {
    const t0 = Date.now();
    emu.faults.inject({ method: 'POST', path: '/rooms', status: 429, times: 1, retryAfterSec: 1 });
    await rest.createDialinRoom({ name: roomName(), displayName: 'x', expSec: exp() });
    const [first, second] = count('POST', '/rooms', t0);
    expect(first?.status).toBe(429);
    expect(second?.status).toBe(200);
    expect(second!.atMs - first!.atMs).toBeGreaterThanOrEqual(950);
  });

  it('create: a Retry-After beyond the deadline is not waited for: the 429 is thrown at once', async () => {
    const t0 = Date.now();
    emu.faults.inject({ method: 'POST', path: '/rooms', status: 429, times: 1, retryAfterSec: 30 });
    const err = await rest.createDialinRoom({ name: roomName(), displayName: 'x', expSec: exp() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DailyApiError);
    expect((err as DailyApiError).status).toBe(429);
    expect((err as DailyApiError).retryAfterMs).toBe(30_000);
    expect(Date.now() - t0).toBeLessThan(3_000);
    expect(count('POST', '/rooms', t0)).toHaveLength(1);
  });

  it('create: a 400 is not retried and is not retryable', async () => {
    const t0 = Date.now();
    const err = await rest.createDialinRoom({ name: 'not a valid name!', displayName: 'x', expSec: exp() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DailyApiError);
    expect((err as DailyApiError).status).toBe(400);
    expect((err as DailyApiError).retryable).toBe(false);
    expect(count('POST', '/rooms', t0)).toHaveLength(1);
  });

  it('query: a 404 is not retried', async () => {
    const t0 = Date.now();
    const err = await rest.getRoom('no-such-room').catch((e: unknown) => e);
    expect((err as DailyApiError).status).toBe(404);
    expect(count('GET', '/rooms', t0)).toHaveLength(1);
  });

  it('cleanup: deleting a room that is gone (404) counts as deleted; 502 is retried', async () => {
    const t0 = Date.now();
    await rest.deleteRoom('no-such-room');
    const name = roomName();
    await rest.createDialinRoom({ name, displayName: 'x', expSec: exp() });
    emu.faults.inject({ method: 'DELETE', path: '/rooms', status: 502, times: 1 });
    await rest.deleteRoom(name);
    expect(count('DELETE', '/rooms', t0).map((r) => r.status)).toEqual([404, 502, 200]);
    expect(emu.snapshot().rooms.some((r) => r.name === name)).toBe(false);
  });

  it('query: listRooms returns the rooms, newest first, with total_count (start-up cleanup)', async () => {
    const a = roomName();
    const b = roomName();
    await rest.createDialinRoom({ name: a, displayName: 'x', expSec: exp() });
    await new Promise((r) => setTimeout(r, 5));
    await rest.createDialinRoom({ name: b, displayName: 'x', expSec: exp() });
    const page = await rest.listRooms({ limit: 100 });
    const names = page.data.map((r) => r.name);
    expect(names).toContain(a);
    expect(names.indexOf(b)).toBeLessThan(names.indexOf(a));
    expect(page.total_count).toBeGreaterThanOrEqual(2);
    expect((await rest.listRooms({ limit: 1 })).data).toHaveLength(1);
  });

  it('the deadline bounds the retries of a persistent 503 (attempts stop, the last error is thrown)', async () => {
    const fast = new DailyRestClient({
      apiUrl: emu.apiUrl,
      apiKey,
      timeoutMs: 1_000,
      policies: {
        query: { ...retryPolicies({ apiTimeoutMs: 1_000 }).query, deadlineMs: 1_200, baseDelayMs: 100, maxDelayMs: 300, maxAttempts: 100 },
      },
    });
    emu.faults.inject({ method: 'GET', path: '/rooms', status: 503, times: 1_000 });
    const t0 = Date.now();
    const err = await fast.getRoom('anything').catch((e: unknown) => e);
    const took = Date.now() - t0;
    expect((err as DailyApiError).status).toBe(503);
    expect(took).toBeLessThan(3_000);
    expect(count('GET', '/rooms', t0).length).toBeGreaterThan(1);
  });

  it('an aborted call stops retrying and is not retryable', async () => {
    emu.faults.inject({ method: 'GET', path: '/rooms', status: 503, times: 1_000 });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 150);
    const err = await rest.getRoom('anything', { signal: ac.signal }).catch((e: unknown) => e);
    expect(ac.signal.aborted).toBe(true);
    expect(err).toBeDefined();
  });
});

describe('pinlessCallUpdate and the sip: scheme', () => {
  it('normalises to exactly one sip: scheme', () => {
    expect(normalizeSipUri('123@x.sip.daily.co')).toBe('sip:123@x.sip.daily.co');
    expect(normalizeSipUri('sip:123@x.sip.daily.co')).toBe('sip:123@x.sip.daily.co');
    expect(normalizeSipUri('sip:sip:123@x.sip.daily.co')).toBe('sip:123@x.sip.daily.co');
    expect(normalizeSipUri(' SIP:123@x.sip.daily.co?x-daily_display_name=A ')).toBe('sip:123@x.sip.daily.co?x-daily_display_name=A');
    expect(normalizeSipUri('sips:123@x')).toBe('sips:123@x');
  });

  it.each([
    ['sip:x@y (as Daily returns it)', (u: string) => u],
    ['x@y (no scheme)', (u: string) => u.replace(/^sip:/, '')],
    ['sip:sip:x@y (doubled by a client)', (u: string) => `sip:${u}`],
  ])('connects a held call given %s', async (_name, form) => {
    emu.setPinlessDialin([{ phone_number: '+15550009999', room_creation_api: 'http://127.0.0.1:9/unreachable' }]);
    const call = emu.placeCall({ to: '+15550009999' });
    const room = await rest.createDialinRoom({ name: roomName(), displayName: 'x', expSec: exp() });
    const endpoint = room.config.sip_uri!.endpoint;
    const t0 = Date.now();
    await rest.pinlessCallUpdate({ callId: call.callId, callDomain: call.callDomain, sipUri: form(endpoint) });
    expect(count('POST', '/dialin/pinlessCallUpdate', t0).map((r) => r.status)).toEqual([200]);
    call.hangup();
  });

  it('forward: a 404 (the caller is gone) is not retried', async () => {
    const t0 = Date.now();
    const err = await rest.pinlessCallUpdate({ callId: 'gone', callDomain: emu.callDomain, sipUri: 'sip:1@x' }).catch((e: unknown) => e);
    expect((err as DailyApiError).status).toBe(404);
    expect(count('POST', '/dialin/pinlessCallUpdate', t0)).toHaveLength(1);
  });
});

/** An independent HS256 verifier (not our signer's code path). */
function verifyHs256(token: string, key: string): Record<string, unknown> | undefined {
  const [h, p, s] = token.split('.');
  if (!h || !p || !s) return undefined;
  const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as { alg?: string; typ?: string };
  if (header.alg !== 'HS256') return undefined;
  const mac = createHmac('sha256', Buffer.from(key, 'utf8')).update(`${h}.${p}`).digest();
  const given = Buffer.from(s, 'base64url');
  if (given.length !== mac.length || !timingSafeEqual(given, mac)) return undefined;
  return JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
}

describe('self-signed meeting tokens', () => {
  it("carry Daily's abbreviated claims and verify with the API key only", () => {
    const now = Date.now();
    const token = signMeetingToken(
      claimsFor({ roomName: 'room-1', userName: 'patchbay-bot', expSec: 2_000_000_000 }, 'dom-1', now),
      apiKey,
    );
    const claims = verifyHs256(token, apiKey);
    expect(claims).toEqual({ r: 'room-1', d: 'dom-1', u: 'patchbay-bot', o: true, iat: Math.floor(now / 1000), exp: 2_000_000_000 });
    expect(verifyHs256(token, 'another key')).toBeUndefined();
    const [h, , s] = token.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, r: 'room-2' })).toString('base64url')}.${s}`;
    expect(verifyHs256(forged, apiKey)).toBeUndefined();
  });

  it('rest mode makes a POST /meeting-tokens per token; self-signed mode (domain id given) makes no token request', async () => {
    const t0 = Date.now();
    const viaRest = createTokenSource({ rest, mode: 'rest', domainId: undefined, logger });
    await viaRest.mint({ roomName: 'r1', userName: 'b', expSec: exp() });
    // One token minted by one request (a 429 from the emulator's rate limits, retried, is not a second token).
    // The emulator logs a request once its answer is sent, a moment after the client has it.
    await expect.poll(() => count('POST', '/meeting-tokens', t0).filter((r) => r.status === 200).length, { timeout: 2_000 }).toBe(1);
    const t1 = Date.now();
    const signed = createTokenSource({ rest, mode: 'self-signed', domainId: 'dom-x', logger });
    expect(signed.mode).toBe('self-signed');
    const token = await signed.mint({ roomName: 'r1', userName: 'b', expSec: exp() });
    expect(verifyHs256(token, apiKey)).toMatchObject({ r: 'r1', d: 'dom-x' });
    // (Earlier tests' `auto` sources re-check with GET /meeting-tokens/:token now and then; no source here mints.)
    expect(emu.requestLog.filter((r) => r.atMs >= t1 && r.method === 'POST' && r.path.startsWith('/meeting-tokens'))).toHaveLength(0);
    viaRest.close();
    signed.close();
  });

  it('self-signed mode without DAILY_DOMAIN_ID reads domain_id from GET / once', async () => {
    const t0 = Date.now();
    const src = createTokenSource({ rest, mode: 'self-signed', domainId: undefined, logger });
    const a = await src.mint({ roomName: 'r1', userName: 'b', expSec: exp() });
    await src.mint({ roomName: 'r2', userName: 'b', expSec: exp() });
    const domain = await rest.getDomain();
    expect(verifyHs256(a, apiKey)).toMatchObject({ d: domain.domain_id });
    expect(count('GET', '/', t0).filter((r) => r.path === '/')).toHaveLength(2); // ours + the assertion's
    expect(count('POST', '/meeting-tokens', t0)).toHaveLength(0);
    src.close();
  });

  // The emulator verifies self-signed tokens as Daily documents them (docs/emulator.md).
  const probeToken = () =>
    rest.getDomain().then((d) => signMeetingToken(claimsFor({ roomName: 'probe', userName: 'b', expSec: exp() }, d.domain_id!), apiKey));
  const emulatorAccepts = async () =>
    rest
      .validateMeetingToken(await probeToken())
      .then(() => true)
      .catch(() => false);

  it('auto mode: self-signed when Daily (the emulator) accepts them', async () => {
    expect(await emulatorAccepts()).toBe(true);
    const src = createTokenSource({ rest, mode: 'auto', domainId: undefined, logger });
    await src.mint({ roomName: 'r1', userName: 'b', expSec: exp() });
    expect(src.mode).toBe('self-signed');
    src.close();
  });

  it('a self-signed token joins its room through the emulator; one signed with another key does not', async () => {
    const name = roomName();
    const room = await rest.createDialinRoom({ name, displayName: 'x', expSec: exp() });
    const d = (await rest.getDomain()).domain_id!;
    const client = new EmulatorCallClient({ apiUrl: emu.apiUrl, logger });
    const good = signMeetingToken(claimsFor({ roomName: name, userName: 'patchbay-bot', expSec: exp() }, d), apiKey);
    await expect(client.join({ roomUrl: room.url, token: good, userName: 'patchbay-bot', timeoutMs: 3_000 })).resolves.toBeDefined();
    await client.leave();
    const bad = new EmulatorCallClient({ apiUrl: emu.apiUrl, logger });
    const otherKey = signMeetingToken(claimsFor({ roomName: name, userName: 'patchbay-bot', expSec: exp() }, d), 'another key');
    await expect(bad.join({ roomUrl: room.url, token: otherKey, userName: 'patchbay-bot', timeoutMs: 3_000 })).rejects.toBeDefined();
    await bad.leave().catch(() => undefined);
  });
});
