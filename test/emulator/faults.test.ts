/**
 * Daily emulator: injected faults, rate limit, dialin-ready misbehaviour, the control API,
 * and a clean close(). Real HTTP and WebSocket on 127.0.0.1, nothing mocked.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { WebSocket } from 'ws';
import { EmulatorCallClient } from '../../src/emulator/client.js';
import { createEmulator, type Emulator } from '../../src/emulator/server.js';

const KEY = 'faults-key';
const NUMBER = '+15550002000';
const logger = pino({ level: 'silent' });

async function req(emu: Emulator, method: string, path: string, body?: unknown, auth = true) {
  const url = path.startsWith('/_emulator') ? `${emu.origin}${path}` : `${emu.apiUrl}${path}`;
  const res = await fetch(url, {
    method,
    headers: { ...(auth ? { authorization: `Bearer ${KEY}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : undefined };
}

async function sipRoom(emu: Emulator) {
  const room = await req(emu, 'POST', '/rooms', { properties: { sip: { display_name: 'c', sip_mode: 'dial-in', num_endpoints: 1 } } });
  const token = (await req(emu, 'POST', '/meeting-tokens', { properties: { room_name: room.json.name, is_owner: true } })).json
    .token as string;
  return { name: room.json.name as string, url: room.json.url as string, endpoint: room.json.config.sip_uri.endpoint as string, token };
}

describe('emulator faults', () => {
  let emu: Emulator;
  beforeAll(async () => {
    emu = await createEmulator({ apiKey: KEY, logger });
  });
  afterEach(() => emu.faults.clear());
  afterAll(async () => {
    await emu.close();
  });

  it('fails twice with 500 server-error, then succeeds; other methods are untouched', async () => {
    emu.faults.inject({ method: 'POST', path: '/rooms', status: 500, times: 2 });
    const a = await req(emu, 'POST', '/rooms', {});
    expect(a.status).toBe(500);
    expect(a.json).toEqual({ error: 'server-error', info: expect.any(String) });
    expect((await req(emu, 'GET', '/rooms')).status).toBe(200);
    expect((await req(emu, 'POST', '/rooms', {})).status).toBe(500);
    expect((await req(emu, 'POST', '/rooms', {})).status).toBe(200);
    expect(emu.faults.pending).toEqual([]);
  });

  it('answers 429 rate-limit-error with Retry-After', async () => {
    emu.faults.inject({ path: '/dialin/pinlessCallUpdate', status: 429, retryAfterSec: 2 });
    const r = await req(emu, 'POST', '/dialin/pinlessCallUpdate', { callId: 'c1', callDomain: 'd', sipUri: 'sip:x@y' });
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toBe('2');
    expect(r.json.error).toBe('rate-limit-error');
    // Used up: the next one reaches the handler (unknown call → 404).
    expect((await req(emu, 'POST', '/dialin/pinlessCallUpdate', { callId: 'c1', callDomain: 'd', sipUri: 'sip:x@y' })).status).toBe(404);
    const log = emu.requestLog.filter((e) => e.callId === 'c1').map((e) => e.status);
    expect(log).toEqual([429, 404]);
  });

  it('hangs before answering (delayMs), with or without a status', async () => {
    emu.faults.inject({ path: '/meeting-tokens', delayMs: 150 });
    const t0 = Date.now();
    expect((await req(emu, 'POST', '/meeting-tokens', { properties: {} })).status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    emu.faults.inject({ path: '/rooms', delayMs: 100, status: 503 });
    const t1 = Date.now();
    expect((await req(emu, 'GET', '/rooms/x')).status).toBe(503);
    expect(Date.now() - t1).toBeGreaterThanOrEqual(90);
  });

  it('applies a global rate limit per window', async () => {
    emu.faults.rateLimit = { requests: 3, windowMs: 1000 };
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await req(emu, 'GET', '/rooms')).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    const r = await req(emu, 'GET', '/rooms');
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    emu.faults.rateLimit = null;
    expect((await req(emu, 'GET', '/rooms')).status).toBe(200);
  });

  it('dialin-ready: twice, never, and extra delay', async () => {
    for (const [mode, expected] of [
      ['twice', 2],
      ['never', 0],
      ['normal', 1],
    ] as const) {
      emu.faults.dialinReady = mode;
      emu.faults.dialinReadyDelayMs = mode === 'normal' ? 120 : 0;
      const room = await sipRoom(emu);
      const c = new EmulatorCallClient({ apiUrl: emu.apiUrl, logger });
      const seen: number[] = [];
      c.on('dialin-ready', () => seen.push(Date.now()));
      const t0 = Date.now();
      await c.join({ roomUrl: room.url, token: room.token, userName: 'bot', timeoutMs: 2000 });
      // Wait for the expected events (generous under load), then a little more for unexpected ones.
      for (let waited = 0; seen.length < expected && waited < 3000; waited += 10) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 60));
      expect(seen.length, mode).toBe(expected);
      if (mode === 'normal') expect(seen[0]! - t0).toBeGreaterThanOrEqual(110);
      await c.close();
    }
  });

  it('is also controlled over HTTP (/_emulator/faults)', async () => {
    const set = await req(emu, 'POST', '/_emulator/faults', {
      inject: [{ path: '/rooms', status: 503, times: 2 }],
      dialinReady: 'never',
      dialinReadyDelayMs: 10,
      rateLimit: { requests: 100, windowMs: 1000 },
    });
    expect(set.status).toBe(200);
    expect(set.json).toMatchObject({
      pending: [{ path: '/rooms', status: 503, times: 2 }],
      dialinReady: 'never',
      rateLimit: { requests: 100 },
    });
    expect(emu.faults.dialinReady).toBe('never');
    expect((await req(emu, 'GET', '/rooms')).status).toBe(503);
    expect((await req(emu, 'GET', '/_emulator/faults')).json.pending[0].times).toBe(1);
    expect((await req(emu, 'POST', '/_emulator/faults', { inject: { path: 'rooms', status: 500 } })).status).toBe(400);
    const cleared = await req(emu, 'DELETE', '/_emulator/faults');
    expect(cleared.json).toEqual({ pending: [], dialinReady: 'normal', dialinReadyDelayMs: 0, rateLimit: null });
    expect((await req(emu, 'GET', '/rooms')).status).toBe(200);
  });
});

describe('emulator control API', () => {
  let emu: Emulator;
  let hook: Server;
  let hookUrl: string;
  beforeAll(async () => {
    hook = createServer((_q, s) => s.end('ok'));
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    hookUrl = `http://127.0.0.1:${(hook.address() as { port: number }).port}/hook`;
    emu = await createEmulator({ apiKey: KEY, logger });
    emu.setPinlessDialin([{ phone_number: NUMBER, room_creation_api: hookUrl }]);
  });
  afterAll(async () => {
    await emu.close();
    await new Promise((r) => hook.close(r));
  });

  it('places a call, streams its events, and hangs up on request', async () => {
    const placed = await req(emu, 'POST', '/_emulator/calls', { to: NUMBER, from: '+15551230000' });
    expect(placed.status).toBe(200);
    expect(placed.json).toMatchObject({ id: expect.any(String), callId: expect.any(String), state: 'held' });
    const ws = new WebSocket(`${emu.origin.replace('http', 'ws')}/_emulator/calls/${placed.json.id}/events`);
    const msgs: any[] = [];
    const closed = new Promise<void>((r) => ws.on('close', () => r()));
    ws.on('message', (d) => msgs.push(JSON.parse(String(d))));
    await new Promise((r) => ws.on('open', r));
    await new Promise((r) => setTimeout(r, 30));
    expect(msgs[0]).toMatchObject({ type: 'state', state: 'held' });
    expect(msgs.some((m) => m.type === 'transcript' && /on hold/.test(m.line.text))).toBe(true);
    // Cannot press on hold.
    expect((await req(emu, 'POST', `/_emulator/calls/${placed.json.id}/actions`, { press: '1' })).status).toBe(409);
    expect((await req(emu, 'POST', `/_emulator/calls/${placed.json.id}/actions`, { hangup: true })).json).toEqual({
      ok: true,
      state: 'ended',
    });
    await closed;
    expect(msgs.at(-1)).toEqual({ type: 'ended', reason: 'caller_hangup_on_hold' });
    const got = await req(emu, 'GET', `/_emulator/calls/${placed.json.id}`);
    expect(got.json).toMatchObject({ state: 'ended', reason: 'caller_hangup_on_hold', from: '+15551230000', webhook: { status: 200 } });
    expect((await req(emu, 'GET', '/_emulator/calls/nope')).status).toBe(404);
  });

  it('validates scripts and reports state', async () => {
    expect((await req(emu, 'POST', '/_emulator/calls', { to: NUMBER, script: [{ jump: 1 }] })).status).toBe(400);
    const ok = await req(emu, 'POST', '/_emulator/calls', { to: NUMBER, script: [{ wait: 10 }, { hangup: true }] });
    expect(ok.status).toBe(200);
    await new Promise((r) => setTimeout(r, 60));
    const state = await req(emu, 'GET', '/_emulator/state');
    expect(state.json.calls.find((c: { id: string }) => c.id === ok.json.id)).toMatchObject({
      state: 'ended',
      reason: 'caller_hangup_on_hold',
    });
    expect(state.json).toMatchObject({ rooms: [], sockets: 0 });
  });

  it('needs no auth on /_emulator but refuses unknown WebSocket paths', async () => {
    expect((await req(emu, 'GET', '/_emulator/state', undefined, false)).status).toBe(200);
    const ws = new WebSocket(`${emu.origin.replace('http', 'ws')}/elsewhere`);
    const err = await new Promise<Error>((r) => ws.on('error', r));
    expect(err.message).toMatch(/404/);
  });
});

describe('emulator close()', () => {
  it('closes http, websockets, timers and webhooks, and is idempotent', async () => {
    const count = (type: string) => process.getActiveResourcesInfo().filter((t) => t === type).length;
    const baseServers = count('TCPServerWrap');
    // A room_creation_api that never answers: the webhook stays in flight.
    const sockets = new Set<import('node:net').Socket>();
    const stuck = createServer(() => {});
    stuck.on('connection', (s) => sockets.add(s));
    await new Promise<void>((r) => stuck.listen(0, '127.0.0.1', r));
    const stuckUrl = `http://127.0.0.1:${(stuck.address() as { port: number }).port}/`;

    const emu = await createEmulator({ apiKey: KEY, logger, holdTimeoutMs: 60_000 });
    emu.setPinlessDialin([{ phone_number: NUMBER, room_creation_api: stuckUrl }]);
    const room = await sipRoom(emu);
    const client = new EmulatorCallClient({ apiUrl: emu.apiUrl, logger });
    const left: unknown[] = [];
    client.on('left-meeting', (p) => left.push(p));
    await client.join({ roomUrl: room.url, token: room.token, userName: 'bot', timeoutMs: 2000 });
    const call = emu.placeCall({ to: NUMBER, script: [{ waitFor: 'connected', timeoutMs: 30_000 }] });
    await new Promise((r) => setTimeout(r, 50));
    const before = emu.snapshot();
    expect(before.sockets).toBe(1);
    expect(before.clients).toBe(1);
    expect(before.webhooksInFlight).toBe(1);
    expect(before.timers).toBeGreaterThan(0);

    await Promise.all([emu.close(), emu.close()]);
    await emu.close();
    expect((await call.ended).reason).toBe('emulator_closed');
    const after = emu.snapshot();
    expect(after).toMatchObject({ clients: 0, sockets: 0, timers: 0, webhooksInFlight: 0 });
    await new Promise((r) => setTimeout(r, 50));
    expect(left).toHaveLength(1);
    await expect(client.sendDTMF({ sessionId: 'x', tones: '1' })).rejects.toMatchObject({ code: 'call_ended' });
    await client.close();
    await expect(fetch(`${emu.apiUrl}/rooms`)).rejects.toThrow();

    for (const s of sockets) s.destroy();
    await new Promise((r) => stuck.close(r));
    expect(count('TCPServerWrap')).toBe(baseServers);
  });
});
