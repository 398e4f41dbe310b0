/**
 * The caller's frames reach a streaming speech-to-text vendor from the production call client too
 * (issue 22 item 3): the real daily-js in Chromium, bridged to the emulator by the call-machine
 * stand-in. The emulated caller speaks espeak-ng audio; the bridge plays it into the caller's track
 * in the page (PCM frames → Web Audio at 48 kHz), the page's capture worklet reads the track at
 * 16 kHz, the worker sends it to the Deepgram stand-in through the official SDK, and the bot
 * (test/fixtures/bots/stt-deepgram.ts) answers with what Deepgram heard.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallMachineStandIn } from '../../../src/emulator/call-machine/stand-in.js';
import { SPEECH_RATE, speechPcm } from '../../../src/emulator/speech.js';
import { runBotTest } from '../../../src/testing/index.js';
import { startDeepgramStandIn, type DeepgramStandIn } from '../../../src/testing/stt-standins.js';
import { voicedSegments } from '../../../src/testing/speech-energy.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`SKIPPING test/daily/browser/stt.test.ts: ${CHROMIUM} is missing`);
const here = path.dirname(fileURLToPath(import.meta.url));
const bot = path.join(here, '../../fixtures/bots/stt-deepgram.ts');
const PHRASE = 'I would like to pay the invoice from last month';

describe.skipIf(!haveChromium)('a bot on the real daily-js hears the caller through Deepgram (stand-in)', () => {
  let si: CallMachineStandIn;
  let dg: DeepgramStandIn;
  let clipVoicedMs = 0;

  beforeAll(async () => {
    si = await CallMachineStandIn.start({ bridge: 'emulator' });
    dg = await startDeepgramStandIn();
    const pcm = (await speechPcm(PHRASE))!;
    dg.register(PHRASE, pcm, SPEECH_RATE);
    const segs = voicedSegments(pcm, SPEECH_RATE);
    clipVoicedMs = segs.at(-1)!.endMs - segs[0]!.startMs;
  }, 30_000);

  afterAll(async () => {
    await dg?.close();
    await si?.close();
  });

  it('the words reach Deepgram at the declared 16 kHz through the page, and the bot answers with them', async () => {
    const r = await runBotTest(bot, {
      env: {
        CALL_CLIENT: 'daily',
        CHROMIUM_PATH: CHROMIUM,
        DAILY_BUNDLE_URL: si.bundleUrl,
        WORKER_INIT_TIMEOUT_MS: '30000',
        JOIN_TIMEOUT_MS: '15000',
        DIALIN_READY_TIMEOUT_MS: '15000',
        DEEPGRAM_API_KEY: dg.apiKey,
        DEEPGRAM_BASE_URL: dg.baseUrl,
      },
      caller: [
        { waitFor: 'say', match: /how can I help/, timeoutMs: 30_000 },
        { say: PHRASE },
        { waitFor: 'say', match: /you said/, timeoutMs: 20_000 },
      ],
      timeoutMs: 60_000,
    });
    // The page's daily-js did the work: it asked for the callers' audio through the bridge.
    expect(si.actions.some((a) => a.action === 'join-meeting')).toBe(true);
    expect(dg.connections).toHaveLength(1);
    const conn = dg.connections[0]!;
    expect(conn.query).toMatchObject({ encoding: 'linear16', sample_rate: '16000', model: 'nova-3' });
    // Audio at the declared rate: the stream carried about as much audio as the caller spoke
    // (speech + a second of line noise), and the voiced part matched the clip's length (the
    // stand-in gives the words only to audio of the same voiced length: 8 kHz audio declared as
    // 16 kHz would be half as long, 48 kHz three times as long).
    expect(conn.audioMs).toBeGreaterThan(clipVoicedMs);
    // On a miss, the voiced segments the stand-in cut (their lengths, against the clip's) say why.
    expect(conn.finals, `segments ${JSON.stringify(conn.segments)}, clip ${clipVoicedMs} ms`).toEqual([PHRASE]);
    expect(r.heard).toEqual([PHRASE]);
    expect(r.said.at(-1)).toBe(`you said: ${PHRASE}`);
  }, 90_000);
});
