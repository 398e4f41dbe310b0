/**
 * Local recording of a whole call (issue 24, item 3): the worker writes both sides to a WAV under
 * RECORDINGS_DIR as the call goes. Real service, forked worker, emulator; espeak-ng on both sides.
 * A worker killed with SIGKILL mid-call leaves a playable file up to the kill.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { espeakTts } from '../../src/voice/tts.js';
import { recordingSummary } from '../../src/records/recording.js';
import { FIXTURE_BOTS, waitFor, waitRecord } from '../helpers/ops.js';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';
import { decimate, findClip, readWav } from './audio.js';

const CALLER_WORDS = 'I am waiting for a parcel from Lisbon';
const BOT_WORDS = 'Your parcel will arrive tomorrow morning.';
const DECIMATE = 4;

let stack: Stack | undefined;
let dir: string | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function start(): Promise<Stack> {
  dir = mkdtempSync(join(tmpdir(), 'pb-rec-'));
  return startStack({ env: { BOTS_DIR: FIXTURE_BOTS, DEFAULT_BOT: 'recorded-local', TTS_PROVIDER: 'espeak', RECORDINGS_DIR: dir } });
}

const clip = async (text: string) => decimate((await espeakTts({ sampleRate: 16_000 }).synthesize(text)).pcm, DECIMATE);

/** sox reads it as a 2-channel 16 kHz file of `seconds`. */
function soxSeconds(file: string): number {
  const info = execFileSync('soxi', [file], { encoding: 'utf8' });
  expect(info).toMatch(/Channels\s*:\s*2/);
  expect(info).toMatch(/Sample Rate\s*:\s*16000/);
  return Number(execFileSync('soxi', ['-D', file], { encoding: 'utf8' }).trim());
}

describe('local recording (RECORDING=local)', () => {
  it('writes both sides as the call goes: the caller on channel 1, the bot on channel 2, at the right times', async () => {
    stack = await start();
    const call = stack.emulator.placeCall({
      to: NUMBER,
      script: [
        { waitFor: 'say', match: 'harbour', timeoutMs: 15_000 },
        { wait: 1_500 },
        { speak: CALLER_WORDS },
        { waitFor: 'say', match: 'tomorrow', timeoutMs: 20_000 },
        { wait: 3_000 },
      ],
    });
    const rec = await stack.waitEnded(call.callId, 60_000);
    expect(rec.outcome).toBe('completed');
    const summary = recordingSummary(rec.botEvents);
    expect(summary.state).toBe('stopped');
    expect(summary.ids).toEqual([`${rec.id}.wav`]);
    const file = join(dir!, summary.ids[0]!);
    const seconds = soxSeconds(file);
    const startMs = summary.segments[0]!.startMs;
    expect(Math.abs(seconds * 1000 - (summary.segments[0]!.endMs! - startMs))).toBeLessThan(1_000);

    const wav = readWav(readFileSync(file));
    const [ch1, ch2] = wav.channels.map((c) => decimate(c, DECIMATE)) as [Float64Array, Float64Array];
    const [callerClip, botClip, greetClip] = await Promise.all([
      clip(CALLER_WORDS),
      clip(BOT_WORDS),
      clip('Thank you for calling the harbour office.'),
    ]);
    const callerIn1 = findClip(ch1, callerClip);
    const botIn2 = findClip(ch2, botClip);
    const greetIn2 = findClip(ch2, greetClip);
    console.log(
      `local correlation: caller ${callerIn1.score.toFixed(3)}, bot ${botIn2.score.toFixed(3)}, greeting ${greetIn2.score.toFixed(3)}`,
    );
    expect(callerIn1.score).toBeGreaterThan(0.9);
    expect(botIn2.score).toBeGreaterThan(0.9);
    // The greeting too: the local recording starts before the bot does.
    expect(greetIn2.score).toBeGreaterThan(0.9);
    expect(findClip(ch2, callerClip).score).toBeLessThan(0.3);
    expect(findClip(ch1, botClip).score).toBeLessThan(0.3);
    const rate = wav.sampleRate / DECIMATE;
    const saidAt = rec.botEvents.find((e) => e.kind === 'say' && e.value.includes('tomorrow'))!.atMs;
    const botAtMs = startMs + (botIn2.lag / rate) * 1000;
    expect(Math.abs(botAtMs - saidAt)).toBeLessThan(1_000);
    const callerEndMs = startMs + ((callerIn1.lag + callerClip.length) / rate) * 1000;
    expect(callerEndMs).toBeLessThan(botAtMs);
    expect(greetIn2.lag).toBeLessThan(callerIn1.lag);

    // An erasure request deletes the file.
    await waitFor('the record', async () => (await fetch(`${stack!.url}/calls/${rec.id}`)).status === 200, 10_000);
    const del = await fetch(`${stack.url}/calls/${rec.id}/recording`, { method: 'DELETE' });
    expect(await del.json()).toEqual({ deleted: [`${rec.id}.wav`] });
    expect(existsSync(file)).toBe(false);
  }, 90_000);

  it('a worker killed with SIGKILL mid-call leaves a playable file up to the kill', async () => {
    stack = await start();
    const call = stack.emulator.placeCall({
      to: NUMBER,
      script: [{ waitFor: 'say', match: 'harbour', timeoutMs: 15_000 }, { wait: 1_500 }, { speak: CALLER_WORDS }, { wait: 20_000 }],
    });
    const live = await waitRecord(stack, call.callId, (r) => r.botEvents.some((e) => e.kind === 'transcript'), 40_000);
    const file = join(dir!, `${live.id}.wav`);
    await new Promise((r) => setTimeout(r, 800));
    const killedAtMs = Date.now();
    process.kill(live.workerPid!, 'SIGKILL');
    await stack.waitEnded(call.callId, 30_000);
    const startMs = recordingSummary(live.botEvents).segments[0]!.startMs;
    // The header was fixed up as the file grew: sox reads it whole, up to (nearly) the kill.
    const seconds = soxSeconds(file);
    expect(statSync(file).size - 44).toBe(Math.round(seconds * 16_000) * 4);
    expect(seconds * 1000).toBeGreaterThan(killedAtMs - startMs - 1_500);
    expect(seconds * 1000).toBeLessThan(killedAtMs - startMs + 500);
    const wav = readWav(readFileSync(file));
    expect(findClip(decimate(wav.channels[0]!, DECIMATE), await clip(CALLER_WORDS)).score).toBeGreaterThan(0.9);
  }, 90_000);

  it('a pause is silence on both channels: what is said during it is not in the file, what comes after is', async () => {
    dir = mkdtempSync(join(tmpdir(), 'pb-rec-'));
    stack = await startStack({ env: { BOTS_DIR: FIXTURE_BOTS, DEFAULT_BOT: 'pci-local', TTS_PROVIDER: 'espeak', RECORDINGS_DIR: dir } });
    const BEFORE = 'My account is under the name Harriet';
    const SECRET = 'The secret word is marmalade sandwich';
    const call = stack.emulator.placeCall({
      to: NUMBER,
      script: [
        { waitFor: 'say', match: 'account name', timeoutMs: 15_000 },
        { wait: 1_800 },
        { speak: BEFORE },
        { waitFor: 'say', match: 'secret word', timeoutMs: 15_000 },
        { wait: 1_800 },
        { speak: SECRET },
        { waitFor: 'say', match: 'goodbye', timeoutMs: 15_000 },
        { wait: 3_000 },
      ],
    });
    const rec = await stack.waitEnded(call.callId, 60_000);
    expect(rec.outcome).toBe('completed');
    const summary = recordingSummary(rec.botEvents);
    expect(summary.pauses).toHaveLength(1);
    expect(summary.segments).toHaveLength(2);
    const wav = readWav(readFileSync(join(dir, `${rec.id}.wav`)));
    const [ch1, ch2] = wav.channels.map((c) => decimate(c, DECIMATE)) as [Float64Array, Float64Array];
    const scores = {
      before: findClip(ch1, await clip(BEFORE)).score,
      secret: findClip(ch1, await clip(SECRET)).score,
      prompt: findClip(ch2, await clip('Now say the secret word.')).score,
      after: findClip(ch2, await clip('Thank you, goodbye.')).score,
    };
    console.log(`local pause: ${JSON.stringify(scores)}`);
    expect(scores.before).toBeGreaterThan(0.9);
    expect(scores.after).toBeGreaterThan(0.9);
    expect(scores.secret).toBeLessThan(0.3);
    expect(scores.prompt).toBeLessThan(0.3);
  }, 90_000);
});
