/**
 * Daily emulator: REST (auth, errors, rooms, tokens, domain config) and joins with the
 * EmulatorCallClient. Real HTTP and WebSocket on 127.0.0.1, nothing mocked.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createEmulator, type Emulator } from '../../src/emulator/server.js';
import { EmulatorCallClient, audioDurationMs } from '../../src/emulator/client.js';
import { PatchbayError, TimeoutError } from '../../src/core/errors.js';

const KEY = 'test-key';
const logger = pino({ level: 'silent' });

async function api(emu: Emulator, method: string, path: string, body?: unknown, key: string | null = KEY) {
  const headers: Record<string, string> = {};
  if (key !== null) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${emu.apiUrl}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : undefined };
}

const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

describe('emulator REST', () => {
  let emu: Emulator;
  beforeAll(async () => {
    emu = await createEmulator({ apiKey: KEY, logger });
  });
  afterAll(async () => {
    await emu.close();
  });

  it('serves under /v1 on 127.0.0.1', () => {
    expect(emu.origin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(emu.apiUrl).toBe(`${emu.origin}/v1`);
  });

  it('refuses requests without a valid bearer key, with Daily error bodies (no header: 400, wrong key: 401, as Daily documents)', async () => {
    const none = await api(emu, 'GET', '/rooms', undefined, null);
    expect(none.status).toBe(400);
    expect(none.json).toEqual({ error: 'authorization-header-error', info: expect.any(String) });
    const wrong = await api(emu, 'GET', '/rooms', undefined, 'nope');
    expect(wrong.status).toBe(401);
    expect(wrong.json.error).toBe('authentication-error');
  });

  it('answers 404 not-found for unknown rooms and routes, 400 for bad JSON', async () => {
    const r = await api(emu, 'GET', '/rooms/does-not-exist');
    expect(r.status).toBe(404);
    expect(r.json).toEqual({ error: 'not-found', info: expect.stringContaining('does-not-exist') });
    expect((await api(emu, 'DELETE', '/rooms/does-not-exist')).status).toBe(404);
    const route = await api(emu, 'GET', '/nothing-here');
    expect(route.status).toBe(404);
    expect(route.json.error).toBe('not-found');
    expect((await api(emu, 'GET', '/nothing-here', undefined, null)).status).toBe(400);
    const bad = await api(emu, 'POST', '/rooms', '{"name": ');
    expect(bad.status).toBe(400);
    expect(bad.json.error).toBe('json-parsing-error');
  });

  it('creates a room with one SIP endpoint', async () => {
    const r = await api(emu, 'POST', '/rooms', {
      name: 'one-ep',
      privacy: 'private',
      properties: {
        exp: inAnHour(),
        eject_at_room_exp: true,
        sip: { display_name: 'caller', video: false, sip_mode: 'dial-in', num_endpoints: 1 },
      },
    });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({
      name: 'one-ep',
      privacy: 'private',
      url: `${emu.origin}/one-ep`,
      config: { sip: { sip_mode: 'dial-in', num_endpoints: 1 } },
    });
    expect(r.json.config.sip_uri.endpoint).toMatch(/^sip:\d+@emulator\.sip\.daily\.co$/);
    expect(r.json.config.sip_uri.extra_endpoints).toBeUndefined();
    const got = await api(emu, 'GET', '/rooms/one-ep');
    expect(got.json.config.sip_uri.endpoint).toBe(r.json.config.sip_uri.endpoint);
    expect(emu.snapshot().rooms.find((x) => x.name === 'one-ep')?.sipEndpoints).toHaveLength(1);
  });

  it('creates a room with two SIP endpoints (extra_endpoints)', async () => {
    const r = await api(emu, 'POST', '/rooms', { properties: { sip: { display_name: 'c', sip_mode: 'dial-in', num_endpoints: 2 } } });
    expect(r.status).toBe(200);
    expect(r.json.name).toMatch(/^[A-Za-z0-9]{20}$/);
    expect(r.json.config.sip_uri.extra_endpoints).toHaveLength(1);
    expect(r.json.config.sip_uri.extra_endpoints[0]).not.toBe(r.json.config.sip_uri.endpoint);
  });

  it('validates room properties like Daily', async () => {
    const cases: unknown[] = [
      { properties: { sip: { sip_mode: 'dial-out', display_name: 'x' } } },
      { properties: { sip: { sip_mode: 'dial-in', num_endpoints: 6 } } },
      { properties: { sip: { sip_mode: 'dial-in', display_name: 'x', colour: 'red' } } },
      { properties: { exp: Math.floor(Date.now() / 1000) - 10 } },
      { properties: { not_a_property: true } },
      { name: 'bad name!' },
      { name: 'one-ep' },
    ];
    for (const body of cases) {
      const r = await api(emu, 'POST', '/rooms', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json.error).toBe('invalid-request-error');
    }
  });

  it('lists and deletes rooms', async () => {
    await api(emu, 'POST', '/rooms', { name: 'to-delete' });
    const list = await api(emu, 'GET', '/rooms');
    expect(list.json.total_count).toBeGreaterThanOrEqual(1);
    expect(list.json.data.map((r: { name: string }) => r.name)).toContain('to-delete');
    const del = await api(emu, 'DELETE', '/rooms/to-delete');
    expect(del.json).toEqual({ deleted: true, name: 'to-delete' });
    expect((await api(emu, 'GET', '/rooms/to-delete')).status).toBe(404);
  });

  it('mints JWT-shaped meeting tokens and validates their properties', async () => {
    const t = await api(emu, 'POST', '/meeting-tokens', {
      properties: { room_name: 'one-ep', is_owner: true, user_name: 'bot', exp: inAnHour() },
    });
    expect(t.status).toBe(200);
    expect(t.json.token.split('.')).toHaveLength(3);
    const header = JSON.parse(Buffer.from(t.json.token.split('.')[0], 'base64url').toString());
    expect(header).toEqual({ alg: 'HS256', typ: 'JWT' });
    const inspected = await api(emu, 'GET', `/meeting-tokens/${t.json.token}`);
    expect(inspected.json).toMatchObject({ room_name: 'one-ep', is_owner: true, user_name: 'bot', exp: expect.any(Number) });
    const forged = `${t.json.token.slice(0, -4)}AAAA`;
    expect((await api(emu, 'GET', `/meeting-tokens/${forged}`)).status).toBe(400);
    expect((await api(emu, 'POST', '/meeting-tokens', { properties: { is_owner: 'yes' } })).status).toBe(400);
    expect((await api(emu, 'POST', '/meeting-tokens', {})).status).toBe(400);
  });

  it('configures pinless_dialin on the domain (the array replaces the old one) and domain-dialin-config', async () => {
    const set = await api(emu, 'POST', '/', {
      properties: { pinless_dialin: [{ phone_number: '+15550001111', room_creation_api: 'http://127.0.0.1:9/hook' }] },
    });
    expect(set.status).toBe(200);
    expect(set.json.config.pinless_dialin).toHaveLength(1);
    expect(set.json.config.pinless_dialin[0].sip_uri).toMatch(/^sip:/);
    const again = await api(emu, 'POST', '/', {
      properties: { pinless_dialin: [{ phone_number: '+15550002222', room_creation_api: 'http://127.0.0.1:9/hook' }] },
    });
    expect(again.json.config.pinless_dialin.map((e: { phone_number: string }) => e.phone_number)).toEqual(['+15550002222']);
    expect((await api(emu, 'GET', '/')).json.config.pinless_dialin).toHaveLength(1);
    const bad = await api(emu, 'POST', '/', { properties: { pinless_dialin: [{ phone_number: '+15550003333' }] } });
    expect(bad.status).toBe(400);

    const created = await api(emu, 'POST', '/domain-dialin-config', {
      type: 'pinless_dialin',
      phone_number: '+15550004444',
      room_creation_api: 'http://127.0.0.1:9/x',
    });
    expect(created.status).toBe(200);
    expect(created.json).toMatchObject({ id: expect.any(String), type: 'pinless_dialin', config: { phone_number: '+15550004444' } });
    const dup = await api(emu, 'POST', '/domain-dialin-config', {
      type: 'pinless_dialin',
      config: { phone_number: '+15550004444', room_creation_api: 'http://127.0.0.1:9/x' },
    });
    expect((await api(emu, 'POST', '/domain-dialin-config', { type: 'pin_dialin', phone_number: '+15550005555' })).status).toBe(400);
    expect(dup.status).toBe(400);
    const list = await api(emu, 'GET', '/domain-dialin-config');
    expect(list.json.total_count).toBe(2);
    const upd = await api(emu, 'PUT', `/domain-dialin-config/${created.json.id}`, { hold_music_url: 'http://127.0.0.1:9/m.mp3' });
    expect(upd.json.config).toMatchObject({ phone_number: '+15550004444', hold_music_url: 'http://127.0.0.1:9/m.mp3' });
    expect((await api(emu, 'DELETE', `/domain-dialin-config/${created.json.id}`)).status).toBe(200);
    expect((await api(emu, 'GET', `/domain-dialin-config/${created.json.id}`)).status).toBe(404);
    emu.setPinlessDialin([]);
  });
});

describe('emulator joins (token validation)', () => {
  let emu: Emulator;
  const clients: EmulatorCallClient[] = [];
  const client = () => {
    const c = new EmulatorCallClient({ apiUrl: emu.apiUrl, logger });
    clients.push(c);
    return c;
  };
  const token = async (properties: Record<string, unknown>) =>
    (await api(emu, 'POST', '/meeting-tokens', { properties })).json.token as string;

  beforeAll(async () => {
    emu = await createEmulator({ apiKey: KEY, logger });
    await api(emu, 'POST', '/rooms', { name: 'priv', privacy: 'private', properties: { exp: inAnHour() } });
    await api(emu, 'POST', '/rooms', { name: 'other', privacy: 'private' });
    await api(emu, 'POST', '/rooms', { name: 'pub' });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await emu.close();
  });

  const roomUrl = (n: string) => `${emu.origin}/${n}`;

  it('joins with a token for the room and sees itself as local', async () => {
    const c = client();
    const joinedEvents: unknown[] = [];
    c.on('joined-meeting', (p) => joinedEvents.push(p));
    const { localSessionId } = await c.join({
      roomUrl: roomUrl('priv'),
      token: await token({ room_name: 'priv', is_owner: true }),
      userName: 'bot',
      timeoutMs: 2000,
    });
    expect(localSessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(joinedEvents).toHaveLength(1);
    expect(emu.snapshot().rooms.find((r) => r.name === 'priv')?.participants).toEqual([
      { sessionId: localSessionId, userName: 'bot', isSip: false, owner: true },
    ]);
    await c.leave();
    await c.close();
    expect(emu.snapshot().rooms.find((r) => r.name === 'priv')?.participants).toEqual([]);
  });

  it('refuses a token for another room, an expired token, a forged token, and no token in a private room', async () => {
    const cases: Array<[string, string | undefined, string]> = [
      ['priv', await token({ room_name: 'other' }), 'join_invalid_token'],
      ['priv', await token({ room_name: 'priv', exp: Math.floor(Date.now() / 1000) - 5 }), 'join_exp_token'],
      ['priv', 'eyJhbGciOiJIUzI1NiJ9.eyJyIjoicHJpdiJ9.AAAA', 'join_invalid_token'],
      ['priv', undefined, 'join_not_allowed'],
      ['missing', undefined, 'join_no_room'],
    ];
    for (const [room, tok, code] of cases) {
      const c = client();
      const err = await c.join({ roomUrl: roomUrl(room), token: tok as string, userName: 'x', timeoutMs: 2000 }).catch((e: unknown) => e);
      expect(err, `${room} ${code}`).toBeInstanceOf(PatchbayError);
      expect((err as PatchbayError).code).toBe(code);
      expect((err as PatchbayError).retryable).toBe(false);
      await c.close();
    }
    // A public room needs no token.
    const c = client();
    await expect(c.join({ roomUrl: roomUrl('pub'), token: '', userName: 'x', timeoutMs: 2000 })).resolves.toMatchObject({
      localSessionId: expect.any(String),
    });
    await c.close();
  });

  it('can join again on the same client after a failed join', async () => {
    const c = client();
    await expect(c.join({ roomUrl: roomUrl('missing'), token: '', userName: 'x', timeoutMs: 2000 })).rejects.toMatchObject({
      code: 'join_no_room',
    });
    const left: unknown[] = [];
    c.on('left-meeting', (p) => left.push(p));
    const { localSessionId } = await c.join({ roomUrl: roomUrl('pub'), token: '', userName: 'x', timeoutMs: 2000 });
    await new Promise((r) => setTimeout(r, 30));
    expect(left).toEqual([]);
    expect(
      emu
        .snapshot()
        .rooms.find((r) => r.name === 'pub')
        ?.participants.map((p) => p.sessionId),
    ).toEqual([localSessionId]);
    await c.close();
  });

  it('honours the join timeout with a retryable TimeoutError', async () => {
    emu.setLatencies({ joinMs: 1_500 });
    try {
      const c = client();
      const t0 = Date.now();
      const err = await c.join({ roomUrl: roomUrl('pub'), token: '', userName: 'slow', timeoutMs: 100 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TimeoutError);
      expect((err as TimeoutError).retryable).toBe(true);
      expect(Date.now() - t0).toBeLessThan(1_000);
      await c.close();
    } finally {
      emu.setLatencies({ joinMs: 0 });
    }
  });

  it('rejects with a retryable error when the emulator is unreachable', async () => {
    const c = client();
    const err = await c.join({ roomUrl: 'http://127.0.0.1:9/priv', token: 'x', userName: 'x', timeoutMs: 2000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PatchbayError);
    expect((err as PatchbayError).retryable).toBe(true);
    await c.close();
  });

  it('rejects actions before join and after close; close is idempotent', async () => {
    const c = client();
    await expect(c.sendDTMF({ sessionId: 'x', tones: '1' })).rejects.toMatchObject({ code: 'not_joined' });
    await c.join({ roomUrl: roomUrl('pub'), token: '', userName: 'x', timeoutMs: 2000 });
    const left: unknown[] = [];
    c.on('left-meeting', (p) => left.push(p));
    await c.close();
    await c.close();
    expect(left).toEqual([{ reason: 'closed' }]);
    await expect(c.startTranscription()).rejects.toMatchObject({ code: 'call_ended' });
  });

  it('computes send-audio durations from PCM or text', () => {
    expect(audioDurationMs({ pcm: new Int16Array(16_000), sampleRate: 16_000 })).toBe(1000);
    expect(audioDurationMs({ pcm: new Int16Array(0), sampleRate: 16_000, text: 'hello' })).toBe(300);
    expect(audioDurationMs({ pcm: new Int16Array(0), sampleRate: 16_000, text: 'x'.repeat(10_000) })).toBe(30_000);
    expect(audioDurationMs({ pcm: new Int16Array(0), sampleRate: 16_000 })).toBe(0);
  });
});
