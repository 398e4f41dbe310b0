/**
 * Daily emulator: pinless dial-in calls end to end, driven by the EmulatorCallClient as the bot
 * and a tiny `room_creation_api` server. Real HTTP and WebSocket on 127.0.0.1, nothing mocked.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { CallClientEvent, CallClientEventMap } from '../../src/daily/call-client.js';
import { EmulatorCallClient } from '../../src/emulator/client.js';
import { createEmulator, type Emulator } from '../../src/emulator/server.js';

const KEY = 'calls-key';
const NUMBER = '+15550001000';
const SECRET = randomBytes(32).toString('base64');
const logger = pino({ level: 'silent' });

async function api(emu: Emulator, method: string, path: string, body?: unknown) {
  const res = await fetch(`${emu.apiUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : undefined };
}

interface HookRequest {
  headers: IncomingHttpHeaders;
  raw: string;
  body: { To: string; From: string; callId: string; callDomain: string; sipHeaders?: Record<string, string> };
}

/** A fake `room_creation_api`: records every webhook and answers 200. */
async function startHook() {
  const requests: HookRequest[] = [];
  const waiters: Array<(r: HookRequest) => void> = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const r: HookRequest = { headers: req.headers, raw, body: JSON.parse(raw) };
      requests.push(r);
      waiters.shift()?.(r);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address() as { port: number };
  let seen = 0;
  return {
    url: `http://127.0.0.1:${addr.port}/dialin`,
    requests,
    /** The next webhook not yet returned by next(). */
    next(timeoutMs = 2000): Promise<HookRequest> {
      const have = requests[seen];
      if (have) {
        seen++;
        return Promise.resolve(have);
      }
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no webhook')), timeoutMs);
        waiters.push((r) => {
          clearTimeout(t);
          seen++;
          resolve(r);
        });
      });
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const ALL_EVENTS: CallClientEvent[] = [
  'joined-meeting',
  'dialin-ready',
  'dialin-connected',
  'dialin-stopped',
  'dialin-error',
  'participant-joined',
  'participant-left',
  'dtmf-event',
  'transcription-message',
  'app-message',
  'error',
  'left-meeting',
];

/** A bot: a room with SIP, an owner token, a joined EmulatorCallClient and its recorded events. */
async function startBot(emu: Emulator, o: { numEndpoints?: number; name?: string } = {}) {
  const room = await api(emu, 'POST', '/rooms', {
    ...(o.name ? { name: o.name } : {}),
    privacy: 'private',
    properties: {
      exp: Math.floor(Date.now() / 1000) + 600,
      sip: { display_name: 'caller', video: false, sip_mode: 'dial-in', num_endpoints: o.numEndpoints ?? 1 },
    },
  });
  expect(room.status).toBe(200);
  const token = (await api(emu, 'POST', '/meeting-tokens', { properties: { room_name: room.json.name, is_owner: true, user_name: 'bot' } }))
    .json.token;
  const client = new EmulatorCallClient({ apiUrl: emu.apiUrl, logger });
  const events: Array<{ name: CallClientEvent; payload: any; at: number }> = [];
  const listeners: Array<() => void> = [];
  for (const name of ALL_EVENTS) {
    client.on(name, (payload) => {
      events.push({ name, payload, at: Date.now() });
      for (const l of [...listeners]) l();
    });
  }
  const consumed = new Set<number>();
  /** The first unconsumed event `name` matching `pred` (already received or coming). */
  function next<E extends CallClientEvent>(
    name: E,
    pred: (p: CallClientEventMap[E]) => boolean = () => true,
    timeoutMs = 2000,
  ): Promise<CallClientEventMap[E]> {
    const find = () => events.findIndex((e, i) => !consumed.has(i) && e.name === name && pred(e.payload));
    return new Promise((resolve, reject) => {
      const check = () => {
        const i = find();
        if (i < 0) return false;
        consumed.add(i);
        resolve(events[i]!.payload);
        return true;
      };
      if (check()) return;
      const l = () => {
        if (check()) done();
      };
      const t = setTimeout(() => {
        done();
        reject(new Error(`no ${name} event within ${timeoutMs} ms; got ${events.map((e) => e.name).join(', ')}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(t);
        listeners.splice(listeners.indexOf(l), 1);
      };
      listeners.push(l);
    });
  }
  const { localSessionId } = await client.join({ roomUrl: room.json.url, token, userName: 'bot', timeoutMs: 2000 });
  return {
    client,
    events,
    next,
    localSessionId,
    roomName: room.json.name as string,
    endpoint: room.json.config.sip_uri.endpoint as string,
    extra: (room.json.config.sip_uri.extra_endpoints ?? []) as string[],
    count: (name: CallClientEvent) => events.filter((e) => e.name === name).length,
  };
}

function verifySignature(h: HookRequest, secret: string): boolean {
  const ts = h.headers['x-pinless-timestamp'] as string;
  const expected = createHmac('sha256', Buffer.from(secret, 'base64')).update(`${ts}.${h.raw}`).digest('base64');
  return expected === h.headers['x-pinless-signature'];
}

describe('emulator pinless dial-in', () => {
  let emu: Emulator;
  let hook: Awaited<ReturnType<typeof startHook>>;
  const bots: Array<{ client: EmulatorCallClient }> = [];
  const bot = async (o?: Parameters<typeof startBot>[1]) => {
    const b = await startBot(emu, o);
    bots.push(b);
    return b;
  };

  beforeAll(async () => {
    hook = await startHook();
    emu = await createEmulator({
      apiKey: KEY,
      logger,
      holdTimeoutMs: 3_000,
      latencies: { dialinReadyMs: 30, connectMs: 20 },
    });
    emu.setPinlessDialin([
      { phone_number: NUMBER, room_creation_api: hook.url, hmac: SECRET, timeout_config: { message: 'Nobody is here, bye.' } },
    ]);
  });
  afterEach(async () => {
    await Promise.all(bots.splice(0).map((b) => b.client.close()));
    emu.faults.clear();
    emu.setLatencies({ dialinReadyMs: 30, connectMs: 20, webhookMs: 0 });
  });
  afterAll(async () => {
    await emu.close();
    await hook.close();
  });

  it('sends a correctly signed webhook to room_creation_api', async () => {
    const call = emu.placeCall({ to: NUMBER, from: '+15557654321', sipHeaders: { 'X-Account': '42' } });
    expect(call.state).toBe('held');
    const h = await hook.next();
    expect(h.headers['content-type']).toBe('application/json');
    expect(h.body).toEqual({
      To: NUMBER,
      From: '+15557654321',
      callId: call.callId,
      callDomain: emu.callDomain,
      sipHeaders: { 'X-Account': '42' },
    });
    expect(call.callId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(emu.callDomain).toMatch(/^[0-9a-f-]{36}$/);
    const ts = Number(h.headers['x-pinless-timestamp']);
    expect(Math.abs(ts - Date.now() / 1000)).toBeLessThan(5);
    expect(verifySignature(h, SECRET)).toBe(true);
    expect(verifySignature(h, randomBytes(32).toString('base64'))).toBe(false);
    await new Promise((r) => setTimeout(r, 20));
    expect(call.webhook).toMatchObject({ url: hook.url, status: 200 });
    call.hangup();
    expect((await call.ended).reason).toBe('caller_hangup_on_hold');
  });

  it('runs the whole patch-in sequence with the EmulatorCallClient', async () => {
    const call = emu.placeCall({ to: NUMBER, from: '+15557654321', sipHeaders: { 'X-Account': '42' } });
    const h = await hook.next();
    const b = await bot();
    const ready = await b.next('dialin-ready');
    expect(ready).toEqual({ sipEndpoint: b.endpoint });

    const upd = await api(emu, 'POST', '/dialin/pinlessCallUpdate', {
      callId: h.body.callId,
      callDomain: h.body.callDomain,
      sipUri: ready.sipEndpoint,
    });
    expect(upd.status).toBe(200);
    expect(upd.json).toEqual({ ok: 'true' });

    const joined = await b.next('participant-joined', (p) => p.participant.isSip === true);
    const connected = await b.next('dialin-connected');
    expect(connected).toEqual({
      sessionId: joined.participant.sessionId,
      sipFrom: '+15557654321',
      sipEndpoint: b.endpoint,
      sipHeaders: { 'X-Account': '42' },
    });
    expect(joined.participant).toMatchObject({ userName: 'caller', local: false, isSip: true });
    expect(call.state).toBe('connected');
    const sid = connected.sessionId;

    // DTMF: one event per digit, ~100 ms apart.
    await call.press('12#');
    const tones = [await b.next('dtmf-event'), await b.next('dtmf-event'), await b.next('dtmf-event')];
    expect(tones).toEqual([
      { tone: '1', sessionId: sid },
      { tone: '2', sessionId: sid },
      { tone: '#', sessionId: sid },
    ]);
    const dtmfTimes = b.events.filter((e) => e.name === 'dtmf-event').map((e) => e.at);
    expect(dtmfTimes[2]! - dtmfTimes[0]!).toBeGreaterThanOrEqual(180);

    // Speech reaches the bot only while transcription is started.
    await call.say('not transcribed');
    await b.client.startTranscription();
    await call.say('I need help');
    const tm = await b.next('transcription-message');
    expect(tm).toEqual({ participantId: sid, text: 'I need help', isFinal: true, timestampMs: expect.any(Number) });
    expect(b.count('transcription-message')).toBe(1);

    // The bot's audio reaches the caller; the ack waits for the play-out time (8 chars × 60 ms).
    const t0 = Date.now();
    await b.client.sendAudio({ pcm: new Int16Array(0), sampleRate: 16_000, text: 'Hi there' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(450);
    expect(call.transcript.filter((l) => l.who === 'bot').map((l) => l.text)).toEqual(['Hi there']);
    await b.client.sendAudio({ pcm: new Int16Array(1600), sampleRate: 16_000 });
    expect(call.transcript.filter((l) => l.who === 'bot').at(-1)?.text).toBe('[audio 100 ms]');

    // Ejecting the SIP participant hangs up the caller.
    await b.client.ejectParticipant(sid);
    const end = await call.ended;
    expect(end.reason).toBe('ejected');
    expect(end.transcript.map((l) => `${l.who}:${l.text}`)).toEqual(
      expect.arrayContaining(['caller:[dtmf 12#]', 'caller:I need help', 'caller:not transcribed', 'bot:Hi there']),
    );
    expect(await b.next('participant-left')).toMatchObject({ participant: { sessionId: sid, isSip: true } });
    expect(await b.next('dialin-stopped')).toEqual({ sessionId: sid, sipEndpoint: b.endpoint });
    const room = emu.snapshot().rooms.find((r) => r.name === b.roomName)!;
    expect(room.participants.map((p) => p.isSip)).toEqual([false]);
    expect(room.sipEndpoints[0]!.callId).toBeUndefined();
  });

  it('fires dialin-ready once per endpoint (two endpoints)', async () => {
    const b = await bot({ numEndpoints: 2 });
    const a = await b.next('dialin-ready');
    const c = await b.next('dialin-ready');
    expect([a.sipEndpoint, c.sipEndpoint].sort()).toEqual([b.endpoint, ...b.extra].sort());
    await new Promise((r) => setTimeout(r, 60));
    expect(b.count('dialin-ready')).toBe(2);
  });

  it('accepts an update before dialin-ready, then drops the call (forwarded_before_ready)', async () => {
    emu.setLatencies({ dialinReadyMs: 2_000 });
    const call = emu.placeCall({ to: NUMBER });
    const h = await hook.next();
    const b = await bot();
    const upd = await api(emu, 'POST', '/dialin/pinlessCallUpdate', {
      callId: h.body.callId,
      callDomain: h.body.callDomain,
      sipUri: b.endpoint,
    });
    expect(upd.status).toBe(200);
    const end = await call.ended;
    expect(end.reason).toBe('forwarded_before_ready');
    expect(b.count('dialin-connected')).toBe(0);
    // A second update for the dropped call is a 404.
    const again = await api(emu, 'POST', '/dialin/pinlessCallUpdate', {
      callId: h.body.callId,
      callDomain: h.body.callDomain,
      sipUri: b.endpoint,
    });
    expect(again.status).toBe(404);
  });

  it('refuses a SIP URI already in use; the second call stays held', async () => {
    const b = await bot();
    await b.next('dialin-ready');
    const first = emu.placeCall({ to: NUMBER });
    const h1 = await hook.next();
    const second = emu.placeCall({ to: NUMBER });
    const h2 = await hook.next();
    expect((await api(emu, 'POST', '/dialin/pinlessCallUpdate', { ...h1.body, sipUri: b.endpoint })).status).toBe(200);
    const clash = await api(emu, 'POST', '/dialin/pinlessCallUpdate', {
      callId: h2.body.callId,
      callDomain: h2.body.callDomain,
      sipUri: b.endpoint,
    });
    expect(clash.status).toBe(409);
    expect(clash.json).toEqual({ error: 'invalid-request-error', info: expect.stringContaining('in use') });
    await b.next('dialin-connected');
    expect(first.state).toBe('connected');
    expect(second.state).toBe('held');
    second.hangup();
    first.hangup();
    expect((await second.ended).reason).toBe('caller_hangup_on_hold');
  });

  it('answers 404 for an unknown callId or SIP URI, 400 for a wrong callDomain or missing field', async () => {
    const b = await bot();
    await b.next('dialin-ready');
    const unknown = await api(emu, 'POST', '/dialin/pinlessCallUpdate', {
      callId: '00000000-0000-4000-8000-000000000000',
      callDomain: emu.callDomain,
      sipUri: b.endpoint,
    });
    expect(unknown.status).toBe(404);
    expect(unknown.json.error).toBe('not-found');
    const call = emu.placeCall({ to: NUMBER });
    const h = await hook.next();
    const wrongDomain = await api(emu, 'POST', '/dialin/pinlessCallUpdate', {
      callId: h.body.callId,
      callDomain: '11111111-1111-4111-8111-111111111111',
      sipUri: b.endpoint,
    });
    expect(wrongDomain.status).toBe(400);
    const noRoom = await api(emu, 'POST', '/dialin/pinlessCallUpdate', {
      callId: h.body.callId,
      callDomain: h.body.callDomain,
      sipUri: 'sip:123@nowhere.sip.daily.co',
    });
    expect(noRoom.status).toBe(404);
    const missing = await api(emu, 'POST', '/dialin/pinlessCallUpdate', { callId: h.body.callId, callDomain: h.body.callDomain });
    expect(missing.status).toBe(400);
    expect(missing.json.error).toBe('invalid-request-error');
    expect(call.state).toBe('held');
    call.hangup();
  });

  it('ends a call to a number with no pinless entry at once (not_in_service)', async () => {
    const call = emu.placeCall({ to: '+15559999999' });
    expect(call.state).toBe('ended');
    expect((await call.ended).reason).toBe('not_in_service');
  });

  it('plays the timeout message and drops a call held too long (hold_timeout)', async () => {
    const short = await createEmulator({ apiKey: KEY, logger, holdTimeoutMs: 150 });
    try {
      short.setPinlessDialin([{ phone_number: NUMBER, room_creation_api: hook.url, timeout_config: { message: 'Nobody is here, bye.' } }]);
      const call = short.placeCall({ to: NUMBER });
      await hook.next();
      const end = await call.ended;
      expect(end.reason).toBe('hold_timeout');
      expect(end.transcript.some((l) => l.who === 'system' && l.text === 'Nobody is here, bye.')).toBe(true);
      expect(end.transcript.at(-1)!.atMs).toBeGreaterThanOrEqual(140);
    } finally {
      await short.close();
    }
  });

  it('lets a scripted caller hang up on hold', async () => {
    const call = emu.placeCall({ to: NUMBER, script: [{ wait: 30 }, { hangup: true }] });
    await hook.next();
    expect((await call.ended).reason).toBe('caller_hangup_on_hold');
  });

  it('a scripted caller waits for the bot, presses, and hangs up in the call', async () => {
    const call = emu.placeCall({
      to: NUMBER,
      script: [{ waitFor: 'say', match: '^welcome' }, { press: '7' }, { say: 'bye' }, { hangup: true }],
    });
    const h = await hook.next();
    const b = await bot();
    await b.next('dialin-ready');
    await api(emu, 'POST', '/dialin/pinlessCallUpdate', { callId: h.body.callId, callDomain: h.body.callDomain, sipUri: b.endpoint });
    const { sessionId } = await b.next('dialin-connected');
    await b.client.startTranscription();
    await b.client.sendAudio({ pcm: new Int16Array(0), sampleRate: 16_000, text: 'Welcome!' });
    expect(await b.next('dtmf-event')).toEqual({ tone: '7', sessionId });
    expect((await b.next('transcription-message')).text).toBe('bye');
    expect((await b.next('participant-left')).reason).toBe('hangup');
    expect(await b.next('dialin-stopped')).toEqual({ sessionId, sipEndpoint: b.endpoint });
    expect((await call.ended).reason).toBe('caller_hangup');
  });

  it('a waitFor that times out hangs up (script_timeout)', async () => {
    const call = emu.placeCall({ to: NUMBER, script: [{ waitFor: 'connected', timeoutMs: 50 }] });
    await hook.next();
    expect((await call.ended).reason).toBe('script_timeout');
  });

  it('keeps a caller left alone by the bot (as Daily does) until the room is deleted', async () => {
    for (const how of ['leave', 'delete'] as const) {
      const call = emu.placeCall({ to: NUMBER });
      const h = await hook.next();
      const b = await bot();
      await b.next('dialin-ready');
      await api(emu, 'POST', '/dialin/pinlessCallUpdate', { callId: h.body.callId, callDomain: h.body.callDomain, sipUri: b.endpoint });
      await b.next('dialin-connected');
      if (how === 'leave') {
        await b.client.leave();
        // Alone in a silent room: still connected. Only deleting the room (or hanging up) ends it.
        await new Promise((r) => setTimeout(r, 200));
        expect(call.state).toBe('connected');
        await api(emu, 'DELETE', `/rooms/${b.roomName}`);
      } else {
        expect((await api(emu, 'DELETE', `/rooms/${b.roomName}`)).json).toEqual({ deleted: true, name: b.roomName });
        expect(await b.next('left-meeting')).toEqual({ reason: 'room-deleted' });
        await expect(b.client.sendDTMF({ sessionId: 'x', tones: '1' })).rejects.toMatchObject({ code: 'call_ended' });
      }
      expect((await call.ended).reason).toBe('room_closed');
    }
  });

  it('ends a held call being patched into a room that is deleted', async () => {
    emu.setLatencies({ connectMs: 2_000 });
    const call = emu.placeCall({ to: NUMBER });
    const h = await hook.next();
    const b = await bot();
    await b.next('dialin-ready');
    expect((await api(emu, 'POST', '/dialin/pinlessCallUpdate', { ...h.body, sipUri: b.endpoint })).status).toBe(200);
    await api(emu, 'DELETE', `/rooms/${b.roomName}`);
    expect((await call.ended).reason).toBe('room_closed');
  });

  it('sip-refer takes the caller out of the room and notes the target', async () => {
    const call = emu.placeCall({ to: NUMBER });
    const h = await hook.next();
    const b = await bot();
    await b.next('dialin-ready');
    await api(emu, 'POST', '/dialin/pinlessCallUpdate', { ...h.body, sipUri: b.endpoint });
    const { sessionId } = await b.next('dialin-connected');
    await expect(b.client.sipRefer({ sessionId, toEndPoint: 'not-a-uri' })).rejects.toMatchObject({ code: 'emulator_invalid_request' });
    await b.client.sipRefer({ sessionId, toEndPoint: 'sip:agent@example.com' });
    const end = await call.ended;
    expect(end.reason).toBe('transferred');
    expect(end.transcript.some((l) => l.text === 'referred to sip:agent@example.com')).toBe(true);
    expect(await b.next('dialin-stopped')).toMatchObject({ sessionId });
  });

  it('bot DTMF reaches the caller; stop-transcription stops speech events; sip-call-transfer ends the call', async () => {
    const call = emu.placeCall({ to: NUMBER });
    const h = await hook.next();
    const b = await bot();
    await b.next('dialin-ready');
    await api(emu, 'POST', '/dialin/pinlessCallUpdate', { ...h.body, sipUri: b.endpoint });
    const { sessionId } = await b.next('dialin-connected');
    await b.client.sendDTMF({ sessionId, tones: '5#' });
    expect(call.transcript.some((l) => l.who === 'bot' && l.text === '[dtmf 5#]')).toBe(true);
    await expect(b.client.sendDTMF({ sessionId: b.localSessionId, tones: '1' })).rejects.toMatchObject({
      code: 'emulator_invalid_request',
    });
    await b.client.startTranscription();
    await expect(b.client.startTranscription()).rejects.toMatchObject({ code: 'emulator_invalid_request' });
    await call.say('one');
    await b.next('transcription-message');
    await b.client.stopTranscription();
    await call.say('two');
    await new Promise((r) => setTimeout(r, 30));
    expect(b.count('transcription-message')).toBe(1);
    await b.client.sipCallTransfer({ sessionId, toEndPoint: 'sip:queue@pbx.example.com' });
    const end = await call.ended;
    expect(end.reason).toBe('transferred');
    expect(end.transcript.some((l) => l.text === 'transferred to sip:queue@pbx.example.com')).toBe(true);
    expect((await b.next('participant-left')).reason).toBe('transferred');
  });

  it('ejects everyone when a room with eject_at_room_exp expires', async () => {
    const room = await api(emu, 'POST', '/rooms', { properties: { exp: Date.now() / 1000 + 0.3, eject_at_room_exp: true } });
    const c = new EmulatorCallClient({ apiUrl: emu.apiUrl, logger });
    bots.push({ client: c });
    const errors: unknown[] = [];
    c.on('error', (e) => errors.push(e));
    const left = new Promise((r) => c.on('left-meeting', r));
    await c.join({ roomUrl: room.json.url, token: '', userName: 'x', timeoutMs: 2000 });
    expect(await left).toEqual({ reason: 'exp-eject' });
    expect(errors).toEqual([{ message: expect.any(String), fatal: true, code: 'exp-eject' }]);
    const again = new EmulatorCallClient({ apiUrl: emu.apiUrl, logger });
    bots.push({ client: again });
    await expect(again.join({ roomUrl: room.json.url, token: '', userName: 'x', timeoutMs: 2000 })).rejects.toMatchObject({
      code: 'join_exp_room',
    });
  });

  it('aborting sendAudio rejects at once and interrupts the audio', async () => {
    const call = emu.placeCall({ to: NUMBER });
    const h = await hook.next();
    const b = await bot();
    await b.next('dialin-ready');
    await api(emu, 'POST', '/dialin/pinlessCallUpdate', { ...h.body, sipUri: b.endpoint });
    await b.next('dialin-connected');
    const ac = new AbortController();
    const t0 = Date.now();
    const p = b.client.sendAudio({ pcm: new Int16Array(16_000 * 5), sampleRate: 16_000, text: 'a long speech' }, ac.signal);
    setTimeout(() => ac.abort(new Error('barge-in')), 50);
    await expect(p).rejects.toThrow('barge-in');
    expect(Date.now() - t0).toBeLessThan(1000);
    await new Promise((r) => setTimeout(r, 30));
    expect(call.transcript.some((l) => l.text === 'bot audio interrupted')).toBe(true);
    call.hangup();
  });

  it('probes room_creation_api with a signed {"To"} when pinless dial-in is configured over REST', async () => {
    const before = emu.webhookLog.length;
    const r = await api(emu, 'POST', '/', {
      properties: { pinless_dialin: [{ phone_number: NUMBER, room_creation_api: hook.url, hmac: SECRET }] },
    });
    expect(r.status).toBe(200);
    const probe = await hook.next();
    expect(probe.body).toEqual({ To: NUMBER });
    expect(verifySignature(probe, SECRET)).toBe(true);
    await new Promise((res) => setTimeout(res, 20));
    expect(emu.webhookLog.slice(before)).toEqual([{ atMs: expect.any(Number), kind: 'probe', url: hook.url, status: 200 }]);
  });

  it('delivers app messages between bots, and a second bot sees the first', async () => {
    const b = await bot({ name: 'shared' });
    const token = (await api(emu, 'POST', '/meeting-tokens', { properties: { room_name: 'shared' } })).json.token;
    const other = new EmulatorCallClient({ apiUrl: emu.apiUrl, logger });
    bots.push({ client: other });
    const seen: unknown[] = [];
    other.on('app-message', (m) => seen.push(m));
    await other.join({ roomUrl: `${emu.origin}/shared`, token, userName: 'observer', timeoutMs: 2000 });
    expect((await b.next('participant-joined')).participant).toMatchObject({ userName: 'observer', isSip: false });
    await b.client.sendAppMessage({ hello: 1 });
    await new Promise((r) => setTimeout(r, 30));
    expect(seen).toEqual([{ data: { hello: 1 }, fromId: b.localSessionId }]);
    // Not an owner: no transcription, no eject.
    await expect(other.startTranscription()).rejects.toMatchObject({ code: 'emulator_not_allowed' });
    await other.close();
    expect((await b.next('participant-left')).participant.userName).toBe('observer');
  });
});
