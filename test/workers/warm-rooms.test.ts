/**
 * Warm rooms (WARM_ROOMS) end to end: the real emulator, the real app, real worker processes.
 * A warm slot is a room with the bot already joined and its SIP endpoint ready; a call takes it
 * with one pinlessCallUpdate carrying the caller's display name.
 */
import { mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { CallRecord } from '../../src/admission/dispatcher.js';
import { startVoiceStandIns, type VoiceStandIns } from '../../src/testing/voice-standins.js';
import { encodeWav } from '../../src/voice/wav.js';
import { FIXTURE_BOTS, ROOT } from '../helpers/ops.js';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';

const FROM = '+15557654321';
let stack: Stack | undefined;
let voice: VoiceStandIns | undefined;
let cacheDir: string | undefined;
afterEach(async () => {
  if (cacheDir) rmSync(cacheDir, { recursive: true, force: true });
  cacheDir = undefined;
  await stack?.close();
  stack = undefined;
  await voice?.close();
  voice = undefined;
});

async function until<T>(what: string, f: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function start(env: Record<string, string> = {}, warm = 1): Promise<Stack> {
  stack = await startStack({
    env: { BOTS_DIR: FIXTURE_BOTS, DEFAULT_BOT: 'greeting', WARM_ROOMS: String(warm), ...env },
    emulator: { holdTimeoutMs: 15_000 },
  });
  const s = stack;
  await until('warm slots ready', () => s.rt.warm!.stats().ready === warm, 20_000);
  return s;
}

const updatesOf = (s: Stack, callId: string) =>
  s.emulator.requestLog.filter((r) => r.path.endsWith('/pinlessCallUpdate') && r.callId === callId);
const roomExists = (s: Stack, name: string) => s.emulator.snapshot().rooms.some((r) => r.name === name);

/** A call that waits for the bot's words, lingers a moment, then presses a key (the bot hangs up). */
function place(s: Stack, lingerMs = 200) {
  return s.emulator.placeCall({
    to: NUMBER,
    from: FROM,
    script: [{ waitFor: 'say', match: 'Caller' }, { wait: lingerMs }, { press: '1' }],
  });
}

describe('warm rooms', () => {
  it("a warm call connects with one update to the ready endpoint, the caller's display name and the routed bot; the slot is refilled", async () => {
    const s = await start();
    const [slot] = s.rt.warm!.slots();
    // Named like every room of this replica (pb-<replica>-…), so a restart finds it among its leftovers.
    expect(slot!.roomName).toMatch(new RegExp(`^pb-${s.rt.config.resilience.replicaId}-`));
    expect(s.emulator.snapshot().rooms.find((r) => r.name === slot!.roomName)!.sipEndpoints[0]!.ready).toBe(true);

    const call = place(s, 500);
    const name = await until(
      'the SIP participant in the warm room',
      () =>
        s.emulator
          .snapshot()
          .rooms.find((r) => r.name === slot!.roomName)
          ?.participants.find((p) => p.isSip)?.userName,
    );
    expect(name).toBe(FROM);
    const end = await call.ended;
    expect(end.reason).toBe('ejected');
    const bot = end.transcript.filter((l) => l.who === 'bot').map((l) => l.text);
    expect(bot[0]).toBe('Welcome to patchbay.');
    expect(bot[1]).toBe(`Caller ${FROM}.`);

    const rec = await s.waitEnded(call.callId);
    expect(rec.path).toBe('warm');
    expect(rec.roomName).toBe(slot!.roomName);
    expect(rec.bot).toBe('greeting');
    expect(rec.workerPid).toBe(slot!.pid);
    expect(rec.outcome).toBe('completed');
    const updates = updatesOf(s, call.callId);
    expect(updates).toHaveLength(1);
    expect(updates[0]!.status).toBe(200);
    // The update went to an endpoint that was ready before the webhook arrived.
    expect(slot!.readyAtMs).toBeLessThan(rec.timeline.received!);
    const t = rec.timeline;
    for (const k of [
      'received',
      'room_created',
      'queued',
      'worker_assigned',
      'joined',
      'dialin_ready',
      'forward_sent',
      'forwarded',
      'connected',
      'first_audio',
      'bot_started',
      'ended',
    ] as const) {
      expect(t[k], k).toBeDefined();
    }
    expect(t.first_audio!).toBeGreaterThanOrEqual(t.connected!);

    // Refilled with a new room and worker; the used room is deleted after the call.
    await until('a new ready slot', () => s.rt.warm!.stats().ready === 1 && s.rt.warm!.slots()[0]!.roomName !== slot!.roomName);
    expect(s.rt.warm!.stats().taken).toBe(1);
    await until('the used room deleted', () => !roomExists(s, slot!.roomName));
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    expect(metrics).toMatch(/patchbay_warm_slots\{state="ready"\} 1/);
    expect(metrics).toMatch(/patchbay_call_path_total\{path="warm"\} 1/);
    expect(Number(/^patchbay_warm_slot_idle_seconds_total (\S+)$/m.exec(metrics)![1])).toBeGreaterThan(0);
  });

  it('a malformed From (a lone UTF-16 surrogate, CR/LF) on the warm path: the caller is connected under a clean display name (issue 21, item 10)', async () => {
    const s = await start({}, 2);
    const froms = [
      { from: '+1555\uD800765', clean: '+1555\uFFFD765' },
      { from: 'Mallory\r\nX-Evil: 1\u0007', clean: 'Mallory X-Evil: 1' },
    ];
    const calls = froms.map(({ from }) =>
      s.emulator.placeCall({ to: NUMBER, from, script: [{ waitFor: 'say', match: 'Caller' }, { wait: 300 }, { press: '1' }] }),
    );
    const sipName = (callId: string) =>
      s.emulator
        .snapshot()
        .rooms.find((r) => r.sipEndpoints.some((e) => e.callId === callId))
        ?.participants.find((p) => p.isSip)?.userName;
    const names = await Promise.all(calls.map((call) => until('the SIP participant', () => sipName(call.callId), 20_000)));
    expect(names).toEqual(froms.map((f) => f.clean));
    for (const [i, call] of calls.entries()) {
      const end = await call.ended;
      expect(end.reason).toBe('ejected');
      expect(end.transcript.filter((l) => l.who === 'bot').map((l) => l.text)).toContain(`Caller ${froms[i]!.clean}.`);
      const rec = await s.waitEnded(call.callId);
      expect(rec.path).toBe('warm');
      expect(rec.outcome).toBe('completed');
      expect(rec.from).toBe(froms[i]!.clean);
    }
  });

  it('a burst of 3×WARM_ROOMS calls: the first take the warm slots, the rest a room each, none lost', async () => {
    const warm = 2;
    const s = await start({ MAX_CONCURRENT_BOTS: '8' }, warm);
    const calls = Array.from({ length: 3 * warm }, () => place(s, 300));
    const ends = await Promise.all(calls.map((c) => c.ended));
    expect(ends.map((e) => e.reason)).toEqual(calls.map(() => 'ejected'));
    const recs: CallRecord[] = await Promise.all(calls.map((c) => s.waitEnded(c.callId)));
    expect(recs.every((r) => r.outcome === 'completed')).toBe(true);
    const byArrival = [...recs].sort((a, b) => a.timeline.received! - b.timeline.received!);
    // Warm slots go first: the first call in is warm, and at least WARM_ROOMS calls are.
    expect(byArrival[0]!.path).toBe('warm');
    expect(recs.filter((r) => r.path === 'warm').length).toBeGreaterThanOrEqual(warm);
    expect(recs.filter((r) => r.path === 'cold').length).toBeGreaterThanOrEqual(1);
    for (const c of calls) expect(updatesOf(s, c.callId)).toHaveLength(1);
  });

  it('recycles a slot at WARM_ROOM_MAX_AGE_MS (new room, old one deleted); a call during the recycle is not lost', async () => {
    const s = await start({ WARM_ROOM_MAX_AGE_MS: '4000' });
    const first = s.rt.warm!.slots()[0]!;
    // The moment the slot is recycled, a call arrives: usually while the replacement is still
    // refilling (no slot ready), sometimes just after it became ready (the refill is a few ms here).
    await until('the recycle', () => s.rt.warm!.stats().recycled === 1, 15_000);
    const during = place(s, 100);
    expect((await during.ended).reason).toBe('ejected');
    const rec = await s.waitEnded(during.callId);
    expect(rec.outcome).toBe('completed');
    // Its own room, or the replacement slot if that won the race — never the recycled room.
    expect(rec.roomName).not.toBe(first.roomName);
    await until('a fresh ready slot', () => s.rt.warm!.stats().ready === 1 && s.rt.warm!.slots()[0]!.roomName !== first.roomName);
    await until('the recycled room deleted', () => !roomExists(s, first.roomName));
    // The fresh slot serves the next call.
    const after = place(s, 100);
    expect((await after.ended).reason).toBe('ejected');
    expect((await s.waitEnded(after.callId)).path).toBe('warm');
  });

  it("an idle slot's worker SIGKILLed: the slot is replaced and its room deleted; the next call is warm", async () => {
    const s = await start();
    const slot = s.rt.warm!.slots()[0]!;
    process.kill(slot.pid, 'SIGKILL');
    await until('a replacement slot', () => s.rt.warm!.stats().ready === 1 && s.rt.warm!.slots()[0]!.pid !== slot.pid, 20_000);
    await until("the dead slot's room deleted", () => !roomExists(s, slot.roomName));
    expect(s.rt.warm!.stats().lost).toBeGreaterThanOrEqual(1);
    const call = place(s);
    expect((await call.ended).reason).toBe('ejected');
    expect((await s.waitEnded(call.callId)).path).toBe('warm');
  });

  it('the room expires while the slot is idle (Daily ejects the bot): the slot is replaced by a new room', async () => {
    const s = await start();
    const slot = s.rt.warm!.slots()[0]!;
    const update = (properties: Record<string, unknown>) =>
      fetch(`${s.emulator.apiUrl}/rooms/${slot.roomName}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${s.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ properties }),
      });
    expect((await update({ exp: Math.floor(Date.now() / 1000) - 10 })).status).toBe(400);
    expect((await update({ exp: Math.ceil(Date.now() / 1000) + 1 })).status).toBe(200);
    await until(
      'a replacement slot in a new room',
      () => s.rt.warm!.stats().ready === 1 && s.rt.warm!.slots()[0]!.roomName !== slot.roomName,
      20_000,
    );
    expect(s.rt.warm!.stats().lost).toBeGreaterThanOrEqual(1);
    await until('the expired room deleted', () => !roomExists(s, slot.roomName));
    const call = place(s);
    expect((await call.ended).reason).toBe('ejected');
    expect((await s.waitEnded(call.callId)).path).toBe('warm');
  });

  it('drain closes idle slots and deletes their rooms', async () => {
    const s = await start({}, 2);
    const rooms = s.rt.warm!.slots().map((x) => x.roomName);
    const pids = s.rt.warm!.slots().map((x) => x.pid);
    await s.rt.dispatcher.drain(5_000);
    expect(s.rt.warm!.stats().ready).toBe(0);
    await until("the slots' rooms deleted", () => rooms.every((r) => !roomExists(s, r)));
    for (const pid of pids) {
      expect(() => process.kill(pid, 0)).toThrow();
    }
  });

  it('the greeting is synthesized before the call: its audio is sent before any speech request of the call', async () => {
    voice = await startVoiceStandIns({ firstChunkMs: 150 });
    // A shared cache dir: the slot refilled during the call finds the greeting on disk (no second request).
    cacheDir = mkdtempSync(path.join(os.tmpdir(), 'pb-tts-'));
    const s = await start({
      TTS_PROVIDER: 'openai',
      TTS_BASE_URL: voice.baseUrl,
      OPENAI_API_KEY: 'sk-test-standin',
      TTS_CACHE_DIR: cacheDir,
    });
    const greetings = voice.requests.filter((r) => r.body.input === 'Welcome to patchbay.');
    expect(greetings).toHaveLength(1);
    const before = voice.requests.length;
    const placedAt = Date.now();
    const call = place(s);
    expect((await call.ended).reason).toBe('ejected');
    const rec = await s.waitEnded(call.callId);
    const during = voice.requests.slice(before);
    // The call's own speech (the second line) was requested; the greeting was not.
    expect(during.some((r) => r.body.input === `Caller ${FROM}.`)).toBe(true);
    expect(during.some((r) => r.body.input === 'Welcome to patchbay.')).toBe(false);
    // The first audio of the call went out before its first speech request started.
    expect(rec.timeline.first_audio).toBeDefined();
    expect(rec.timeline.first_audio!).toBeLessThanOrEqual(Math.min(...during.map((r) => r.startedAtMs)));
    expect(during.every((r) => r.startedAtMs >= placedAt)).toBe(true);
    // The refilled slot's worker took the greeting from the shared dir.
    await until('a refilled slot', () => s.rt.warm!.stats().ready === 1 && s.rt.warm!.stats().taken === 1);
    expect(voice.requests.filter((r) => r.body.input === 'Welcome to patchbay.')).toHaveLength(1);
    expect(readdirSync(cacheDir).filter((f) => f.endsWith('.pcm')).length).toBeGreaterThanOrEqual(2);
  });

  it('an audio greeting (a WAV file) is read before the call and played at connect, from memory', async () => {
    // A bot of our own in a temp dir: greeting { audio: 'hello.wav' } (relative to the bot file).
    cacheDir = mkdtempSync(path.join(os.tmpdir(), 'pb-audio-greeting-'));
    const rate = 16_000;
    const tone = Int16Array.from({ length: rate * 0.4 }, (_, i) => Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / rate)));
    const wav = path.join(cacheDir, 'hello.wav');
    writeFileSync(wav, encodeWav(tone, rate));
    const sdk = path.join(ROOT, 'src/sdk/index.js');
    writeFileSync(
      path.join(cacheDir, 'audio-greeter.ts'),
      `import { defineBot } from ${JSON.stringify(sdk)};
export default defineBot({ name: 'audio-greeter', greeting: { audio: 'hello.wav' }, async onCall(call) { await call.say('After the tone.'); await call.hangup(); } });
`,
    );
    const s = await start({ BOTS_DIR: cacheDir, DEFAULT_BOT: 'audio-greeter' });
    // The slot is ready: its worker has the greeting in memory. Without the file, the call still plays it.
    renameSync(wav, `${wav}.gone`);
    const call = s.emulator.placeCall({ to: NUMBER, from: FROM, script: [{ waitFor: 'say', match: 'After the tone' }, { wait: 100 }] });
    await call.ended;
    const rec = await s.waitEnded(call.callId);
    expect(rec.path).toBe('warm');
    expect(rec.outcome).toBe('completed');
    expect(rec.botEvents.map((e) => [e.kind, e.value])).toEqual([
      ['play', wav],
      ['say', 'After the tone.'],
      ['hangup', expect.any(String) as string],
    ]);
    expect(rec.timeline.first_audio).toBeDefined();
    expect(rec.timeline.first_audio!).toBeGreaterThanOrEqual(rec.timeline.connected!);
  });
});

describe('the warm update sent by the parent (issue 27)', () => {
  it("reaches Daily at hand-over even while the slot's worker is frozen (SIGSTOP); once; the call runs when the worker resumes", async () => {
    const s = await start();
    const [slot] = s.rt.warm!.slots();
    process.kill(slot!.pid, 'SIGSTOP');
    let call: ReturnType<typeof place> | undefined;
    try {
      call = place(s);
      const c = call;
      // The worker cannot send anything: the update comes from the parent.
      await until('the update, from the parent', () => updatesOf(s, c.callId).length > 0, 5_000);
      expect(updatesOf(s, c.callId).map((u) => u.status)).toEqual([200]);
    } finally {
      process.kill(slot!.pid, 'SIGCONT');
    }
    expect((await call.ended).reason).toBe('ejected');
    const rec = await s.waitEnded(call.callId);
    expect(rec).toMatchObject({ path: 'warm', outcome: 'completed', workerPid: slot!.pid });
    expect(rec.recovery).toBeUndefined();
    expect(updatesOf(s, call.callId)).toHaveLength(1);
  });

  it('answered 503 once, then accepted: the parent retries it, the caller is connected once, by the warm bot', async () => {
    const s = await start();
    const [slot] = s.rt.warm!.slots();
    s.emulator.faults.inject({ method: 'POST', path: '/dialin/pinlessCallUpdate', status: 503, times: 1 });
    const call = place(s);
    expect((await call.ended).reason).toBe('ejected');
    const rec = await s.waitEnded(call.callId);
    expect(rec).toMatchObject({ path: 'warm', outcome: 'completed', workerPid: slot!.pid });
    expect(rec.recovery).toBeUndefined();
    expect(updatesOf(s, call.callId).map((u) => u.status)).toEqual([503, 200]);
  });

  it('the worker killed between the accepted update and the caller’s arrival: no second update (the caller left the hold)', async () => {
    const s = await start();
    const [slot] = s.rt.warm!.slots();
    s.emulator.setLatencies({ connectMs: 2_000 });
    try {
      const call = s.emulator.placeCall({ to: NUMBER, from: FROM, script: [{ wait: 20_000 }] });
      await until('the update accepted', () => updatesOf(s, call.callId).some((u) => u.status === 200), 5_000);
      process.kill(slot!.pid, 'SIGKILL');
      const rec = await s.waitEnded(call.callId);
      expect(rec.outcome).toBe('worker_crashed');
      expect(rec.recovery).toBeUndefined();
      expect(rec.timeline.forwarded).toBeGreaterThan(0);
      call.hangup();
      await call.ended;
      expect(updatesOf(s, call.callId)).toHaveLength(1);
    } finally {
      s.emulator.setLatencies({ connectMs: 0 });
    }
  });
});
