/**
 * Daily emulator: fidelity to Daily's documentation (issue 12, emulator side; issue 14 item 4).
 * Sources are listed in docs/emulator.md. Real HTTP and WebSocket on 127.0.0.1, nothing mocked.
 */
import { execFile, spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createServer, type Server } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { CallClientEvent } from '../../src/daily/call-client.js';
import { loadConfig } from '../../src/core/config.js';
import { EmulatorCallClient } from '../../src/emulator/client.js';
import { createEmulator, DAILY_RATE_LIMITS, type Emulator, type EmulatorOptions } from '../../src/emulator/server.js';

const KEY = 'fidelity-key';
const NUMBER = '+15550001000';
const logger = pino({ level: 'silent' });

async function api(emu: Emulator, method: string, path: string, body?: unknown, key: string | null = KEY) {
  const res = await fetch(`${emu.apiUrl}${path}`, {
    method,
    headers: {
      ...(key === null ? {} : { authorization: `Bearer ${key}` }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : undefined };
}

/** A JWT signed the way a third-party library (e.g. jsonwebtoken) signs one: HS256 with `key`. */
function jwt(claims: Record<string, unknown>, key: string): string {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${head}.${createHmac('sha256', key).update(head).digest('base64url')}`;
}

/** A `room_creation_api` that records webhook bodies. */
async function startHook() {
  const bodies: Array<Record<string, unknown>> = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      res.writeHead(200).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/dialin`,
    bodies,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

async function until<T>(f: () => T | undefined, timeoutMs = 3000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A joined bot in a fresh SIP room; its events recorded. */
async function startBot(emu: Emulator, properties: Record<string, unknown> = {}) {
  const room = await api(emu, 'POST', '/rooms', {
    privacy: 'private',
    properties: { sip: { sip_mode: 'dial-in', display_name: 'room-name' }, ...properties },
  });
  expect(room.status).toBe(200);
  const token = (await api(emu, 'POST', '/meeting-tokens', { properties: { room_name: room.json.name, is_owner: true } })).json.token;
  const client = new EmulatorCallClient({ apiUrl: emu.apiUrl, logger });
  const events: Array<{ name: CallClientEvent; payload: any }> = [];
  for (const name of ['dialin-ready', 'participant-joined', 'left-meeting'] as CallClientEvent[])
    client.on(name, (payload) => events.push({ name, payload }));
  await client.join({ roomUrl: room.json.url, token, userName: 'bot', timeoutMs: 3000 });
  const endpoint: string = room.json.config.sip_uri.endpoint;
  return { room: room.json, client, events, endpoint, ready: () => until(() => events.find((e) => e.name === 'dialin-ready')) };
}

describe('emulator fidelity', () => {
  let emu: Emulator;
  let hook: Awaited<ReturnType<typeof startHook>>;
  const clients: EmulatorCallClient[] = [];
  const start = async (o: Partial<EmulatorOptions> = {}) => {
    emu = await createEmulator({ apiKey: KEY, logger, ...o });
    emu.setPinlessDialin([{ phone_number: NUMBER, room_creation_api: hook.url }]);
    return emu;
  };

  beforeAll(async () => {
    hook = await startHook();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await emu?.close();
  });
  afterAll(async () => {
    await hook.close();
  });

  describe('properties.sip (Daily: sip_mode, display_name, video, num_endpoints, codecs, provider)', () => {
    it('accepts provider daily and signalwire and the documented codecs; provider daily puts endpoints on <domain>.sip-us.daily.co', async () => {
      await start({ rateLimits: false });
      const daily = await api(emu, 'POST', '/rooms', {
        properties: { sip: { sip_mode: 'dial-in', display_name: 'x', provider: 'daily', codecs: { audio: ['OPUS', 'PCMU'] } } },
      });
      expect(daily.status).toBe(200);
      expect(daily.json.config.sip).toMatchObject({ provider: 'daily', codecs: { audio: ['OPUS', 'PCMU'] } });
      expect(daily.json.config.sip_uri.endpoint).toMatch(/^sip:\d+@emulator\.sip-us\.daily\.co$/);
      const sw = await api(emu, 'POST', '/rooms', {
        properties: { sip: { sip_mode: 'dial-in', provider: 'signalwire', video: true, codecs: { video: ['VP8', 'H264'] } } },
      });
      expect(sw.status).toBe(200);
      expect(sw.json.config.sip_uri.endpoint).toMatch(/^sip:\d+@emulator\.sip\.daily\.co$/);
    });

    it('still answers 400 for wrong types and unknown values', async () => {
      await start({ rateLimits: false });
      const bad = [
        { provider: 5 },
        { provider: 'twilio' },
        { codecs: 'OPUS' },
        { codecs: { audio: ['MP3'] } },
        { codecs: { audio: 'OPUS' } },
        { codecs: { data: ['OPUS'] } },
        { display_name: 7 },
        { video: 'yes' },
        { num_endpoints: 6 },
        { colour: 'red' },
      ];
      for (const extra of bad) {
        const r = await api(emu, 'POST', '/rooms', { properties: { sip: { sip_mode: 'dial-in', ...extra } } });
        expect(r.status, JSON.stringify(extra)).toBe(400);
        expect(r.json.error).toBe('invalid-request-error');
      }
    });

    it('has no display_name length limit (Daily documents none)', async () => {
      await start({ rateLimits: false });
      const long = 'A caller with a very long name '.repeat(10);
      const r = await api(emu, 'POST', '/rooms', { properties: { sip: { sip_mode: 'dial-in', display_name: long } } });
      expect(r.status).toBe(200);
      expect(r.json.config.sip.display_name).toBe(long);
    });
  });

  describe('self-signed meeting tokens (HS256 with the API key, Daily claim names)', () => {
    const join = async (roomUrl: string, token: string) => {
      const client = new EmulatorCallClient({ apiUrl: emu.apiUrl, logger });
      clients.push(client);
      return client.join({ roomUrl, token, userName: 'bot', timeoutMs: 3000 }).then(
        () => 'joined',
        (err: { code?: string }) => err.code ?? 'error',
      );
    };

    it('accepts a token the service signs itself, with r, d, o, u, ud, iat, exp', async () => {
      await start({ rateLimits: false });
      const domain = (await api(emu, 'GET', '/')).json;
      const room = (await api(emu, 'POST', '/rooms', { privacy: 'private' })).json;
      const now = Math.floor(Date.now() / 1000);
      const token = jwt({ r: room.name, d: domain.domain_id, o: true, u: 'Bot', ud: 'bot-1', iat: now, exp: now + 60 }, KEY);
      expect(await join(room.url, token)).toBe('joined');
      const seen = await api(emu, 'GET', `/meeting-tokens/${token}`);
      expect(seen.status).toBe(200);
      expect(seen.json).toMatchObject({ room_name: room.name, is_owner: true, user_name: 'Bot', user_id: 'bot-1', exp: now + 60 });
      // The owner claim is honoured: an owner-only action works.
      const state = emu.snapshot().rooms.find((r) => r.name === room.name)!;
      expect(state.participants[0]).toMatchObject({ owner: true, userName: 'bot' });
    });

    it('signs REST-made tokens with the API key too (a third party can verify them)', async () => {
      await start({ rateLimits: false });
      const { token } = (
        await api(emu, 'POST', '/meeting-tokens', {
          properties: { room_name: 'r1', user_id: 'u1', exp: Math.floor(Date.now() / 1000) + 60 },
        })
      ).json;
      const [h, b, sig] = token.split('.');
      expect(createHmac('sha256', KEY).update(`${h}.${b}`).digest('base64url')).toBe(sig);
      expect(JSON.parse(Buffer.from(b, 'base64url').toString())).toMatchObject({
        r: 'r1',
        ud: 'u1',
        d: expect.any(String),
        iat: expect.any(Number),
      });
    });

    it('refuses a token signed with another key, expired, for another room, without the domain id, or for another domain', async () => {
      await start({ rateLimits: false });
      const domainId = (await api(emu, 'GET', '/')).json.domain_id;
      const room = (await api(emu, 'POST', '/rooms', { privacy: 'private' })).json;
      const now = Math.floor(Date.now() / 1000);
      const base = { r: room.name, d: domainId, iat: now, exp: now + 60 };
      expect(await join(room.url, jwt(base, 'another-key'))).toBe('join_invalid_token');
      expect(await join(room.url, jwt({ ...base, exp: now - 5 }, KEY))).toBe('join_exp_token');
      expect(await join(room.url, jwt({ ...base, r: 'another-room' }, KEY))).toBe('join_invalid_token');
      expect(await join(room.url, jwt({ r: room.name, iat: now }, KEY))).toBe('join_invalid_token');
      expect(await join(room.url, jwt({ ...base, d: '00000000-0000-0000-0000-000000000000' }, KEY))).toBe('join_invalid_token');
      expect(await join(room.url, jwt({ ...base, exp: 'soon' }, KEY))).toBe('join_invalid_token');
      expect((await api(emu, 'GET', `/meeting-tokens/${jwt(base, 'another-key')}`)).status).toBe(400);
    });
  });

  describe('authentication (Daily: no header → 400 authorization-header-error, bad key → 401 authentication-error)', () => {
    it('answers like the docs', async () => {
      await start();
      const none = await api(emu, 'GET', '/rooms', undefined, null);
      expect(none.status).toBe(400);
      expect(none.json.error).toBe('authorization-header-error');
      const malformed = await fetch(`${emu.apiUrl}/rooms`, { headers: { authorization: 'Basic abc' } });
      expect(malformed.status).toBe(400);
      const wrong = await api(emu, 'GET', '/rooms', undefined, 'not-the-key');
      expect(wrong.status).toBe(401);
      expect(wrong.json.error).toBe('authentication-error');
    });
  });

  describe("Daily's rate limits, on by default", () => {
    it('most endpoints: 100 requests per 5 s domain-wide, then 429 rate-limit-error (no Retry-After: Daily documents none)', async () => {
      await start();
      expect(emu.rateLimits.enabled).toBe(true);
      expect(DAILY_RATE_LIMITS.default).toEqual([{ requests: 100, windowMs: 5000 }]);
      const t0 = Date.now();
      const statuses = await Promise.all(Array.from({ length: 110 }, () => api(emu, 'GET', '/rooms')));
      const elapsedMs = Date.now() - t0;
      const ok = statuses.filter((r) => r.status === 200).length;
      const limited = statuses.filter((r) => r.status === 429);
      // Within one 5 s window exactly 100 pass (a very slow machine may let the window slide).
      if (elapsedMs < 4_500) expect(ok).toBe(100);
      expect(ok + limited.length).toBe(110);
      expect(limited.length).toBeGreaterThan(0);
      expect(limited[0]!.json).toEqual({ error: 'rate-limit-error', info: expect.any(String) });
      expect(limited[0]!.headers.get('retry-after')).toBeNull();
      // Unauthenticated requests are not the domain's: they are refused for what they are.
      expect((await api(emu, 'GET', '/rooms', undefined, null)).status).toBe(400);
      expect(emu.requestLog.filter((e) => e.status === 429)).toHaveLength(limited.length);
    });

    it('DELETE /rooms/:name has its own, stricter class (50 per 30 s); other endpoints are unaffected', async () => {
      await start();
      const deletes = await Promise.all(Array.from({ length: 55 }, (_, i) => api(emu, 'DELETE', `/rooms/nope-${i}`)));
      expect(deletes.filter((r) => r.status === 404)).toHaveLength(50);
      expect(deletes.filter((r) => r.status === 429)).toHaveLength(5);
      expect((await api(emu, 'GET', '/rooms')).status).toBe(200);
    });

    it('starting a dial-out or recording is limited to 5 per 5 s', async () => {
      await start();
      const starts = await Promise.all(Array.from({ length: 7 }, () => api(emu, 'POST', '/rooms/r/dialOut/start', {})));
      expect(starts.filter((r) => r.status === 429)).toHaveLength(2);
    });

    it('npm run emulator enforces them unless --no-rate-limits (real child processes)', async () => {
      const main = fileURLToPath(new URL('../../src/emulator/main.ts', import.meta.url));
      const enabledIn = async (args: string[]) => {
        const child = spawn(process.execPath, ['--import', 'tsx', main, '--port', '0', '--log-level', 'silent', ...args], {
          env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        try {
          let out = '';
          child.stdout.on('data', (d: Buffer) => (out += d.toString()));
          const origin = await until(() => /control API\s+(http:\/\/\S+)\/_emulator/.exec(out)?.[1], 30_000);
          const res = (await (await fetch(`${origin}/_emulator/rate-limits`)).json()) as { enabled: boolean; scope: string };
          return { ...res, printed: /rate limits\s+(.*)/.exec(out)?.[1] };
        } finally {
          child.kill('SIGTERM');
          await new Promise((r) => child.once('exit', r));
        }
      };
      expect(await enabledIn([])).toMatchObject({ enabled: true, scope: 'domain', printed: "Daily's, domain-wide" });
      expect(await enabledIn(['--no-rate-limits'])).toMatchObject({ enabled: false, printed: 'off' });
    }, 90_000);

    it('EMULATOR_RATE_LIMITS: on unless set to false (the embedded emulator of npm start)', () => {
      expect(loadConfig({}).emulator.rateLimits).toBe(true);
      expect(loadConfig({ EMULATOR_RATE_LIMITS: 'false' }).emulator.rateLimits).toBe(false);
    });

    it('can be turned off (option, control API) and reconfigured; they are domain-wide by default', async () => {
      await start({ rateLimits: false });
      const many = await Promise.all(Array.from({ length: 150 }, () => api(emu, 'GET', '/rooms')));
      expect(many.every((r) => r.status === 200)).toBe(true);
      const put = await fetch(`${emu.origin}/_emulator/rate-limits`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ enabled: true, classes: { default: [{ requests: 3, windowMs: 60_000 }] } }),
      });
      expect(put.status).toBe(200);
      expect(await put.json()).toMatchObject({ enabled: true, scope: 'domain' });
      const after = await Promise.all(Array.from({ length: 5 }, () => api(emu, 'GET', '/rooms')));
      expect(after.filter((r) => r.status === 429)).toHaveLength(2);
      const bad = await fetch(`${emu.origin}/_emulator/rate-limits`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: '{"enabled":"no"}',
      });
      expect(bad.status).toBe(400);
      emu.rateLimits.update({ enabled: false });
      expect((await api(emu, 'GET', '/rooms')).status).toBe(200);
    });
  });

  describe('faults vocabulary (one TypeBox definition validates the control API)', () => {
    it('refuses bodies the schema refuses, applies the rest', async () => {
      await start({ rateLimits: false });
      const post = (body: unknown) =>
        fetch(`${emu.origin}/_emulator/faults`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
      for (const bad of [
        { inject: { path: 'rooms', status: 503 } },
        { inject: { path: '/rooms', status: 99 } },
        { inject: { path: '/rooms', times: 0 } },
        { dialinReady: 'sometimes' },
        { rateLimit: { requests: 1 } },
      ]) {
        const r = await post(bad);
        expect(r.status, JSON.stringify(bad)).toBe(400);
        expect(((await r.json()) as { error: string }).error).toBe('invalid-request-error');
      }
      expect(emu.faults.pending).toEqual([]);
      const ok = await post({ inject: [{ path: '/rooms', status: 503, times: 2 }], dialinReady: 'twice', dialinReadyDelayMs: 5 });
      expect(ok.status).toBe(200);
      expect(emu.faults.pending).toEqual([{ path: '/rooms', status: 503, times: 2 }]);
      expect(emu.faults.dialinReady).toBe('twice');
    });
  });

  describe('withheld caller IDs', () => {
    it('sends each withheld form in the webhook From (absent: no From at all)', async () => {
      await start({ rateLimits: false });
      const expected: Record<string, string | undefined> = {
        anonymous: 'anonymous',
        Anonymous: 'Anonymous',
        restricted: 'restricted',
        unavailable: 'unavailable',
        empty: '',
        'sip-anonymous': 'sip:anonymous@anonymous.invalid',
        absent: undefined,
      };
      for (const [style, from] of Object.entries(expected)) {
        const n = hook.bodies.length;
        const call = emu.placeCall({ to: NUMBER, withheld: style as never });
        const body = await until(() => hook.bodies[n]);
        expect(body.callId).toBe(call.callId);
        if (from === undefined) expect('From' in body).toBe(false);
        else expect(body.From).toBe(from);
        call.hangup();
      }
    });

    it('npm run call -- --withheld places one (a real child process)', async () => {
      await start();
      const n = hook.bodies.length;
      const cli = fileURLToPath(new URL('../../src/emulator/cli.ts', import.meta.url));
      const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' };
      const run = await new Promise<{ code: number; stdout: string }>((resolve) => {
        execFile(
          process.execPath,
          ['--import', 'tsx', cli, '--to', NUMBER, '--withheld', 'sip-anonymous', '--emulator', emu.origin, '--timeout-ms', '500'],
          { env, timeout: 60_000 },
          (err, stdout) => resolve({ code: err ? Number((err as { code?: unknown }).code ?? 99) : 0, stdout: String(stdout) }),
        );
      });
      expect(run.stdout).toContain('withheld');
      expect(run.code).toBe(1); // nobody answered: never connected
      const body = await until(() => hook.bodies[n]);
      expect(body.From).toBe('sip:anonymous@anonymous.invalid');
    }, 90_000);

    it('the control API places them too (withheld, or any from string, "" included)', async () => {
      await start({ rateLimits: false });
      const post = (body: unknown) =>
        fetch(`${emu.origin}/_emulator/calls`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
      const n = hook.bodies.length;
      expect((await post({ to: NUMBER, withheld: 'anonymous' })).status).toBe(200);
      expect((await post({ to: NUMBER, from: '' })).status).toBe(200);
      expect((await post({ to: NUMBER, withheld: 'nobody' })).status).toBe(400);
      await until(() => hook.bodies.length >= n + 2);
      expect(
        hook.bodies
          .slice(n)
          .map((b) => b.From)
          .sort(),
      ).toEqual(['', 'anonymous']);
    });
  });

  it("the request log stamps a request's arrival on the caller's clock: never before a Date.now() taken just before sending it", async () => {
    await start({ rateLimits: false });
    const early: number[] = [];
    for (let i = 0; i < 300; i++) {
      const t0 = Date.now();
      await api(emu, 'GET', '/');
      const e = emu.requestLog.at(-1)!;
      if (e.atMs < t0) early.push(t0 - e.atMs);
    }
    expect(early).toEqual([]);
  });

  describe('room presence (GET /rooms/:name/presence; Daily: a snapshot, up to 15 s behind)', () => {
    it("lists the room's participants with Daily's fields, filters by userName, and is 404 for a room that does not exist", async () => {
      await start({ rateLimits: false });
      const bot = await startBot(emu);
      clients.push(bot.client);
      const p = await api(emu, 'GET', `/rooms/${bot.room.name}/presence`);
      expect(p.status).toBe(200);
      expect(p.json.total_count).toBe(1);
      expect(p.json.data[0]).toMatchObject({ room: bot.room.name, userName: 'bot' });
      for (const k of ['id', 'userId', 'joinTime']) expect(typeof p.json.data[0][k]).toBe('string');
      expect(typeof p.json.data[0].duration).toBe('number');
      expect((await api(emu, 'GET', `/rooms/${bot.room.name}/presence?userName=someone-else`)).json).toEqual({ total_count: 0, data: [] });
      expect((await api(emu, 'GET', `/rooms/${bot.room.name}/presence?userName=bot`)).json.total_count).toBe(1);
      expect((await api(emu, 'GET', '/rooms/no-such-room/presence')).status).toBe(404);
    });

    it('trails the room by presenceLagMs: one who left is still listed, one who just joined is not yet', async () => {
      await start({ rateLimits: false, latencies: { presenceLagMs: 600 } });
      const bot = await startBot(emu);
      clients.push(bot.client);
      const names = async () =>
        ((await api(emu, 'GET', `/rooms/${bot.room.name}/presence`)).json.data as Array<{ userName: string }>).map((x) => x.userName);
      expect(await names()).toEqual([]);
      await new Promise((r) => setTimeout(r, 700));
      expect(await names()).toEqual(['bot']);
      // A second bot joins and the first leaves: for a moment presence still shows the room as it was.
      const token = (await api(emu, 'POST', '/meeting-tokens', { properties: { room_name: bot.room.name } })).json.token;
      const second = new EmulatorCallClient({ apiUrl: emu.apiUrl, logger });
      clients.push(second);
      await second.join({ roomUrl: bot.room.url, token, userName: 'second', timeoutMs: 3000 });
      await bot.client.leave();
      expect(await names()).toEqual(['bot']);
      await new Promise((r) => setTimeout(r, 700));
      expect(await names()).toEqual(['second']);
    });
  });

  describe('SIP URIs: the sip: scheme, x-daily_display_name, endpoint lifetime', () => {
    const held = async () => {
      const n = hook.bodies.length;
      const call = emu.placeCall({ to: NUMBER, from: '+15557654321' });
      await until(() => hook.bodies[n]);
      return call;
    };
    const update = (call: { callId: string; callDomain: string }, sipUri: string) =>
      api(emu, 'POST', '/dialin/pinlessCallUpdate', { callId: call.callId, callDomain: call.callDomain, sipUri });

    it('returns endpoints with the sip: scheme; an update matches it case-insensitively; sip:sip: and a bare user@host are 404', async () => {
      await start({ rateLimits: false });
      const bot = await startBot(emu);
      clients.push(bot.client);
      expect(bot.endpoint).toMatch(/^sip:/);
      await bot.ready();
      const call = await held();
      expect((await update(call, `sip:${bot.endpoint}`)).status).toBe(404);
      expect((await update(call, bot.endpoint.slice(4))).status).toBe(404);
      expect(call.state).toBe('held');
      expect((await update(call, bot.endpoint.toUpperCase())).status).toBe(200);
      await until(() => call.state === 'connected');
    });

    it('honours x-daily_display_name on the SIP URI (URL-encoded), else the room display_name', async () => {
      await start({ rateLimits: false });
      const bot = await startBot(emu);
      clients.push(bot.client);
      await bot.ready();
      const call = await held();
      expect((await update(call, `${bot.endpoint}?x-daily_display_name=${encodeURIComponent('Ada Lovelace & Co')}`)).status).toBe(200);
      const joined = await until(() => bot.events.find((e) => e.name === 'participant-joined' && e.payload.participant.isSip));
      expect(joined.payload.participant.userName).toBe('Ada Lovelace & Co');
      call.hangup();
      const second = await held();
      expect((await update(second, bot.endpoint)).status).toBe(200);
      const again = await until(() => bot.events.filter((e) => e.name === 'participant-joined' && e.payload.participant.isSip)[1]);
      expect(again.payload.participant.userName).toBe('room-name');
    });

    it('a ready endpoint stays ready as long as the session lasts (a later call still connects)', async () => {
      await start({ rateLimits: false });
      const bot = await startBot(emu);
      clients.push(bot.client);
      await bot.ready();
      await new Promise((r) => setTimeout(r, 300));
      expect(emu.snapshot().rooms[0]!.sipEndpoints[0]!.ready).toBe(true);
      const call = await held();
      expect((await update(call, bot.endpoint)).status).toBe(200);
      await until(() => call.state === 'connected');
    });

    it('room exp with eject_at_room_exp ejects the bot and the endpoint is no longer ready: an update then drops the call', async () => {
      await start({ rateLimits: false });
      // At least 1 s ahead (exp is whole seconds): the bot must join before it.
      const bot = await startBot(emu, { exp: Math.ceil(Date.now() / 1000) + 1, eject_at_room_exp: true });
      clients.push(bot.client);
      await bot.ready();
      const left = await until(() => bot.events.find((e) => e.name === 'left-meeting'), 5000);
      expect(left.payload.reason).toBe('exp-eject');
      expect(emu.snapshot().rooms[0]!.sipEndpoints[0]!.ready).toBe(false);
      const call = await held();
      expect((await update(call, bot.endpoint)).status).toBe(200);
      expect((await call.ended).reason).toBe('forwarded_before_ready');
    });

    it('an update to an endpoint whose session ended (the bot left) is accepted and the call drops, as Daily documents for an endpoint not ready', async () => {
      await start({ rateLimits: false });
      const bot = await startBot(emu);
      clients.push(bot.client);
      await bot.ready();
      await bot.client.leave();
      const call = await held();
      expect((await update(call, bot.endpoint)).status).toBe(200);
      expect((await call.ended).reason).toBe('forwarded_before_ready');
    });
  });
});
