/**
 * The emulator's Daily recordings (issue 24, item 8), over real HTTP with patchbay's Daily REST
 * client: Daily's refusals (not enabled on the room, no session, already recording, the start
 * rate class), the listing, access links that expire, deletion.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmulator } from '../../src/emulator/server.js';
import type { Emulator } from '../../src/emulator/types.js';
import { DailyRestClient } from '../../src/daily/rest.js';
import { DailyApiError } from '../../src/core/errors.js';
import { EmulatorCallClient } from '../../src/emulator/client.js';
import { signMeetingToken } from '../../src/daily/token.js';
import { pino } from 'pino';

const KEY = 'test_recordings_key';
let emu: Emulator;
let rest: DailyRestClient;

async function failure(p: Promise<unknown>): Promise<DailyApiError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DailyApiError);
  return err as DailyApiError;
}

async function room(props: Record<string, unknown>): Promise<string> {
  const r = await fetch(`${emu.apiUrl}/rooms`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ privacy: 'private', properties: props }),
  });
  return ((await r.json()) as { name: string }).name;
}

/** A bot in the room (the session that a recording needs). */
async function joinBot(name: string): Promise<EmulatorCallClient> {
  const domain = ((await (await fetch(`${emu.apiUrl}/`, { headers: { authorization: `Bearer ${KEY}` } })).json()) as { domain_id: string })
    .domain_id;
  const token = signMeetingToken(
    { r: name, d: domain, o: true, iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 600 },
    KEY,
  );
  const c = new EmulatorCallClient({ apiUrl: emu.apiUrl, logger: pino({ level: 'silent' }) });
  await c.join({ roomUrl: `${emu.origin}/${name}`, token, userName: 'bot', timeoutMs: 5_000 });
  return c;
}

beforeAll(async () => {
  emu = await createEmulator({ apiKey: KEY, rateLimits: false });
  rest = new DailyRestClient({ apiUrl: emu.apiUrl, apiKey: KEY, timeoutMs: 5_000 });
});
afterAll(async () => {
  await emu?.close();
});

describe('emulator recordings (Daily REST)', () => {
  it('refuses a start when recording is not enabled on the room, and without a session', async () => {
    const plain = await room({});
    const e1 = await failure(rest.startRecording(plain, { type: 'cloud-audio-only' }));
    expect(e1.status).toBe(400);
    expect(e1.info).toMatch(/not enabled/);
    const enabled = await room({ enable_recording: 'cloud-audio-only' });
    const e2 = await failure(rest.startRecording(enabled, { type: 'cloud-audio-only' }));
    expect(e2.status).toBe(404);
    // raw-tracks needs enable_recording: raw-tracks.
    const c = await joinBot(enabled);
    const e3 = await failure(rest.startRecording(enabled, { type: 'raw-tracks' }));
    expect(e3.status).toBe(400);
    await c.close();
  });

  it('start → events to the bots → a second start refused → stop → listed, linked, downloaded, link expires, deleted', async () => {
    const name = await room({ enable_recording: 'cloud-audio-only' });
    const bot = await joinBot(name);
    const events: string[] = [];
    let startedId: string | undefined;
    bot.on('recording-started', (e) => {
      events.push('started');
      startedId = e.recordingId;
    });
    bot.on('recording-stopped', () => events.push('stopped'));
    const answer = await rest.startRecording(name, { type: 'cloud-audio-only' });
    // Daily documents no id in the answer, and none in the event but for `cloud` recordings.
    expect(answer).toEqual({ status: 'success' });
    const again = await failure(rest.startRecording(name, { type: 'cloud-audio-only' }));
    expect(again.status).toBe(400);
    expect(again.info).toMatch(/already in progress/);
    // The bot's audio (samples while recording) goes into channel 2.
    await new Promise((r) => setTimeout(r, 200));
    const tone = Int16Array.from({ length: 8_000 }, (_, i) => Math.round(8_000 * Math.sin((2 * Math.PI * 440 * i) / 16_000)));
    await bot.sendAudio({ pcm: tone, sampleRate: 16_000, text: 'a tone' });
    await rest.stopRecording(name, { type: 'cloud-audio-only' });
    const noneActive = await failure(rest.stopRecording(name, { type: 'cloud-audio-only' }));
    expect(noneActive.status).toBe(400);
    await new Promise((r) => setTimeout(r, 100));
    expect(events).toEqual(['started', 'stopped']);
    expect(startedId).toBeUndefined();

    const listed = await rest.listRecordings({ roomName: name });
    expect(listed).toHaveLength(1);
    const id = listed[0]!.id;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(listed[0]!.status).toBe('finished');
    const link = await rest.recordingAccessLink(id, 1);
    expect(link.expires).toBeGreaterThan(Date.now() / 1000);
    const wav = Buffer.from(await (await fetch(link.download_link)).arrayBuffer());
    expect(wav.toString('ascii', 0, 4)).toBe('RIFF');
    expect(wav.readUInt16LE(22)).toBe(2);
    // Channel 2 holds the tone (energy), channel 1 (no caller) is silent.
    let e1 = 0;
    let e2 = 0;
    for (let o = 44; o + 3 < wav.length; o += 4) {
      e1 += Math.abs(wav.readInt16LE(o));
      e2 += Math.abs(wav.readInt16LE(o + 2));
    }
    expect(e1).toBe(0);
    expect(e2).toBeGreaterThan(1_000_000);
    const forged = await fetch(link.download_link.replace(/sig=[^&]+/, 'sig=AAAA'));
    expect(forged.status).toBe(403);
    await new Promise((r) => setTimeout(r, 2_100));
    expect((await fetch(link.download_link)).status).toBe(403);
    await rest.deleteRecording(id);
    expect((await failure(rest.getRecording(id))).status).toBe(404);
    await bot.close();
  }, 20_000);

  it('recording starts are in the start class: the sixth in 5 s is a 429', async () => {
    emu.rateLimits.update({ enabled: true });
    try {
      const name = await room({});
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await failure(rest.startRecording(name, { type: 'cloud-audio-only' }))).status ?? 0);
      expect(statuses.slice(0, 5)).toEqual([400, 400, 400, 400, 400]);
      expect(statuses[5]).toBe(429);
    } finally {
      emu.rateLimits.update({ enabled: false });
    }
  });
});
