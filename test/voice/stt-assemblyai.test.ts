/**
 * AssemblyAI Universal Streaming (v3): the stand-in (src/testing/stt-standin-assemblyai.ts) driven
 * by the official `assemblyai` SDK and by patchbay's provider, each in a process that trusts the
 * stand-in's self-signed certificate (the SDK streams over wss:// only); then a whole call.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SPEECH_RATE, speechPcm } from '../../src/emulator/speech.js';
import { runBotTest } from '../../src/testing/index.js';
import { startAssemblyAiStandIn, type AssemblyAiStandIn } from '../../src/testing/stt-standin-assemblyai.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const client = path.join(here, '../fixtures/stt/assemblyai-client.ts');
const RATE = 8_000;
const PHRASE = 'I would like to pay the invoice from last month';
let aai: AssemblyAiStandIn;
let dir: string;
let clip: string;

function phoneSpeech(text: string): Buffer {
  const wav = spawnSync('espeak-ng', ['--stdout', '-v', 'en-us'], { input: text });
  const raw = spawnSync('sox', ['-t', 'wav', '-', '-r', String(RATE), '-b', '16', '-c', '1', '-e', 'signed-integer', '-t', 'raw', '-'], {
    input: wav.stdout,
  });
  if (raw.status !== 0) throw new Error('sox failed');
  return raw.stdout;
}

beforeAll(async () => {
  aai = await startAssemblyAiStandIn({ latencyMs: 200 });
  dir = mkdtempSync(path.join(os.tmpdir(), 'pb-aai-'));
  clip = path.join(dir, 'clip.raw');
  const b = phoneSpeech(PHRASE);
  writeFileSync(clip, b);
  aai.register(PHRASE, new Int16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)), RATE);
});
afterAll(async () => {
  await aai.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs the client fixture in a process that trusts the stand-in; resolves with its events. */
function run(
  mode: 'sdk' | 'provider',
  opts: { key?: string; rate?: number; chunkMs?: number; file?: string } = {},
): Promise<Array<Record<string, unknown>>> {
  const args = [mode, aai.url, opts.key ?? aai.apiKey, String(opts.rate ?? RATE), String(opts.chunkMs ?? 100), opts.file ?? clip];
  const p = spawn(process.execPath, ['--import', 'tsx', client, ...args], { env: { ...process.env, NODE_EXTRA_CA_CERTS: aai.certPath } });
  let out = '';
  let err = '';
  p.stdout.on('data', (b: Buffer) => (out += b.toString()));
  p.stderr.on('data', (b: Buffer) => (err += b.toString()));
  return new Promise((resolve, reject) => {
    p.on('close', (code) => {
      if (code !== 0) return reject(new Error(`client exited ${code}: ${err}`));
      resolve(
        out
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as Record<string, unknown>),
      );
    });
  });
}

describe('AssemblyAI stand-in, driven by the official assemblyai SDK', () => {
  it('a bad key is closed with 4001 before Begin: a refusal the SDK does not retry', async () => {
    const ev = await run('sdk', { key: 'wrong' });
    expect(ev[0]).toMatchObject({ event: 'refused', code: 4001, retryable: false });
    expect(aai.connections.at(-1)!.closeCode).toBe(4001);
  }, 30_000);

  it('audio messages shorter than 50 ms close the session with 3007', async () => {
    const ev = await run('sdk', { chunkMs: 20 });
    expect(ev.find((e) => e.event === 'close')).toMatchObject({ code: 3007 });
    expect(ev.some((e) => e.event === 'turn')).toBe(false);
  }, 30_000);

  it('speech gives a partial then a formatted final Turn with its words; silence gives none; Terminate ends with 1000', async () => {
    const ev = await run('sdk');
    const turns = ev.filter((e) => e.event === 'turn');
    expect(turns.map((t) => t.end_of_turn)).toEqual([false, true]);
    expect(turns[1]).toMatchObject({ transcript: PHRASE, formatted: true, words: PHRASE.split(' ').length });
    expect(aai.connections.at(-1)).toMatchObject({ query: { sample_rate: String(RATE), format_turns: 'true' }, closeCode: 1000 });

    const quiet = await run('sdk', { file: '-' });
    expect(quiet.some((e) => e.event === 'turn')).toBe(false);
  }, 30_000);
});

describe('patchbay’s AssemblyAI provider (src/voice/stt-assemblyai.ts)', () => {
  it('20 ms call frames at 8 kHz become 100 ms messages at 16 kHz; the turn comes out as final + end of turn', async () => {
    const ev = await run('provider');
    expect(ev.filter((e) => e.event !== 'interim')).toEqual([
      { event: 'final', text: PHRASE },
      { event: 'end-of-turn', text: PHRASE },
      { event: 'closed' },
    ]);
    expect(aai.connections.at(-1)!.query).toMatchObject({ sample_rate: '16000', encoding: 'pcm_s16le', keyterms_prompt: '["invoice"]' });
  }, 30_000);

  it('a bad key is an SttError with status 4001, not retryable', async () => {
    const ev = await run('provider', { key: 'wrong' });
    expect(ev[0]).toEqual({ event: 'refused', name: 'SttError', status: 4001, retryable: false });
  }, 30_000);
});

describe('a call whose bot hears through AssemblyAI (stand-in)', () => {
  it('the caller speaks, the bot hears the words and answers', async () => {
    const call = await startAssemblyAiStandIn();
    call.register(PHRASE, (await speechPcm(PHRASE))!, SPEECH_RATE);
    const before = process.env.NODE_EXTRA_CA_CERTS;
    // The worker processes trust the stand-in's certificate (NODE_EXTRA_CA_CERTS passes to workers: src/core/worker-env.ts).
    process.env.NODE_EXTRA_CA_CERTS = call.certPath;
    try {
      const r = await runBotTest(path.join(here, '../fixtures/bots/stt-assemblyai.ts'), {
        env: { ASSEMBLYAI_API_KEY: call.apiKey, ASSEMBLYAI_BASE_URL: call.baseUrl },
        caller: [{ waitFor: 'say', match: /how can I help/ }, { say: PHRASE }, { waitFor: 'say', match: /you said/, timeoutMs: 20_000 }],
      });
      expect(r.heard).toEqual([PHRASE]);
      expect(r.said.at(-1)).toBe(`you said: ${PHRASE}`);
      expect(call.connections[0]!.query).toMatchObject({ sample_rate: '16000', keyterms_prompt: '["invoice"]' });
    } finally {
      if (before === undefined) delete process.env.NODE_EXTRA_CA_CERTS;
      else process.env.NODE_EXTRA_CA_CERTS = before;
      await call.close();
    }
  }, 60_000);
});
