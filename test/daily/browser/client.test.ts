/**
 * The daily call client for real: Chromium from Debian, daily-js 0.92.2 from node_modules,
 * everything on 127.0.0.1. Daily itself is unreachable from here, so the "platform" is the
 * call-machine stand-in (src/emulator/call-machine/).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallClientEventMap } from '../../../src/daily/call-client.js';
import { findProcessesWithArg, waitForNoProcesses } from '../../../src/daily/browser/chromium.js';
import { DailyBrowserCallClient } from '../../../src/daily/browser/client.js';
import { ChromiumMissingError, DailyClientError, JoinError } from '../../../src/daily/browser/errors.js';
import { CallMachineStandIn } from '../../../src/emulator/call-machine/stand-in.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  console.warn(`SKIPPING test/daily-browser.test.ts: ${CHROMIUM} is missing (apt-get install -y chromium)`);
}

const logger = pino({ level: 'silent' });
const ROOM = 'https://patchbay-test.daily.co/offline-room';

function client(bundleUrl?: string, extra: Record<string, unknown> = {}): DailyBrowserCallClient {
  return new DailyBrowserCallClient({
    apiUrl: 'http://127.0.0.1:9/v1',
    logger,
    chromiumPath: CHROMIUM,
    ...(bundleUrl ? { bundleUrl } : {}),
    ...extra,
  });
}

/** Collects every event of a client, and waits for the next one matching. */
function recorder(c: DailyBrowserCallClient) {
  const seen: { event: keyof CallClientEventMap; payload: unknown }[] = [];
  const names: (keyof CallClientEventMap)[] = [
    'joined-meeting',
    'dialin-ready',
    'dialin-connected',
    'dialin-stopped',
    'dialin-error',
    'dialin-warning',
    'participant-joined',
    'participant-left',
    'dtmf-event',
    'transcription-message',
    'app-message',
    'error',
    'left-meeting',
  ];
  for (const n of names) c.on(n, (p) => seen.push({ event: n, payload: p }));
  const next = async <E extends keyof CallClientEventMap>(event: E, timeoutMs = 5_000): Promise<CallClientEventMap[E]> => {
    const from = seen.length;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = seen.slice(from).find((s) => s.event === event);
      if (hit) return hit.payload as CallClientEventMap[E];
      if (Date.now() > deadline) throw new Error(`event ${event} not seen within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const last = <E extends keyof CallClientEventMap>(event: E): CallClientEventMap[E] | undefined =>
    [...seen].reverse().find((s) => s.event === event)?.payload as CallClientEventMap[E] | undefined;
  return { seen, next, last };
}

async function expectNoChromium(dir: string | undefined): Promise<void> {
  expect(dir).toBeTruthy();
  expect(await waitForNoProcesses(dir as string, 3_000)).toEqual([]);
  expect(existsSync(dir as string)).toBe(false);
}

describe('daily client: missing Chromium', () => {
  it('fails prepare() with one clear error naming the path and the apt package', async () => {
    const c = new DailyBrowserCallClient({ apiUrl: 'x', logger, chromiumPath: '/nonexistent/chromium' });
    const err = await c.prepare().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChromiumMissingError);
    expect((err as Error).message).toContain('/nonexistent/chromium');
    expect((err as Error).message).toContain('apt-get install -y chromium');
    await c.close();
  });
});

describe('daily client: an executable that is not Chromium', () => {
  it('fails prepare() with chromium_launch_failed and removes what it had created', async () => {
    const c = new DailyBrowserCallClient({ apiUrl: 'x', logger, chromiumPath: '/bin/true', prepareTimeoutMs: 5_000 });
    const err = await c.prepare().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DailyClientError);
    expect((err as DailyClientError).code).toBe('chromium_launch_failed');
    expect((err as Error).message).toContain('/bin/true');
    expect(existsSync(c.chromiumUserDataDir as string)).toBe(false);
    // prepare() keeps failing the same way; close() is still fine.
    await expect(c.prepare()).rejects.toBe(err);
    await c.close();
  });
});

describe.skipIf(!haveChromium)('daily client in Chromium (real daily-js)', () => {
  it('loads daily-js, createCallObject() succeeds; join against unreachable Daily fails clearly; close leaves no process', async () => {
    const c = client();
    const ev = recorder(c);
    const t0 = Date.now();
    await c.prepare();
    const prepareMs = Date.now() - t0;
    const dir = c.chromiumUserDataDir as string;
    expect((await findProcessesWithArg(dir)).length).toBeGreaterThan(0);
    expect(prepareMs).toBeLessThan(15_000);

    const t1 = Date.now();
    const err = await c.join({ roomUrl: ROOM, token: 'not-a-token', userName: 'bot', timeoutMs: 15_000 }).catch((e: unknown) => e);
    const joinMs = Date.now() - t1;
    expect(err).toBeInstanceOf(JoinError);
    const je = err as JoinError;
    expect(je.code).toBe('daily_bundle_unavailable');
    expect(je.retryable).toBe(true);
    expect(je.message).toMatch(
      /^Daily's call-machine bundle could not be loaded from https:\/\/c\.daily[^ ]*\/call-machine-object-bundle\.js/,
    );
    expect(je.message).not.toContain('not-a-token');
    expect(joinMs).toBeLessThan(15_000);
    // daily-js also emits a fatal `error` (and `left-meeting`): the rejection is the one report.
    expect(ev.seen.filter((e) => e.event === 'error' || e.event === 'left-meeting')).toEqual([]);

    await c.close();
    await c.close(); // idempotent
    await expectNoChromium(dir);
  }, 30_000);

  it('join() ends at our own timeout when the platform never answers', async () => {
    const si = await CallMachineStandIn.start({ onJoin: 'hang' });
    const c = client(si.bundleUrl);
    const ev = recorder(c);
    try {
      await c.prepare();
      const t0 = Date.now();
      const err = await c.join({ roomUrl: ROOM, token: 't', userName: 'bot', timeoutMs: 1_200 }).catch((e: unknown) => e);
      const ms = Date.now() - t0;
      expect(err).toBeInstanceOf(JoinError);
      expect((err as JoinError).code).toBe('join_timeout');
      expect((err as JoinError).retryable).toBe(true);
      expect(ms).toBeGreaterThanOrEqual(1_150);
      expect(ms).toBeLessThan(3_000);
      // Our leave() after the timeout makes daily-js say left-meeting: not a meeting we were in.
      await new Promise((r) => setTimeout(r, 300));
      expect(ev.seen).toEqual([]);
    } finally {
      await c.close();
      await si.close();
    }
    await expectNoChromium(c.chromiumUserDataDir);
  });

  it('join() rejected by the platform gives a typed, non-retryable error for an expired token', async () => {
    const si = await CallMachineStandIn.start({ onJoin: { errorType: 'exp-token', errorMsg: 'Meeting token has expired' } });
    const c = client(si.bundleUrl);
    try {
      const err = await c.join({ roomUrl: ROOM, token: 't', userName: 'bot', timeoutMs: 5_000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(JoinError);
      expect((err as JoinError).code).toBe('daily_join_exp-token');
      expect((err as JoinError).retryable).toBe(false);
      expect((err as JoinError).message).toContain('Meeting token has expired');
    } finally {
      await c.close();
      await si.close();
    }
  });

  describe('with the call-machine stand-in', () => {
    let si: CallMachineStandIn;
    let c: DailyBrowserCallClient;
    let ev: ReturnType<typeof recorder>;
    let localSessionId = '';

    beforeAll(async () => {
      si = await CallMachineStandIn.start({ dialinReadyEndpoint: 'sip:room-1@patchbay.sip.daily.test' });
      c = client(si.bundleUrl);
      ev = recorder(c);
      await c.prepare();
    });

    afterAll(async () => {
      await c?.close();
      await si?.close();
    });

    it('join resolves; joined-meeting and dialin-ready reach Node', async () => {
      const t0 = Date.now();
      const res = await c.join({ roomUrl: ROOM, token: 'bot-token', userName: 'patchbay bot', timeoutMs: 5_000 });
      expect(Date.now() - t0).toBeLessThan(2_000);
      localSessionId = res.localSessionId;
      expect(localSessionId).toMatch(/^[0-9a-f-]{36}$/);
      const joinAction = await si.waitForAction('join-meeting');
      expect(joinAction.msg.properties).toMatchObject({ url: ROOM, token: 'bot-token', userName: 'patchbay bot' });
      const joined = ev.last('joined-meeting') ?? (await ev.next('joined-meeting'));
      expect(joined.localSessionId).toBe(localSessionId);
      expect(joined.participants).toEqual([{ sessionId: localSessionId, local: true, userName: 'patchbay bot', userId: localSessionId }]);
      const ready = ev.last('dialin-ready') ?? (await ev.next('dialin-ready'));
      expect(ready).toEqual({ sipEndpoint: 'sip:room-1@patchbay.sip.daily.test' });
    });

    it('platform events reach Node with the interface payloads', async () => {
      si.addParticipant({ sessionId: 'caller-1', userName: '+15550001234', participantType: 'sip-dial-in', toneHz: 440 });
      expect(await ev.next('participant-joined')).toEqual({
        participant: { sessionId: 'caller-1', userName: '+15550001234', userId: 'caller-1', local: false, isSip: true },
      });

      si.dialinConnected({
        sessionId: 'caller-1',
        sipFrom: 'sip:+15550001234@carrier',
        sipEndpoint: 'sip:room-1@x',
        sipHeaders: { 'X-Call': '7' },
      });
      expect(await ev.next('dialin-connected')).toEqual({
        sessionId: 'caller-1',
        sipFrom: 'sip:+15550001234@carrier',
        sipEndpoint: 'sip:room-1@x',
        sipHeaders: { 'X-Call': '7' },
      });

      si.dtmf('7', 'caller-1');
      expect(await ev.next('dtmf-event')).toEqual({ tone: '7', sessionId: 'caller-1' });

      const at = new Date('2026-01-02T03:04:05.678Z');
      si.transcription({ participantId: 'caller-1', text: 'I want to pay', isFinal: false, timestamp: at });
      expect(await ev.next('transcription-message')).toEqual({
        participantId: 'caller-1',
        text: 'I want to pay',
        isFinal: false,
        timestampMs: at.getTime(),
      });
      si.transcription({ participantId: 'caller-1', text: 'my bill' });
      expect((await ev.next('transcription-message')).isFinal).toBe(true);

      si.appMessage({ hello: 'bot' }, 'observer-1');
      expect(await ev.next('app-message')).toEqual({ data: { hello: 'bot' }, fromId: 'observer-1' });

      si.post({ action: 'dialin-warning', errorMsg: 'slow SIP leg', sessionId: 'caller-1' });
      expect(await ev.next('dialin-warning')).toEqual({ errorMsg: 'slow SIP leg', sessionId: 'caller-1' });
      si.post({ action: 'dialin-error', errorMsg: 'no answer' });
      expect(await ev.next('dialin-error')).toEqual({ errorMsg: 'no answer' });
    });

    it('each action reaches the platform with the right arguments', async () => {
      await c.sendDTMF({ sessionId: 'caller-1', tones: '12#' });
      expect((await si.waitForAction('send-dtmf')).msg).toMatchObject({ sessionId: 'caller-1', tones: '12#' });

      await c.sipCallTransfer({ sessionId: 'caller-1', toEndPoint: '+15550009999' });
      expect((await si.waitForAction('sip-call-transfer', 2_000, (a) => a.msg.useSipRefer === false)).msg).toMatchObject({
        sessionId: 'caller-1',
        toEndPoint: '+15550009999',
      });

      await c.sipRefer({ sessionId: 'caller-1', toEndPoint: 'sip:desk@pbx.example' });
      expect((await si.waitForAction('sip-call-transfer', 2_000, (a) => a.msg.useSipRefer === true)).msg).toMatchObject({
        sessionId: 'caller-1',
        toEndPoint: 'sip:desk@pbx.example',
      });

      await c.startTranscription({ language: 'de' });
      expect((await si.waitForAction('daily-method-start-transcription')).msg).toMatchObject({ language: 'de' });
      await c.stopTranscription();
      await si.waitForAction('daily-method-stop-transcription');

      await c.sendAppMessage({ kind: 'status', n: 1 }, 'observer-1');
      expect((await si.waitForAction('app-msg')).msg).toMatchObject({ data: { kind: 'status', n: 1 }, to: 'observer-1' });
    });

    it('a platform failure of an action rejects with a typed error', async () => {
      si.options.failActions = { 'send-dtmf': 'SIP leg is gone' };
      try {
        const err = await c.sendDTMF({ sessionId: 'caller-1', tones: '5' }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(DailyClientError);
        expect((err as DailyClientError).code).toBe('daily_sendDTMF_failed');
        expect((err as Error).message).toContain('SIP leg is gone');
        // daily-js validates arguments before anything is sent.
        const bad = await c.sendDTMF({ sessionId: 'caller-1', tones: 'x' }).catch((e: unknown) => e);
        expect((bad as Error).message).toContain('not valid DTMF tone');
      } finally {
        si.options.failActions = {};
      }
    });

    it('sendAudio resolves after the play-out time and the platform hears the bot', async () => {
      const rate = 16_000;
      const pcm = new Int16Array(rate * 0.4).map((_, i) => Math.round(9000 * Math.sin((2 * Math.PI * 300 * i) / rate)));
      const before = si.micActivity.length;
      const t0 = Date.now();
      await c.sendAudio({ pcm, sampleRate: rate, text: 'hello' });
      const ms = Date.now() - t0;
      expect(ms).toBeGreaterThanOrEqual(380);
      // Generous upper bound: the test machine may be shared with other heavy work.
      expect(ms).toBeLessThan(3_000);
      // The bundle's level report travels by another path (WebSocket) than the play-out report.
      const heard = await si.waitFor(() => si.micActivity.slice(before).find((m) => !m.active), 2_000, 'end of bot audio');
      // A 300 Hz sine at 9000/32768 has an RMS of 0.19.
      expect(heard.rms).toBeGreaterThan(0.15);
      expect(heard.rms).toBeLessThan(0.25);
      expect(si.speeches.at(-1)).toMatchObject({ text: 'hello', durationMs: 400 });

      // Empty PCM (text only) resolves at once.
      await c.sendAudio({ pcm: new Int16Array(0), sampleRate: rate, text: 'nothing' });
      // A sample rate Web Audio cannot take is a clear error, not a hang.
      const bad = await c.sendAudio({ pcm: new Int16Array(10), sampleRate: 1 }).catch((e: unknown) => e);
      expect(bad).toBeInstanceOf(DailyClientError);
      expect((bad as DailyClientError).code).toBe('audio_play_failed');
    });

    it('sendAudio is abortable', async () => {
      const rate = 24_000;
      const pcm = new Int16Array(rate * 2).fill(3000);
      const ac = new AbortController();
      const t0 = Date.now();
      const p = c.sendAudio({ pcm, sampleRate: rate }, ac.signal);
      setTimeout(() => ac.abort(), 200);
      const err = await p.catch((e: unknown) => e);
      expect((err as Error).name).toBe('AbortError');
      expect(Date.now() - t0).toBeLessThan(1_500);
      // The queue is free again: a short clip plays at once.
      const t1 = Date.now();
      await c.sendAudio({ pcm: new Int16Array(rate * 0.1).fill(2000), sampleRate: rate });
      expect(Date.now() - t1).toBeLessThan(1_500);
    });

    it('receiveAudio(true) delivers 20 ms PCM16 frames of the caller', async () => {
      const frames: CallClientEventMap['audio-frame'][] = [];
      const off = c.on('audio-frame', (f) => frames.push(f));
      await c.receiveAudio(true);
      const deadline = Date.now() + 3_000;
      while (frames.length < 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await c.receiveAudio(false);
      off();
      expect(frames.length).toBeGreaterThanOrEqual(20);
      const f = frames[frames.length - 1] as CallClientEventMap['audio-frame'];
      expect(f.participantId).toBe('caller-1');
      expect(f.sampleRate).toBe(16_000);
      expect(f.pcm.length).toBe(320);
      // The caller's 440 Hz tone at gain 0.3: zero crossings ≈ 2 × 440 × 0.02 s ≈ 17.6 per frame.
      const loud = frames.filter((x) => Math.max(...x.pcm) > 5_000);
      expect(loud.length).toBeGreaterThan(5);
      const last = loud[loud.length - 1] as CallClientEventMap['audio-frame'];
      let crossings = 0;
      for (let i = 1; i < last.pcm.length; i++) if ((last.pcm[i - 1] as number) < 0 !== (last.pcm[i] as number) < 0) crossings++;
      expect(crossings).toBeGreaterThanOrEqual(15);
      expect(crossings).toBeLessThanOrEqual(20);
    });

    it('ejectParticipant = updateParticipant(id, {eject: true}); the caller leaves', async () => {
      await c.ejectParticipant('caller-1');
      expect((await si.waitForAction('update-participant')).msg).toEqual({
        action: 'update-participant',
        id: 'caller-1',
        properties: { eject: true },
      });
      expect(await ev.next('participant-left')).toMatchObject({ participant: { sessionId: 'caller-1', isSip: true } });
      expect((ev.last('dialin-stopped') ?? (await ev.next('dialin-stopped'))).sessionId).toBe('caller-1');
    });

    it('a fatal platform error surfaces as a fatal error event', async () => {
      si.fatalError('ejected', 'You were ejected');
      expect(await ev.next('error')).toEqual({ message: 'You were ejected', fatal: true, code: 'ejected' });
    });

    it('can join again after leave, and close() leaves no Chromium process', async () => {
      await c.leave();
      const res = await c.join({ roomUrl: ROOM, token: 'bot-token', userName: 'patchbay bot', timeoutMs: 5_000 });
      expect(res.localSessionId).not.toBe(localSessionId);
      const dir = c.chromiumUserDataDir;
      const leftP = ev.next('left-meeting');
      await c.close();
      expect(await leftP).toEqual({ reason: 'left' });
      expect(si.actions.at(-1)?.action).toBe('leave-meeting');
      await expectNoChromium(dir);
      await expect(c.sendDTMF({ sessionId: 'x', tones: '1' })).rejects.toThrow(/closed/);
    });
  });

  it('Chromium exits by itself when its worker is killed with SIGKILL', async () => {
    const code = [
      "const { DailyBrowserCallClient } = await import('./src/daily/browser/client.ts');",
      "const { pino } = await import('pino');",
      `const c = new DailyBrowserCallClient({ apiUrl: 'x', logger: pino({ level: 'silent' }), chromiumPath: '${CHROMIUM}' });`,
      'await c.prepare();',
      'console.log(JSON.stringify({ dir: c.chromiumUserDataDir }));',
      'setInterval(() => {}, 1000);',
    ].join('\n');
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      cwd: process.cwd(),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const dir = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`child did not prepare: ${out}`)), 20_000);
      child.stdout.on('data', (d: Buffer) => {
        out += String(d);
        const m = /\{"dir":"([^"]+)"\}/.exec(out);
        if (m?.[1]) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      child.once('exit', () => reject(new Error(`child exited early: ${out}`)));
    });
    expect((await findProcessesWithArg(dir)).length).toBeGreaterThan(0);
    child.kill('SIGKILL');
    expect(await waitForNoProcesses(dir, 5_000)).toEqual([]);
    // The dir stays (nobody could remove it); the next prepare() anywhere sweeps it.
    expect(existsSync(dir)).toBe(true);
    const { sweepStaleUserDataDirs } = await import('../../../src/daily/browser/chromium.js');
    expect(await sweepStaleUserDataDirs()).toContain(dir);
    expect(existsSync(dir)).toBe(false);
  }, 30_000);
});
