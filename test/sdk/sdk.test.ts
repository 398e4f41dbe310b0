/**
 * The bot SDK end to end: real workers, the real app, the emulator. Bot failures end the call with
 * an outcome whose detail (logged in the "call ended" line) names the bot's file and line.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBotHarness, runBotTest, type BotHarness } from '../../src/testing/index.js';
import { botFileOf, defineBot, isBot } from '../../src/sdk/index.js';
import { encodeWav } from '../../src/voice/wav.js';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/bots');
const fx = (name: string) => path.join(FIXTURES, name);
const tmp = mkdtempSync(path.join(tmpdir(), 'pb-sdk-'));
let n = 0;
const outFile = () => path.join(tmp, `probe-${++n}.jsonl`);
const readNotes = (f: string) =>
  existsSync(f)
    ? readFileSync(f, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>)
    : [];

describe('defineBot', () => {
  it('brands the bot and remembers the file that defined it', () => {
    const bot = defineBot({ name: 'inline', onCall() {} });
    expect(isBot(bot)).toBe(true);
    expect(botFileOf(bot)).toBe(path.resolve(import.meta.filename));
    expect(isBot({ name: 'x', onCall() {} })).toBe(false);
  });

  it('rejects bad definitions with a message naming the bot', () => {
    expect(() => defineBot({ name: '', onCall() {} })).toThrow(/name/);
    expect(() => defineBot({ name: 'b', onCall: 'x' as never })).toThrow(/defineBot\(b\): `onCall`/);
    expect(() => defineBot({ name: 'b', onCall() {}, idleTimeoutMs: -1 })).toThrow(/idleTimeoutMs/);
    expect(() => defineBot({ name: 'b', onCall() {}, onDtmf: 1 as never })).toThrow(/onDtmf/);
  });
});

describe('bot SDK on a real call', () => {
  let h: BotHarness;
  beforeAll(async () => {
    h = await createBotHarness({ botsDir: FIXTURES, firstBot: fx('sdk-probe.ts') });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('gives the bot the caller context and its config', async () => {
    const out = outFile();
    const r = await h.run(fx('sdk-probe.ts'), {
      from: '+15557654321',
      to: '+15550001000',
      sipHeaders: { 'X-Account': 'acme' },
      config: { mode: 'context', outFile: out, team: 'blue' },
      caller: [{ waitFor: 'say', match: /context noted/ }],
    });
    expect(r.outcome).toBe('completed');
    const [ctx, end] = readNotes(out);
    expect(ctx).toMatchObject({
      from: '+15557654321',
      to: '+15550001000',
      sipHeaders: { 'X-Account': 'acme' },
      hasRoomUrl: true,
      llmUndefined: true,
    });
    expect(ctx!.config).toMatchObject({ team: 'blue' });
    expect(end).toEqual({ onEnd: 'completed', callId: r.record.callId });
  }, 30_000);

  it('rejects a pending collectDigits with CallEndedError when the caller hangs up; onEnd gets caller_hangup', async () => {
    const out = outFile();
    const r = await h.run(fx('sdk-probe.ts'), {
      config: { mode: 'wait-digits', outFile: out },
      caller: [{ waitFor: 'say', match: /waiting/ }, { hangup: true }],
    });
    expect(r.outcome).toBe('caller_hangup');
    expect(readNotes(out)).toEqual([
      { caught: 'CallEndedError', isCallEnded: true, aborted: true },
      { onEnd: 'caller_hangup', callId: r.record.callId },
    ]);
  }, 30_000);

  it('keeps digits typed while the bot speaks (type-ahead) and calls onDtmf for each', async () => {
    const out = outFile();
    const r = await h.run(fx('sdk-probe.ts'), {
      config: { mode: 'type-ahead', outFile: out },
      caller: [{ waitFor: 'say', match: /long greeting/ }, { press: '123' }, { waitFor: 'say', match: /got/ }],
    });
    expect(r.digits).toEqual(['123']);
    expect(r.said.at(-1)).toBe('got 123');
    expect(
      readNotes(out)
        .filter((e) => 'dtmf' in e)
        .map((e) => e.dtmf),
    ).toEqual(['1', '2', '3']);
  }, 30_000);

  it('plays a WAV file and raw PCM; the caller hears audio of the right length', async () => {
    const wavFile = path.join(tmp, 'beep.wav');
    writeFileSync(wavFile, encodeWav(new Int16Array(8_000).fill(2_000), 16_000)); // 500 ms
    const r = await h.run(fx('sdk-probe.ts'), { config: { mode: 'play', wavFile }, caller: [{ waitFor: 'say', match: /played/ }] });
    expect(r.played).toEqual([wavFile, '1600 samples']);
    const bot = r.transcript.filter((l) => l.who === 'bot').map((l) => l.text);
    expect(bot).toEqual(['[audio 500 ms]', '[audio 100 ms]', 'played']);
    expect(r.outcome).toBe('completed');
  }, 30_000);

  it('transfers to a phone number with a SIP call transfer; the call ends completed', async () => {
    const out = outFile();
    const r = await h.run(fx('sdk-probe.ts'), {
      config: { mode: 'transfer-phone', outFile: out },
      caller: [{ waitFor: 'say', match: /transferring/ }],
    });
    expect(r.outcome).toBe('completed');
    expect(r.transfer).toBe('+15550009999');
    expect(r.callerEnd).toBe('transferred');
    expect(r.transcript.some((l) => l.text === 'transferred to +15550009999')).toBe(true);
    // transfer() resolves once the caller is handed over; the call is over for the bot by then.
    expect(readNotes(out)).toEqual([
      { afterTransfer: true, aborted: true },
      { onEnd: 'completed', callId: r.record.callId },
    ]);
  }, 30_000);

  it('listen() and onTranscript both get the final transcript (transcription starts at connect)', async () => {
    const out = outFile();
    const r = await h.run(fx('sdk-probe.ts'), {
      config: { mode: 'hear', outFile: out },
      caller: [{ waitFor: 'say', match: /speak now/ }, { say: 'hello there' }, { waitFor: 'say', match: /heard/ }],
    });
    expect(r.heard).toEqual(['hello there']);
    expect(r.said.at(-1)).toBe('heard hello there');
    expect(readNotes(out).filter((e) => 'transcript' in e)).toEqual([{ transcript: 'hello there' }]);
  }, 30_000);

  it('ends a silent call with idle_timeout (bot idleTimeoutMs)', async () => {
    const r = await h.run(fx('idle.ts'), { caller: [{ waitFor: 'say', match: /hi/ }] });
    expect(r.outcome).toBe('idle_timeout');
    expect(r.callerEnd).toBe('ejected');
  }, 30_000);

  it('ends a call that runs too long with max_duration (bot maxCallMs)', async () => {
    const r = await h.run(fx('max-call.ts'), { caller: [{ waitFor: 'say', match: /still talking/ }] });
    expect(r.outcome).toBe('max_duration');
    expect(r.detail).toContain('1500 ms');
  }, 30_000);

  it('a handler that throws ends the call with bot_error naming the file and line', async () => {
    const r = await h.run(fx('throws-in-oncall.ts'), { caller: [{ waitFor: 'say', match: /about to fail/ }] });
    expect(r.outcome).toBe('bot_error');
    expect(r.detail).toMatch(/^onCall: .*label.* \(.*throws-in-oncall\.ts:9:\d+\)$/);
    expect(r.callerEnd).toBe('ejected');
  }, 30_000);

  it('an error thrown from a bot timer ends the call with bot_error naming the file', async () => {
    const r = await h.run(fx('sdk-probe.ts'), { config: { mode: 'throw-later' }, caller: [{ waitFor: 'say', match: /throwing/ }] });
    expect(r.outcome).toBe('bot_error');
    expect(r.detail).toMatch(/^uncaught: escaped from a timer \(.*sdk-probe\.ts:\d+:\d+\)$/);
  }, 30_000);

  it('a bot with a syntax error ends the call with bot_load_failed naming the file and position', async () => {
    const r = await h.run(fx('broken-syntax.js'), { caller: [{ waitFor: 'connected', timeoutMs: 20_000 }], allowScriptTimeout: true });
    expect(r.outcome).toBe('bot_load_failed');
    expect(r.detail).toContain(`failed to load from ${fx('broken-syntax.js')}`);
    expect(r.detail).toMatch(/SyntaxError: missing \) after argument list \(.*broken-syntax\.js:8\)(; apology bot: completed \(.*\))?$/);
    // The bot never ran; the caller is not left on hold: the built-in apology tells them (issue 11.3).
    expect(r.said).toEqual(['We are sorry, we cannot take your call right now. Please call again later. Goodbye.']);
  }, 30_000);

  it('a module without a defineBot default export ends with bot_load_failed naming the file', async () => {
    const r = await h.run(fx('no-default.ts'), { caller: [], allowScriptTimeout: true });
    expect(r.outcome).toBe('bot_load_failed');
    expect(r.detail).toContain(fx('no-default.ts'));
    expect(r.detail).toContain('export default defineBot');
  }, 30_000);
});

describe('prewarm', () => {
  it('a failing prewarm() does not kill the worker; calls to that bot end with bot_load_failed naming the file', async () => {
    const r = await runBotTest(fx('prewarm-fails.ts'), { caller: [], allowScriptTimeout: true });
    expect(r.outcome).toBe('bot_load_failed');
    expect(r.detail).toMatch(/prewarm\(\) failed in .*prewarm-fails\.ts: model file missing \(.*prewarm-fails\.ts:7:\d+\)/);
  }, 30_000);
});

describe('harness errors', () => {
  it('a number the emulator does not serve fails fast with the caller transcript', async () => {
    const h = await createBotHarness({ botsDir: FIXTURES, firstBot: fx('idle.ts') });
    try {
      h.emulator.setPinlessDialin([]); // nothing is routed to the service any more
      const started = Date.now();
      await expect(h.run(fx('idle.ts'), { caller: [{ waitFor: 'say' }] })).rejects.toThrow(
        /the call ended \(not_in_service\) but the service never reported it/,
      );
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      await h.close();
    }
  }, 30_000);
});
