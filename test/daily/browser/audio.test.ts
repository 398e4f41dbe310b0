/**
 * The binary audio path (src/daily/browser/audio-channel.ts), for real: a page in a browser served
 * by the BrowserHost, the real daily-js, and the call-machine stand-in's loopback participant, whose
 * audio track is the bot's own microphone. What the worker sends comes back through the page's
 * capture path, so both directions are checked against the PCM that was sent.
 */
import { existsSync } from 'node:fs';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame } from '../../../src/daily/browser/audio-channel.js';
import { DailyBrowserCallClient } from '../../../src/daily/browser/client.js';
import { BrowserHost } from '../../../src/daily/browser/host.js';
import { CallMachineStandIn } from '../../../src/emulator/call-machine/stand-in.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`SKIPPING test/daily-browser-audio.test.ts: ${CHROMIUM} is missing`);
const logger = pino({ level: 'silent' });
const RATE = 16_000;

describe('audio frames', () => {
  it('encode/decode round-trips the header and the PCM, whatever the header length', () => {
    for (const id of ['a', 'ab', 'caller-1', 'x'.repeat(37)]) {
      const pcm = Int16Array.from({ length: 321 }, (_, i) => ((i * 97) % 65536) - 32768);
      const f = decodeFrame(encodeFrame({ t: 'cap', p: id }, pcm));
      expect(f?.header).toEqual({ t: 'cap', p: id });
      expect(Array.from(f!.pcm)).toEqual(Array.from(pcm));
    }
    expect(decodeFrame(Buffer.from([5]))).toBeUndefined();
    expect(decodeFrame(Buffer.from([9, 0, 1, 2]))).toBeUndefined();
  });
});

/** Normalised correlation of a and b (same length). */
function corr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += (a[i] as number) * (b[i] as number);
    aa += (a[i] as number) ** 2;
    bb += (b[i] as number) ** 2;
  }
  return ab / Math.sqrt(aa * bb || 1);
}

describe.skipIf(!haveChromium)('binary audio path through a shared browser', () => {
  let host: BrowserHost;
  let si: CallMachineStandIn;
  let c: DailyBrowserCallClient;

  beforeAll(async () => {
    host = new BrowserHost({ chromiumPath: CHROMIUM, browsers: 1, botsPerBrowser: 4, logger });
    await host.start();
    si = await CallMachineStandIn.start({ dialinReadyEndpoint: 'sip:audio@stand-in' });
    const lease = host.lease()!;
    c = new DailyBrowserCallClient({
      apiUrl: 'x',
      logger,
      bundleUrl: si.bundleUrl,
      sharedBrowser: { wsEndpoint: lease.wsEndpoint, browserPid: lease.browserPid },
    });
    await c.prepare();
    await c.join({ roomUrl: 'https://audio.daily.co/room', token: 't', userName: 'bot', timeoutMs: 10_000 });
  }, 60_000);

  afterAll(async () => {
    await c?.close();
    await si?.close();
    await host?.close();
  });

  it('two clips sent back to back come back sample-contiguous and matching what was sent; no frame dropped', async () => {
    si.addParticipant({ sessionId: 'echo', participantType: 'sip-dial-in', loopback: true });
    const frames: Int16Array[] = [];
    c.on('audio-frame', (f) => {
      if (f.participantId === 'echo') {
        expect(f.sampleRate).toBe(RATE);
        frames.push(f.pcm);
      }
    });
    await c.receiveAudio(true);
    await new Promise((r) => setTimeout(r, 300));
    // Clip A: a chirp 200 → 800 Hz; clip B: 450 Hz. 0.5 s each, one after the other without waiting.
    const n = RATE / 2;
    const a = Int16Array.from({ length: n }, (_, i) =>
      Math.round(9000 * Math.sin(2 * Math.PI * (200 * (i / RATE) + 600 * (i / RATE) ** 2))),
    );
    const b = Int16Array.from({ length: n }, (_, i) => Math.round(9000 * Math.sin((2 * Math.PI * 450 * i) / RATE)));
    const t0 = Date.now();
    await Promise.all([c.sendAudio({ pcm: a, sampleRate: RATE }), c.sendAudio({ pcm: b, sampleRate: RATE })]);
    // Play-out is paced by the page's audio clock: both clips take ~1 s, not less.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
    await new Promise((r) => setTimeout(r, 400));
    await c.receiveAudio(false);

    expect(frames.length).toBeGreaterThan(60);
    for (const f of frames) expect(f.length).toBe(320);
    expect(c.audioStats.dropped).toBe(0);
    const got = new Int16Array(frames.length * 320);
    frames.forEach((f, i) => got.set(f, i * 320));
    const sent = new Int16Array(2 * n);
    sent.set(a, 0);
    sent.set(b, n);
    // Where the echo starts: first loud sample, refined by correlation over the first 100 ms.
    const onset = got.findIndex((v) => Math.abs(v) > 1500);
    expect(onset).toBeGreaterThanOrEqual(0);
    let best = { lag: onset, r: -1 };
    for (let lag = Math.max(0, onset - 200); lag <= onset + 200 && lag + sent.length <= got.length; lag++) {
      const r = corr(sent.subarray(0, 1600), got.subarray(lag, lag + 1600));
      if (r > best.r) best = { lag, r };
    }
    expect(best.lag + sent.length).toBeLessThanOrEqual(got.length);
    const echo = got.subarray(best.lag, best.lag + sent.length);
    // The whole second, both clips, lines up with what was sent (16 → 48 → 16 kHz in Web Audio).
    expect(corr(sent, echo)).toBeGreaterThan(0.9);
    expect(corr(b, echo.subarray(n))).toBeGreaterThan(0.9);
    // No gap anywhere, not at the junction of the clips either: every 10 ms window is loud.
    for (let w = 0; w + 160 <= echo.length; w += 160) {
      let s = 0;
      for (let i = w; i < w + 160; i++) s += (echo[i] as number) ** 2;
      expect(Math.sqrt(s / 160), `window at ${w}`).toBeGreaterThan(2_500);
    }
    // And silence after it: nothing played twice.
    const after = got.subarray(best.lag + sent.length + 320);
    expect(after.length).toBeGreaterThan(0);
    expect(Math.max(...Array.from(after, Math.abs))).toBeLessThan(1_500);
  }, 30_000);

  it("the page's renderer is found and its memory counted", async () => {
    const deadline = Date.now() + 10_000;
    while ((await c.pagePids()).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const pids = await c.pagePids();
    expect(pids).toHaveLength(1);
    const { rendererPidsOf } = await import('../../../src/daily/browser/chromium.js');
    expect(await rendererPidsOf(host.stats().browsers[0]!.pid!)).toContain(pids[0]);
    expect(await c.pageMemoryBytes()).toBeGreaterThan(10 * 1024 * 1024);
  }, 20_000);

  it('a socket without the token is refused', async () => {
    const { WebSocket } = await import('ws');
    const origin = (c as unknown as { server: { origin: string } }).server.origin.replace('http', 'ws');
    const err = await new Promise<Error>((resolve) => {
      const ws = new WebSocket(`${origin}/audio?token=wrong`);
      ws.on('error', resolve);
      ws.on('open', () => resolve(new Error('opened')));
    });
    expect(err.message).toMatch(/403/);
  });
});
