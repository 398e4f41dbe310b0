/**
 * The real daily-js in Chromium, end to end offline against the project's Daily emulator:
 * daily-js ⇄ call-machine stand-in (bridge mode) ⇄ emulator call-client socket. A caller is
 * placed, held, forwarded by pinlessCallUpdate after dialin-ready, and talks to the bot.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallClientEventMap } from '../../../src/daily/call-client.js';
import { waitForNoProcesses } from '../../../src/daily/browser/chromium.js';
import { DailyBrowserCallClient } from '../../../src/daily/browser/client.js';
import { DailyClientError, JoinError } from '../../../src/daily/browser/errors.js';
import { CallMachineStandIn } from '../../../src/emulator/call-machine/stand-in.js';
import { createEmulator, type Emulator } from '../../../src/emulator/server.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`SKIPPING test/daily-browser-emulator.test.ts: ${CHROMIUM} is missing (apt-get install -y chromium)`);

const API_KEY = 'test-key';
const NUMBER = '+15550001000';
const logger = pino({ level: 'silent' });

async function api<T>(emu: Emulator, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${emu.apiUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = (await res.json()) as T;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

function waitEvent<E extends keyof CallClientEventMap>(
  c: DailyBrowserCallClient,
  event: E,
  pred: (p: CallClientEventMap[E]) => boolean = () => true,
  timeoutMs = 5_000,
): Promise<CallClientEventMap[E]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`${event} not seen within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = c.on(event, (p) => {
      if (!pred(p)) return;
      clearTimeout(timer);
      off();
      resolve(p);
    });
  });
}

describe.skipIf(!haveChromium)('daily client (real daily-js) against the emulator', () => {
  let emu: Emulator;
  let hook: http.Server;
  const webhooks: { callId: string; callDomain: string; To: string; From: string }[] = [];
  let si: CallMachineStandIn;

  beforeAll(async () => {
    emu = await createEmulator({ apiKey: API_KEY });
    hook = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += String(d)));
      req.on('end', () => {
        try {
          webhooks.push(JSON.parse(body) as (typeof webhooks)[number]);
        } catch {
          // probe or junk
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', () => r()));
    emu.setPinlessDialin([{ phone_number: NUMBER, room_creation_api: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/dialin` }]);
    si = await CallMachineStandIn.start({ bridge: 'emulator' });
  });

  afterAll(async () => {
    await si?.close();
    await emu?.close();
    await new Promise<void>((r) => (hook ? hook.close(() => r()) : r()));
  });

  it('a held caller is forwarded after dialin-ready and talks with the bot; eject ends the call', async () => {
    const c = new DailyBrowserCallClient({ apiUrl: emu.apiUrl, logger, chromiumPath: CHROMIUM, bundleUrl: si.bundleUrl });
    try {
      await c.prepare();
      const call = emu.placeCall({ to: NUMBER, from: '+15557654321' });
      const deadline = Date.now() + 5_000;
      while (!webhooks.some((w) => w.callId === call.callId) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const wh = webhooks.find((w) => w.callId === call.callId);
      expect(wh).toBeDefined();

      const room = await api<{ name: string; url: string; config: { sip_uri: { endpoint: string } } }>(emu, 'POST', '/rooms', {
        properties: { sip: { display_name: 'caller', sip_mode: 'dial-in', num_endpoints: 1 } },
      });
      const { token } = await api<{ token: string }>(emu, 'POST', '/meeting-tokens', {
        properties: { room_name: room.name, is_owner: true },
      });

      const ready = waitEvent(c, 'dialin-ready');
      const { localSessionId } = await c.join({ roomUrl: room.url, token, userName: 'patchbay bot', timeoutMs: 5_000 });
      expect(localSessionId).toBeTruthy();
      expect((await ready).sipEndpoint).toBe(room.config.sip_uri.endpoint);

      const joined = waitEvent(c, 'participant-joined', (p) => p.participant.isSip === true);
      const connected = waitEvent(c, 'dialin-connected');
      await api(emu, 'POST', '/dialin/pinlessCallUpdate', {
        callId: wh?.callId,
        callDomain: wh?.callDomain,
        sipUri: room.config.sip_uri.endpoint,
      });
      const caller = (await joined).participant;
      expect(caller).toMatchObject({ local: false, isSip: true });
      expect((await connected).sessionId).toBe(caller.sessionId);

      await c.startTranscription();
      const heard = waitEvent(c, 'transcription-message');
      await call.say('I need help with my bill');
      expect(await heard).toMatchObject({ participantId: caller.sessionId, text: 'I need help with my bill', isFinal: true });

      const digits: string[] = [];
      const offDtmf = c.on('dtmf-event', (d) => digits.push(d.tone));
      await call.press('42');
      const until = Date.now() + 2_000;
      while (digits.length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      offDtmf();
      expect(digits).toEqual(['4', '2']);

      // The bot speaks: real PCM into Chromium's microphone track; the emulated caller gets the words.
      const pcm = new Int16Array(16_000 * 0.2).map((_, i) => Math.round(6000 * Math.sin(i / 5)));
      const t0 = Date.now();
      await c.sendAudio({ pcm, sampleRate: 16_000, text: 'Hello, how can I help?' });
      expect(Date.now() - t0).toBeGreaterThanOrEqual(180);
      const spoke = Date.now() + 2_000;
      while (!call.transcript.some((l) => l.who === 'bot') && Date.now() < spoke) await new Promise((r) => setTimeout(r, 10));
      expect(call.transcript.filter((l) => l.who === 'bot').map((l) => l.text)).toContain('Hello, how can I help?');

      await c.sendDTMF({ sessionId: caller.sessionId, tones: '1' });
      const bad = await c.sendDTMF({ sessionId: 'nobody', tones: '1' }).catch((e: unknown) => e);
      expect(bad).toBeInstanceOf(DailyClientError);

      const left = waitEvent(c, 'participant-left', (p) => p.participant.sessionId === caller.sessionId);
      await c.ejectParticipant(caller.sessionId);
      expect((await left).reason).toBe('ejected');
      expect((await call.ended).reason).toBe('ejected');
    } finally {
      await c.close();
    }
    expect(await waitForNoProcesses(c.chromiumUserDataDir as string, 3_000)).toEqual([]);
  }, 30_000);

  it('a bad token is refused by the emulator: typed, non-retryable JoinError', async () => {
    const room = await api<{ name: string; url: string }>(emu, 'POST', '/rooms', { privacy: 'private' });
    const c = new DailyBrowserCallClient({ apiUrl: emu.apiUrl, logger, chromiumPath: CHROMIUM, bundleUrl: si.bundleUrl });
    try {
      const err = await c.join({ roomUrl: room.url, token: 'forged', userName: 'bot', timeoutMs: 5_000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(JoinError);
      expect((err as JoinError).retryable).toBe(false);
      expect((err as JoinError).code).toBe('daily_join_not-allowed');
    } finally {
      await c.close();
    }
  });
});
