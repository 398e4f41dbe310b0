/**
 * Deepgram live streaming: the stand-in (src/testing/stt-standins.ts) driven by the official
 * @deepgram/sdk pointed at it, then patchbay's provider (src/voice/stt-deepgram.ts) on the same
 * stand-in. The audio is real: espeak-ng speech resampled by sox to 8 kHz phone audio.
 */
import { spawnSync } from 'node:child_process';
import { DeepgramClient } from '@deepgram/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDeepgramStandIn, type DeepgramStandIn } from '../../src/testing/stt-standins.js';
import { deepgramStt } from '../../src/voice/stt-deepgram.js';
import { SttError, type SttEvent } from '../../src/voice/stt.js';

const RATE = 8_000;

/** espeak-ng's speech as 8 kHz PCM16 mono (sox does the resampling, as a phone line would deliver it). */
function phoneSpeech(text: string): Int16Array {
  const wav = spawnSync('espeak-ng', ['--stdout', '-v', 'en-us'], { input: text });
  const raw = spawnSync('sox', ['-t', 'wav', '-', '-r', String(RATE), '-b', '16', '-c', '1', '-e', 'signed-integer', '-t', 'raw', '-'], {
    input: wav.stdout,
    maxBuffer: 64 << 20,
  });
  if (raw.status !== 0) throw new Error(`sox failed: ${String(raw.stderr)}`);
  const b = raw.stdout;
  return new Int16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

const SHORT = 'Yes please';
const LONG = 'I would like to pay the invoice from last month';
let dg: DeepgramStandIn;
let short: Int16Array;
let long: Int16Array;

beforeAll(async () => {
  dg = await startDeepgramStandIn({ latencyMs: 200 });
  short = phoneSpeech(SHORT);
  long = phoneSpeech(LONG);
  dg.register(SHORT, short, RATE);
  dg.register(LONG, long, RATE);
});
afterAll(() => dg.close());

const sdk = (apiKey: string) =>
  new DeepgramClient({
    apiKey,
    environment: { base: dg.baseUrl, production: dg.baseUrl.replace('http:', 'ws:'), agent: '', agentRest: '' },
  });

type Socket = Awaited<ReturnType<DeepgramClient['listen']['v1']['connect']>>;

async function connect(apiKey: string, args: Record<string, unknown> = {}) {
  const socket: Socket = await sdk(apiKey).listen.v1.connect({
    model: 'nova-3',
    encoding: 'linear16',
    sample_rate: RATE,
    channels: 1,
    interim_results: 'true',
    vad_events: 'true',
    utterance_end_ms: 1000,
    reconnectAttempts: 0,
    ...args,
  });
  const messages: Array<Record<string, unknown>> = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.on('close', (e) => resolve({ code: e.code, reason: 'reason' in e ? String(e.reason) : '' })),
  );
  socket.on('message', (m) => messages.push(m as unknown as Record<string, unknown>));
  socket.connect();
  return { socket, messages, closed, open: socket.waitForOpen() };
}

/** 20 ms frames as they come off a phone line, a little faster than real time. */
async function stream(socket: Socket, pcm: Int16Array): Promise<void> {
  const frame = RATE / 50;
  for (let off = 0; off < pcm.length; off += frame) {
    const f = pcm.slice(off, off + frame);
    socket.sendMedia(new Uint8Array(f.buffer));
    if ((off / frame) % 10 === 9) await new Promise((r) => setTimeout(r, 10));
  }
}

const silence = (ms: number) => new Int16Array((RATE * ms) / 1000);
const finals = (ms: Array<Record<string, unknown>>) =>
  ms
    .filter((m) => m.type === 'Results' && m.is_final === true)
    .map((m) => (m as { channel: { alternatives: Array<{ transcript: string }> } }).channel.alternatives[0]!.transcript)
    .filter(Boolean);

async function until<T>(what: string, fn: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('Deepgram stand-in, driven by the official @deepgram/sdk', () => {
  it('refuses a bad key at the upgrade with 401', async () => {
    const c = await connect('not-the-key');
    await expect(c.open).rejects.toMatchObject({ message: expect.stringContaining('401') });
    expect(dg.refused).toContain(401);
  });

  it('refuses a missing or impossible sample rate, and an encoding it cannot decode, with 400', async () => {
    for (const args of [{ sample_rate: 3_000 }, { sample_rate: undefined }, { encoding: 'mp3' }]) {
      const before = dg.refused.length;
      const c = await connect(dg.apiKey, args);
      await expect(c.open).rejects.toMatchObject({ message: expect.stringContaining('400') });
      expect(dg.refused.slice(before)).toEqual([400]);
    }
  });

  it('transcribes the speech it receives, only that: the right words for each clip, nothing for silence', async () => {
    const c = await connect(dg.apiKey, { endpointing: 300 });
    await c.open;
    expect(dg.connections.at(-1)!.auth).toBe('header');
    await stream(c.socket, silence(1_500));
    await stream(c.socket, long);
    await stream(c.socket, silence(1_000));
    await until('the first final', () => finals(c.messages).length === 1);
    await stream(c.socket, short);
    await stream(c.socket, silence(1_000));
    await until('the second final', () => finals(c.messages).length === 2);
    expect(finals(c.messages)).toEqual([LONG, SHORT]);
    const first = c.messages.find((m) => m.type === 'Results' && m.is_final === true)!;
    expect(first).toMatchObject({ speech_final: true, channel: { alternatives: [{ confidence: expect.any(Number) }] } });
    // Speech began after the 1.5 s of silence; its words carry times within the segment.
    const words = (first as { channel: { alternatives: Array<{ words: Array<{ start: number; end: number }> }> } }).channel.alternatives[0]!
      .words;
    expect(words).toHaveLength(LONG.split(' ').length);
    expect(words[0]!.start).toBeGreaterThanOrEqual(1.4);
    expect(c.messages.filter((m) => m.type === 'SpeechStarted')).toHaveLength(2);
    expect(c.messages.some((m) => m.type === 'UtteranceEnd')).toBe(true);
    // Interim results come before each final.
    expect(c.messages.findIndex((m) => m.type === 'Results' && m.is_final === false)).toBeLessThan(c.messages.indexOf(first));
    c.socket.sendCloseStream({ type: 'CloseStream' });
    const closed = await c.closed;
    expect(closed.code).toBe(1000);
    expect(c.messages.at(-1)).toMatchObject({ type: 'Metadata', channels: 1 });
  }, 30_000);

  it('Finalize flushes the speech heard so far as a final (from_finalize)', async () => {
    const c = await connect(dg.apiKey);
    await c.open;
    await stream(c.socket, short);
    c.socket.sendFinalize({ type: 'Finalize' });
    await until('the final', () => finals(c.messages).length === 1);
    expect(c.messages.find((m) => m.type === 'Results' && m.is_final === true)).toMatchObject({ from_finalize: true });
    expect(finals(c.messages)).toEqual([SHORT]);
    c.socket.close();
  });

  it('closes with 1011 (NET-0001) after 10 s without audio; KeepAlive does not count as audio but keeps it open', async () => {
    const c = await connect(dg.apiKey);
    await c.open;
    const startedAt = Date.now();
    const kept = await connect(dg.apiKey);
    await kept.open;
    const timer = setInterval(() => kept.socket.sendKeepAlive({ type: 'KeepAlive' }), 3_000);
    const closed = await c.closed;
    clearInterval(timer);
    expect(closed.code).toBe(1011);
    expect(closed.reason).toMatch(/net0001/i);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(9_500);
    expect(kept.socket.readyState).toBe(1);
    kept.socket.close();
  }, 30_000);
});

describe('patchbay’s Deepgram provider (src/voice/stt-deepgram.ts) on the stand-in', () => {
  it('8 kHz call audio is resampled to its 16 kHz stream; finals, speech start and end of turn come out', async () => {
    const stt = deepgramStt({ apiKey: dg.apiKey, baseUrl: dg.baseUrl });
    const s = await stt.open({ language: 'en-US', keywords: ['invoice'] });
    const conn = dg.connections.at(-1)!;
    expect(conn.query).toMatchObject({
      model: 'nova-3',
      language: 'en-US',
      encoding: 'linear16',
      sample_rate: '16000',
      keyterm: 'invoice',
    });
    const events: SttEvent[] = [];
    const reading = (async () => {
      for await (const ev of s.events()) events.push(ev);
    })();
    for (const part of [silence(500), long, silence(1_000)]) {
      for (let off = 0; off < part.length; off += 160) s.write(part.subarray(off, off + 160), RATE);
    }
    await until('a final', () => events.find((e) => e.type === 'final'));
    await until('the end of turn', () => events.find((e) => e.type === 'end-of-turn'));
    const fin = events.find((e) => e.type === 'final');
    expect(fin).toMatchObject({ text: LONG, confidence: expect.any(Number) });
    expect(fin?.type === 'final' && fin.words?.length).toBe(LONG.split(' ').length);
    expect(events.map((e) => e.type)).toContain('speech-started');
    // The stand-in measured the audio at 16 kHz: as long as what was sent at 8 kHz.
    expect(conn.audioMs).toBeGreaterThan(((long.length + RATE * 1.5) / RATE) * 1000 - 50);
    await s.close();
    await reading;
    expect(conn.closeCode).toBe(1000);
  }, 30_000);

  it('a bad key is an SttError 401 that is not retryable', async () => {
    const stt = deepgramStt({ apiKey: 'wrong', baseUrl: dg.baseUrl });
    const err = await stt.open({}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SttError);
    expect(err).toMatchObject({ status: 401, retryable: false });
  });
});

describe('Flux (/v2/listen) on the stand-in', () => {
  it('the official SDK: Connected, StartOfTurn, EagerEndOfTurn and EndOfTurn with the words of the speech; a nova model is refused', async () => {
    const c = sdk(dg.apiKey).listen.v2;
    const socket = await c.connect({
      model: 'flux-general-en',
      encoding: 'linear16',
      sample_rate: RATE,
      eager_eot_threshold: 0.5,
      reconnectAttempts: 0,
    });
    const messages: Array<Record<string, unknown>> = [];
    socket.on('message', (m) => messages.push(m as unknown as Record<string, unknown>));
    socket.connect();
    await socket.waitForOpen();
    expect(dg.connections.at(-1)!.path).toBe('/v2/listen');
    for (const part of [silence(500), short, silence(1_000)]) {
      for (let off = 0; off < part.length; off += 160) socket.sendMedia(new Uint8Array(part.slice(off, off + 160).buffer));
    }
    const end = await until('EndOfTurn', () => messages.find((m) => m.event === 'EndOfTurn'));
    expect(messages[0]).toMatchObject({ type: 'Connected', sequence_id: 0 });
    const events = messages.filter((m) => m.type === 'TurnInfo' && m.event !== 'Update').map((m) => m.event);
    expect(events).toEqual(['StartOfTurn', 'EagerEndOfTurn', 'EndOfTurn']);
    expect(end).toMatchObject({ transcript: SHORT, trigger: 'model', turn_index: 0 });
    expect(messages.some((m) => m.event === 'Update')).toBe(true);
    socket.close();

    const before = dg.refused.length;
    const nova = await c.connect({ model: 'nova-3', encoding: 'linear16', sample_rate: RATE, reconnectAttempts: 0 });
    nova.connect();
    await expect(nova.waitForOpen()).rejects.toMatchObject({ message: expect.stringContaining('400') });
    expect(dg.refused.slice(before)).toEqual([400]);
  }, 30_000);

  it('patchbay’s provider with a flux model: the turn’s final and end of turn come from Flux’s EndOfTurn', async () => {
    const s = await deepgramStt({ apiKey: dg.apiKey, baseUrl: dg.baseUrl }).open({ model: 'flux-general-en' });
    expect(dg.connections.at(-1)).toMatchObject({ path: '/v2/listen', query: { model: 'flux-general-en', sample_rate: '16000' } });
    const events: SttEvent[] = [];
    const reading = (async () => {
      for await (const ev of s.events()) events.push(ev);
    })();
    for (const part of [silence(300), long, silence(1_000)]) {
      for (let off = 0; off < part.length; off += 160) s.write(part.subarray(off, off + 160), RATE);
    }
    await until('the end of turn', () => events.find((e) => e.type === 'end-of-turn'));
    expect(events.filter((e) => e.type !== 'interim').map((e) => e.type)).toEqual(['speech-started', 'final', 'end-of-turn']);
    expect(events.find((e) => e.type === 'final')).toMatchObject({ text: LONG });
    expect(events.find((e) => e.type === 'end-of-turn')).toMatchObject({ text: LONG });
    await s.close();
    await reading;
  }, 30_000);
});
