/**
 * Daily recording of a whole call (issue 24): the real service, its forked worker and the
 * emulator; espeak-ng speech on both sides. The recording must hold the caller's words on the
 * caller's channel and the bot's on the bot's, at the times they were said; a start Daily refuses
 * is an event of the call's record, and the call goes on.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DailyRestClient } from '../../src/daily/rest.js';
import { espeakTts } from '../../src/voice/tts.js';
import { recordingSummary } from '../../src/records/recording.js';
import { FIXTURE_BOTS, waitFor } from '../helpers/ops.js';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';
import { decimate, findClip, readWav } from './audio.js';

const CALLER_WORDS = 'I am waiting for a parcel from Lisbon';
const BOT_WORDS = 'Your parcel will arrive tomorrow morning.';
const DECIMATE = 4;

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

function env(extra: Record<string, string>): Record<string, string> {
  return { BOTS_DIR: FIXTURE_BOTS, DEFAULT_BOT: 'recorded', TTS_PROVIDER: 'espeak', ...extra };
}

const SCRIPT = [
  { waitFor: 'say' as const, match: 'harbour', timeoutMs: 15_000 },
  { wait: 1_500 },
  { speak: CALLER_WORDS },
  { waitFor: 'say' as const, match: 'tomorrow', timeoutMs: 20_000 },
  { wait: 3_000 },
];

describe('Daily recording of a call (emulator)', () => {
  it('records both sides: the caller on channel 1, the bot on channel 2, at the right times', async () => {
    stack = await startStack({ env: env({ DAILY_RECORDING_ROOMS: 'true' }) });
    const call = stack.emulator.placeCall({ to: NUMBER, script: SCRIPT });
    const rec = await stack.waitEnded(call.callId, 60_000);
    expect(rec.outcome).toBe('completed');
    const summary = recordingSummary(rec.botEvents);
    expect(summary.state).toBe('stopped');
    expect(summary.ids).toHaveLength(1);
    expect(summary.segments).toHaveLength(1);

    const rest = new DailyRestClient({ apiUrl: stack.emulator.apiUrl, apiKey: stack.apiKey, timeoutMs: 5_000 });
    const listed = await rest.listRecordings({ roomName: rec.roomName });
    expect(listed.map((r) => r.id)).toEqual(summary.ids);
    const link = await rest.recordingAccessLink(summary.ids[0]!);
    const wav = readWav(Buffer.from(await (await fetch(link.download_link)).arrayBuffer()));
    expect(wav.channels).toHaveLength(2);

    const tts = espeakTts({ sampleRate: 16_000 });
    const callerClip = decimate((await tts.synthesize(CALLER_WORDS)).pcm, DECIMATE);
    const botClip = decimate((await tts.synthesize(BOT_WORDS)).pcm, DECIMATE);
    const [ch1, ch2] = wav.channels.map((c) => decimate(c, DECIMATE)) as [Float64Array, Float64Array];
    const callerIn1 = findClip(ch1, callerClip);
    const botIn2 = findClip(ch2, botClip);
    console.log(`correlation: caller in ch1 ${callerIn1.score.toFixed(3)}, bot in ch2 ${botIn2.score.toFixed(3)}`);
    expect(callerIn1.score).toBeGreaterThan(0.9);
    expect(botIn2.score).toBeGreaterThan(0.8);
    // Each voice on its own channel only.
    expect(findClip(ch2, callerClip).score).toBeLessThan(0.3);
    expect(findClip(ch1, botClip).score).toBeLessThan(0.3);

    // At the right times: against the record's clock (the recording starts at `started`).
    const rate = wav.sampleRate / DECIMATE;
    const startMs = summary.segments[0]!.startMs;
    const saidAt = rec.botEvents.find((e) => e.kind === 'say' && e.value.includes('tomorrow'))!.atMs;
    const botAtMs = startMs + (botIn2.lag / rate) * 1000;
    expect(Math.abs(botAtMs - saidAt)).toBeLessThan(1_000);
    const callerEndMs = startMs + ((callerIn1.lag + callerClip.length) / rate) * 1000;
    expect(callerEndMs).toBeLessThan(botAtMs);
    const heardAt = rec.botEvents.find((e) => e.kind === 'transcript')?.atMs;
    if (heardAt !== undefined) expect(Math.abs(callerEndMs - heardAt)).toBeLessThan(1_500);

    // An erasure request: DELETE /calls/:id/recording deletes it at Daily; its link stops working.
    await waitFor('the record', async () => (await fetch(`${stack!.url}/calls/${rec.id}`)).status === 200, 10_000);
    const del = await fetch(`${stack.url}/calls/${rec.id}/recording`, { method: 'DELETE' });
    expect(await del.json()).toEqual({ deleted: summary.ids });
    expect(await rest.listRecordings({ roomName: rec.roomName })).toEqual([]);
    expect((await fetch(link.download_link)).status).toBe(404);
  }, 90_000);

  it('a start Daily refuses (recording not enabled on the room) is an event of the record; the call goes on', async () => {
    stack = await startStack({ env: env({}) });
    const call = stack.emulator.placeCall({ to: NUMBER, script: SCRIPT });
    const rec = await stack.waitEnded(call.callId, 60_000);
    expect(rec.outcome).toBe('completed');
    expect(rec.botEvents.some((e) => e.kind === 'say' && e.value.includes('tomorrow'))).toBe(true);
    const summary = recordingSummary(rec.botEvents);
    expect(summary.state).toBe('failed');
    expect(summary.errors[0]).toMatch(/start refused: .*400.*not enabled/);
    const rest = new DailyRestClient({ apiUrl: stack.emulator.apiUrl, apiKey: stack.apiKey, timeoutMs: 5_000 });
    expect(await rest.listRecordings({ roomName: rec.roomName })).toEqual([]);
    // /calls shows it (JSON and CSV).
    const shown = await waitFor(
      'the call in /calls',
      async () => {
        const r = await fetch(`${stack!.url}/calls/${rec.id}`);
        return r.status === 200 ? ((await r.json()) as { call: { recording?: { state: string; errors: string[] } } }) : undefined;
      },
      10_000,
    );
    expect(shown.call.recording?.state).toBe('failed');
    const csv = await (await fetch(`${stack.url}/calls?format=csv`)).text();
    const [head, row] = csv.split('\r\n') as [string, string];
    const cols = head.split(',');
    const at = cols.indexOf('recordingState');
    expect(cols.slice(at, at + 4)).toEqual(['recordingState', 'recordingIds', 'recordingSegments', 'recordingPauses']);
    // The recording's four columns, then whatever columns follow them (the turns' latency).
    const after = cols.length - (at + 4);
    expect(row).toMatch(new RegExp(`,failed,,,(,[^,]*){${after}}$`));
  }, 90_000);
});
