/**
 * What hearing the caller costs per call (issue 22): CPU of noise suppression (resampling to
 * 48 kHz + RNNoise WASM + back) and of the Silero VAD, on real phone audio (espeak-ng speech mixed
 * with white noise by sox, 8 kHz, 20 ms frames as the call client delivers them), as a share of
 * one core per call; and the worker's memory before and after loading RNNoise.
 *
 *   npx tsx bench/hearing.ts [--seconds 60]
 *
 * Run on a fresh process (the memory figures are this process's RSS deltas).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { record } from './lib/common.js';
import { NoiseSuppressor } from '../src/voice/denoise.js';
import { VoiceActivity } from '../src/voice/vad.js';
import { resample } from '../src/voice/tts.js';
import { decodeWav } from '../src/voice/wav.js';

const opts = new Command()
  .option('--seconds <n>', 'seconds of call audio per measurement', (v) => Number.parseInt(v, 10), 60)
  .parse()
  .opts<{ seconds: number }>();
const RATE = 8_000;
const FRAME = RATE / 50;
const MiB = 2 ** 20;
const rss = () => Math.round((process.memoryUsage().rss / MiB) * 10) / 10;

function clip(): Int16Array {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'patchbay-hearing-'));
  const f = (n: string) => path.join(dir, n);
  try {
    execFileSync('espeak-ng', ['-w', f('s.wav'), 'Hello, I am calling about my bill from last month, it is far too high.']);
    execFileSync('sox', [f('s.wav'), '-r', String(RATE), '-b', '16', f('s8.wav'), 'pad', '1', '1']);
    const secs = decodeWav(readFileSync(f('s8.wav'))).pcm.length / RATE;
    execFileSync('sox', [
      '-R',
      '-n',
      '-r',
      String(RATE),
      '-b',
      '16',
      '-c',
      '1',
      f('n.wav'),
      'synth',
      String(secs),
      'whitenoise',
      'vol',
      '0.3',
    ]);
    execFileSync('sox', ['-m', f('s8.wav'), f('n.wav'), f('mix.wav'), 'trim', '0', String(secs)]);
    return decodeWav(readFileSync(f('mix.wav'))).pcm;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** CPU ms spent by `fn` over `seconds` of audio in 20 ms frames, as a % of one core in real time. */
async function cpuShare(
  pcm: Int16Array,
  fn: (frame: Int16Array) => unknown,
): Promise<{ cpuMs: number; audioMs: number; pctOfCore: number }> {
  const frames = (opts.seconds * 1000) / 20;
  const c0 = process.cpuUsage();
  for (let i = 0; i < frames; i++) {
    const off = (i * FRAME) % (pcm.length - FRAME);
    await fn(pcm.subarray(off, off + FRAME));
  }
  const c = process.cpuUsage(c0);
  const cpuMs = (c.user + c.system) / 1000;
  const audioMs = opts.seconds * 1000;
  return { cpuMs: Math.round(cpuMs), audioMs, pctOfCore: Math.round((cpuMs / audioMs) * 1000) / 10 };
}

const pcm = clip();
const rssStart = rss();
const vad = await VoiceActivity.create({});
await vad.push(pcm.subarray(0, FRAME), RATE);
const rssVad = rss();
const ns = await NoiseSuppressor.create();
ns.process(pcm.subarray(0, FRAME), RATE);
const rssRnnoise = rss();
const states = await Promise.all(Array.from({ length: 10 }, () => NoiseSuppressor.create()));
for (const s of states) s.process(pcm.subarray(0, FRAME), RATE);
const rss10 = rss();
for (const s of states) s.close();

const resampleOnly = await cpuShare(pcm, (f) => resample(resample(f, RATE, 48_000), 48_000, RATE));
const rnnoise = await cpuShare(pcm, (f) => ns.process(f, RATE));
const vadOnly = await cpuShare(pcm, (f) => vad.push(f, RATE));
const both = await cpuShare(pcm, async (f) => vad.push(ns.process(f, RATE), RATE));

const result = {
  seconds: opts.seconds,
  cpu: { resampleOnly, rnnoiseWithResampling: rnnoise, sileroVad: vadOnly, rnnoiseThenVad: both },
  memoryRssMb: { start: rssStart, afterVad: rssVad, afterRnnoise: rssRnnoise, after10MoreStates: rss10 },
  loadAvgEnd: os.loadavg().map((l) => Math.round(l * 100) / 100),
};
console.log(JSON.stringify(result, null, 2));
record('hearing', result);
ns.close();
