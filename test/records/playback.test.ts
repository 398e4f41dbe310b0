/**
 * A recorded call played in the dashboard's call detail (issue 24, item 6), in a real headless
 * Chromium (playwright-core) against the real emulator, app and workers: local recording (espeak-ng
 * on both sides), records in a SQLite file. The signed link: Range requests (206, the file's bytes),
 * refused when expired or tampered with (403 and a log line). In the page: the audio element loads
 * the whole call, a click on a line seeks there, the highlighted line follows the playback. The
 * screenshot goes to test-output/recording-playback.png; `UPDATE_SCREENSHOTS=1` writes
 * docs/images/recording-playback.png (docs/dashboard.md) instead.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/core/logger.js';
import { DailyRestClient } from '../../src/daily/rest.js';
import type { CallRecord } from '../../src/admission/dispatcher.js';
import { linkKey, linkQuery } from '../../src/server/routes/recording-links.js';
import { FIXTURE_BOTS, waitFor } from '../helpers/ops.js';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'recording-playback-token-0123456789';
const WAIT_MS = 20_000;
const dir = mkdtempSync(path.join(tmpdir(), 'patchbay-playback-'));
const lines: Array<Record<string, unknown>> = [];
const destination = new Writable({
  write(chunk: Buffer, _enc, cb) {
    for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
    cb();
  },
});
const bearer = { authorization: `Bearer ${TOKEN}` };
const DAILY_CALLER = '+15550003333';

/** The page's `<audio>` element, as far as the test reads it (no DOM types in this project's tsconfig). */
interface AudioEl {
  currentTime: number;
  duration: number;
  readyState: number;
  src: string;
  play(): Promise<void>;
  pause(): void;
}

interface Playback {
  mode: string;
  tracks: Array<{ id: string; startMs: number; endMs: number | null; url: string }>;
  expiresAtMs: number;
}

describe('recording playback in the call detail (Chromium)', () => {
  let stack: Stack;
  let browser: Browser;
  let rec: CallRecord;
  let play: Playback;
  let dailyRec: CallRecord;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing (apt-get install -y chromium; .ci/run does)`);
    [stack, browser] = await Promise.all([
      startStack({
        env: {
          DASHBOARD_TOKEN: TOKEN,
          CALL_RECORDS_PATH: path.join(dir, 'calls.db'),
          RECORDINGS_DIR: path.join(dir, 'recordings'),
          BOTS_DIR: FIXTURE_BOTS,
          DEFAULT_BOT: 'pci-local',
          TTS_PROVIDER: 'espeak',
          DAILY_RECORDING_ROOMS: 'true',
          // A warm worker for each of the two calls.
          IDLE_WORKERS: '2',
        },
        // The caller's number picks the bot: a local recording with a PCI pause, or Daily's recording.
        runtime: { route: (c) => (c.from === DAILY_CALLER ? 'recorded' : 'pci-local'), preloadBots: ['pci-local', 'recorded'] },
        logger: createLogger({ level: 'info', name: 'test', destination }),
      }),
      chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--no-first-run',
          '--disable-background-networking',
          '--autoplay-policy=no-user-gesture-required',
        ],
      }),
    ]);
    const call = stack.emulator.placeCall({
      to: NUMBER,
      script: [
        { waitFor: 'say', match: 'account name', timeoutMs: 40_000 },
        { wait: 1_500 },
        { speak: 'Harriet Vane' },
        { waitFor: 'say', match: 'secret word', timeoutMs: 40_000 },
        { wait: 1_500 },
        { speak: 'marmalade' },
        { waitFor: 'say', match: 'goodbye', timeoutMs: 40_000 },
        { wait: 2_500 },
      ],
    });
    // Meanwhile, a short call recorded by (the emulated) Daily.
    const daily = stack.emulator.placeCall({
      to: NUMBER,
      from: DAILY_CALLER,
      script: [{ waitFor: 'say', match: 'harbour', timeoutMs: 40_000 }, { wait: 1_500 }, { hangup: true }],
    });
    [rec, dailyRec] = await Promise.all([stack.waitEnded(call.callId, 60_000), stack.waitEnded(daily.callId, 60_000)]);
    await waitFor('the record', async () => (await fetch(`${stack.url}/calls/${rec.id}`, { headers: bearer })).status === 200, 10_000);
    const res = await fetch(`${stack.url}/calls/${rec.id}/recording`, { headers: bearer });
    expect(res.status).toBe(200);
    play = (await res.json()) as Playback;
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await stack?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the recording through a signed link: ranges, and 403 (with a log line) when expired or tampered with', async () => {
    expect(play.mode).toBe('local');
    expect(play.tracks).toHaveLength(1);
    const file = readFileSync(path.join(dir, 'recordings', `${rec.id}.wav`));
    const url = `${stack.url}${play.tracks[0]!.url}`;
    const ranged = await fetch(url, { headers: { range: 'bytes=100-1123' } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('content-range')).toBe(`bytes 100-1123/${file.length}`);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(file.subarray(100, 1124))).toBe(true);
    const tail = await fetch(url, { headers: { range: 'bytes=-16' } });
    expect(tail.status).toBe(206);
    expect(Buffer.from(await tail.arrayBuffer()).equals(file.subarray(file.length - 16))).toBe(true);
    const whole = await fetch(url);
    expect(whole.status).toBe(200);
    expect(whole.headers.get('accept-ranges')).toBe('bytes');
    expect(Buffer.from(await whole.arrayBuffer()).equals(file)).toBe(true);
    expect((await fetch(url, { headers: { range: `bytes=${file.length}-` } })).status).toBe(416);

    // The link page needs the dashboard's token; the audio needs the link.
    expect((await fetch(`${stack.url}/calls/${rec.id}/recording`)).status).toBe(401);
    const u = new URL(url);
    const tampered = (k: string, v: string) => {
      const t = new URL(u);
      t.searchParams.set(k, v);
      return t.toString();
    };
    const sig = u.searchParams.get('sig')!;
    for (const bad of [
      tampered('sig', `${sig.slice(0, -1)}${sig.endsWith('A') ? 'B' : 'A'}`),
      tampered('exp', String(Number(u.searchParams.get('exp')) + 3_600_000)),
      tampered('rec', 'other-call.wav'),
      `${stack.url}/calls/${rec.id}/recording/audio`,
    ]) {
      const r = await fetch(bad);
      expect(r.status, bad).toBe(403);
      expect(await r.text()).not.toContain('RIFF');
    }
    // Another call's id with this call's link.
    expect((await fetch(url.replace(`/calls/${rec.id}/`, '/calls/not-this-call/'))).status).toBe(403);
    // Signed with the right key, lapsed a moment ago.
    const expired = linkQuery(linkKey(TOKEN), { callId: rec.id, recordingId: `${rec.id}.wav`, expiresAtMs: Date.now() - 1 });
    const late = await fetch(`${stack.url}/calls/${rec.id}/recording/audio?${expired}`);
    expect(late.status).toBe(403);
    expect(((await late.json()) as { message: string }).message).toMatch(/expired/);
    const refusals = lines.filter((l) => String(l.msg).startsWith('recording link refused')).map((l) => l.msg);
    expect(refusals).toContain('recording link refused: expired');
    expect(refusals).toContain('recording link refused: bad signature');
  });

  it("proxies a Daily recording through Daily's access link, Range passed on", async () => {
    await waitFor(
      'the Daily record',
      async () => (await fetch(`${stack.url}/calls/${dailyRec.id}`, { headers: bearer })).status === 200,
      10_000,
    );
    const res = await fetch(`${stack.url}/calls/${dailyRec.id}/recording`, { headers: bearer });
    const p = (await res.json()) as Playback;
    expect(p.mode).toBe('daily');
    expect(p.tracks).toHaveLength(1);
    // The emulator's file, straight from its own access link.
    const rest = new DailyRestClient({ apiUrl: stack.emulator.apiUrl, apiKey: stack.apiKey, timeoutMs: 5_000 });
    const link = await rest.recordingAccessLink(p.tracks[0]!.id);
    const file = Buffer.from(await (await fetch(link.download_link)).arrayBuffer());
    expect(file.toString('ascii', 0, 4)).toBe('RIFF');
    const url = `${stack.url}${p.tracks[0]!.url}`;
    const whole = await fetch(url);
    expect(whole.status).toBe(200);
    expect(Buffer.from(await whole.arrayBuffer()).equals(file)).toBe(true);
    const part = await fetch(url, { headers: { range: 'bytes=44-1067' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 44-1067/${file.length}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(file.subarray(44, 1068))).toBe(true);
    // /calls and its CSV carry the recording: mode, state, ids, pauses (and errors).
    const list = (await (await fetch(`${stack.url}/calls?limit=10`, { headers: bearer })).json()) as {
      calls: Array<{ id: string; recording: { mode: string | null; state: string; ids: string[]; pauses: unknown[] } }>;
    };
    const byId = new Map(list.calls.map((c) => [c.id, c.recording]));
    expect(byId.get(dailyRec.id)).toMatchObject({ mode: 'daily', state: 'stopped', ids: [p.tracks[0]!.id] });
    expect(byId.get(rec.id)).toMatchObject({ mode: 'local', ids: [`${rec.id}.wav`] });
    expect(byId.get(rec.id)!.pauses).toHaveLength(1);
    const csv = (await (await fetch(`${stack.url}/calls?format=csv`, { headers: bearer })).text()).split('\r\n');
    const head = csv[0]!.split(',');
    const row = (id: string) => {
      const cells = csv.find((l) => l.startsWith(`${id},`))!.split(',');
      return (name: string) => cells[cells.length - head.length + head.indexOf(name)];
    };
    expect(row(dailyRec.id)('recordingMode')).toBe('daily');
    expect(row(rec.id)('recordingMode')).toBe('local');
    expect(row(rec.id)('recordingPauses')).toMatch(/^recording paused \d+\.\d–\d+\.\d s$/);
    expect(head).toContain('recordingErrors');

    // The link is this call's: the Daily recording's id under the local call's path is refused.
    expect((await fetch(url.replace(`/calls/${dailyRec.id}/`, `/calls/${rec.id}/`))).status).toBe(403);
  });

  it('plays beside the conversation: a click on a line seeks there, the highlighted line follows the playback', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
    await page.goto(`${stack.url}/dashboard?token=${TOKEN}`);
    const row = page.locator(`#recent tbody tr[data-id="${rec.id}"]`);
    await row.waitFor({ timeout: WAIT_MS });
    // Recorded calls carry a badge in the list.
    expect(await row.locator('.pill.rec').getAttribute('title')).toBe('recording: local stopped');
    await row.click();
    await page.locator('#detail-player:not([hidden])').waitFor({ timeout: WAIT_MS });
    const audio = page.locator('#player-audio');
    await expect.poll(() => audio.evaluate((a: AudioEl) => a.readyState), { timeout: WAIT_MS }).toBeGreaterThanOrEqual(1);
    const track = play.tracks[0]!;
    const duration = await audio.evaluate((a: AudioEl) => a.duration);
    expect(Math.abs(duration * 1000 - (track.endMs! - track.startMs))).toBeLessThan(1_000);

    // The PCI pause is a gap on the strip, named as in the record.
    const gap = page.locator('#player-strip .gap');
    expect(await gap.count()).toBe(1);
    expect(await gap.getAttribute('title')).toMatch(/^recording paused \d+\.\d–\d+\.\d s$/);

    // A click on the bot's last line puts the audio there, and highlights it.
    const answer = rec.botEvents.find((e) => e.kind === 'say' && e.value.includes('goodbye'))!;
    const answerLine = page.locator('#detail-events li[data-kind="say"]', { hasText: 'goodbye' });
    await answerLine.click();
    await expect
      .poll(() => audio.evaluate((a: AudioEl) => a.currentTime), { timeout: WAIT_MS })
      .toBeCloseTo((answer.atMs - track.startMs) / 1000, 1);
    await answerLine.and(page.locator('.playing')).waitFor({ timeout: WAIT_MS });
    expect(await page.locator('#detail-events li.playing').count()).toBe(1);

    // Played from a second before that line (an earlier line is the current one then): the highlight moves to it as the audio reaches it.
    const from = (answer.atMs - track.startMs) / 1000 - 1.2;
    await audio.evaluate((a: AudioEl, t: number) => {
      a.currentTime = t;
    }, from);
    await page.locator('#detail-events li.playing', { hasNotText: 'goodbye' }).waitFor({ timeout: WAIT_MS });
    await audio.evaluate((a: AudioEl) => a.play());
    await answerLine.and(page.locator('.playing')).waitFor({ timeout: WAIT_MS });
    expect(await audio.evaluate((a: AudioEl) => a.currentTime)).toBeGreaterThanOrEqual(from + 1.19);
    await audio.evaluate((a: AudioEl) => a.pause());
    const shot = process.env.UPDATE_SCREENSHOTS === '1' ? 'docs/images/recording-playback.png' : 'test-output/recording-playback.png';
    mkdirSync(path.dirname(shot), { recursive: true });
    await page.locator('#detail').screenshot({ path: shot });
    // A link refused mid-review (as a lapsed one is): the player asks for fresh links and loads again.
    await audio.evaluate((a: AudioEl) => {
      a.src = a.src.replace(/sig=[^&]+/, 'sig=forged');
    });
    await expect
      .poll(() => audio.evaluate((a: AudioEl) => (a.src.includes('sig=forged') ? 'forged' : a.readyState >= 1 ? 'loaded' : 'loading')), {
        timeout: WAIT_MS,
      })
      .toBe('loaded');
    expect(pageErrors).toEqual([]);
    await page.close();
  }, 60_000);
});
