/**
 * ElevenLabs' multi-context WebSocket: the stand-in, spoken to with the official SDK's message
 * schemas (the SDK has no client for this socket), then patchbay's provider against it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startElevenLabsStandIn, type ElevenLabsStandIn } from '../../src/testing/elevenlabs-standin.js';
import { elevenLabsTts, elevenLabsUrl, loadElevenLabsSchemas } from '../../src/voice/tts-elevenlabs.js';
import { TtsError, type TtsTurnEvent, type TtsWord } from '../../src/voice/tts-types.js';

let s: ElevenLabsStandIn;
beforeAll(async () => {
  s = await startElevenLabsStandIn({ firstChunkMs: 50, chunkMs: 100, chunkGapMs: 5 });
});
afterAll(() => s?.close());

const schemas = loadElevenLabsSchemas();
const opts = (o: Partial<Parameters<typeof elevenLabsTts>[0]> = {}) => ({
  apiKey: s.apiKey,
  baseUrl: s.baseUrl,
  voice: 'voice1',
  sampleRate: 16000,
  ...o,
});

/** A raw socket; resolves with what the server sent until it closed. */
function session(url: string, headers: Record<string, string>, send: (ws: WebSocket) => void) {
  return new Promise<{ code: number; reason: string; messages: Array<Record<string, unknown>> }>((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    const messages: Array<Record<string, unknown>> = [];
    ws.on('open', () => send(ws));
    ws.on('message', (b: Buffer) => messages.push(JSON.parse(b.toString()) as Record<string, unknown>));
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString(), messages }));
    ws.on('error', reject);
  });
}

async function drain(turn: AsyncIterable<TtsTurnEvent>): Promise<{ samples: number; words: TtsWord[] }> {
  let samples = 0;
  const words: TtsWord[] = [];
  for await (const ev of turn) {
    if (ev.type === 'audio') samples += ev.pcm.length;
    else if (ev.type === 'words') words.push(...ev.words);
  }
  return { samples, words };
}

describe('ElevenLabs stand-in: what the vendor refuses', () => {
  it('a wrong key in the header is refused at the upgrade (401); a wrong one in the first message closes 1008', async () => {
    await expect(session(elevenLabsUrl(opts(), 16000), { 'xi-api-key': 'nope' }, () => undefined)).rejects.toThrow(/401/);
    const r = await session(elevenLabsUrl(opts(), 16000), {}, (ws) =>
      ws.send(JSON.stringify(schemas.InitializeConnectionMulti.jsonOrThrow({ text: ' ', contextId: 'a', xiApiKey: 'nope' }))),
    );
    expect(r.code).toBe(1008);
    expect(r.messages[0]).toMatchObject({ error: 'invalid_api_key' });
  });

  it('an unsupported output format and an out-of-range inactivity timeout close 1008', async () => {
    const bad = elevenLabsUrl(opts(), 16000).replace('pcm_16000', 'pcm_12000');
    const r = await session(bad, { 'xi-api-key': s.apiKey }, () => undefined);
    expect(r).toMatchObject({ code: 1008, messages: [{ error: 'invalid_output_format' }] });
    const r2 = await session(elevenLabsUrl(opts({ inactivityTimeoutS: 500 }), 16000), { 'xi-api-key': s.apiKey }, () => undefined);
    expect(r2).toMatchObject({ code: 1008, messages: [{ error: 'invalid_request' }] });
  });

  it('closes an idle socket after inactivity_timeout (input_timeout_exceeded)', async () => {
    const started = Date.now();
    const r = await session(elevenLabsUrl(opts({ inactivityTimeoutS: 1 }), 16000), { 'xi-api-key': s.apiKey }, (ws) =>
      ws.send(JSON.stringify(schemas.InitializeConnectionMulti.jsonOrThrow({ text: ' ', contextId: 'idle' }))),
    );
    expect(r).toMatchObject({ code: 1008, messages: [{ error: 'input_timeout_exceeded' }] });
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
  }, 10_000);

  it('refuses a sixth simultaneous context (max_active_conversations)', async () => {
    const r = await session(elevenLabsUrl(opts(), 16000), { 'xi-api-key': s.apiKey }, (ws) => {
      for (let i = 0; i < 6; i++) ws.send(JSON.stringify(schemas.InitializeConnectionMulti.jsonOrThrow({ text: ' ', contextId: `c${i}` })));
    });
    expect(r).toMatchObject({ code: 1008, messages: [{ error: 'max_active_conversations' }] });
  });
});

describe('ElevenLabs provider (one context per turn)', () => {
  it('a turn fed sentence by sentence is one context: audio and words from the alignment, consistent', async () => {
    const tts = elevenLabsTts(opts());
    const turn = tts.openTurn!();
    const before = s.messages.length;
    turn.push('Good morning.');
    setTimeout(() => {
      turn.push('How can I help you today?');
      turn.end();
    }, 100);
    const { samples, words } = await drain(turn);
    tts.close!();
    expect(words.map((w) => w.word)).toEqual(['Good', 'morning.', 'How', 'can', 'I', 'help', 'you', 'today?']);
    expect(words.at(-1)!.endMs).toBeLessThanOrEqual((samples / 16000) * 1000 + 1);
    expect(words.at(-1)!.endMs).toBeGreaterThan((samples / 16000) * 1000 - 200);
    const sent = s.messages.slice(before);
    expect(new Set(sent.map((m) => m.context_id)).size).toBe(1);
    expect(sent.map((m) => m.text ?? (m.close_context ? '<close>' : '?'))).toEqual([
      ' ',
      'Good morning. ',
      'How can I help you today? ',
      '<close>',
    ]);
  }, 30_000);

  it('cancel() closes the vendor context', async () => {
    const tts = elevenLabsTts(opts());
    const turn = tts.openTurn!();
    turn.push('This is a long answer that the caller will interrupt before it ends.');
    for await (const ev of turn) if (ev.type === 'audio') break;
    turn.cancel();
    await expect.poll(() => s.messages.at(-1)?.close_context, { timeout: 5_000 }).toBe(true);
    tts.close!();
  }, 15_000);

  it('a bad key, a 429 and a connection cut mid-turn are TtsErrors that say so', async () => {
    const fail = async (tts = elevenLabsTts(opts())) => {
      const turn = tts.openTurn!();
      turn.push('Hello there, this is a sentence long enough for several chunks of audio.');
      turn.end();
      const err = await drain(turn).then(
        () => undefined,
        (e: unknown) => e,
      );
      tts.close!();
      return err;
    };
    const badKey = await fail(elevenLabsTts(opts({ apiKey: 'nope' })));
    expect(badKey).toBeInstanceOf(TtsError);
    expect(badKey).toMatchObject({ status: 401, retryable: false });
    s.fault = { kind: 'reject', status: 429 };
    expect(await fail()).toMatchObject({ status: 429, retryable: true, message: expect.stringMatching(/rate limiting/) });
    s.fault = { kind: 'drop', afterChunks: 1 };
    expect(await fail()).toMatchObject({ retryable: true, message: expect.stringMatching(/closed the connection/) });
    s.fault = undefined;
  }, 30_000);
});
