/**
 * Consent (issue 24): the prompt is said before the greeting; a caller who presses a key during it
 * is not recorded (and the record says so), the key is not the bot's input; one who does not is
 * recorded from then on.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DailyRestClient } from '../../src/daily/rest.js';
import { recordingSummary } from '../../src/records/recording.js';
import { FIXTURE_BOTS } from '../helpers/ops.js';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

async function run(optOut: boolean) {
  stack = await startStack({ env: { BOTS_DIR: FIXTURE_BOTS, DEFAULT_BOT: 'consent', DAILY_RECORDING_ROOMS: 'true' } });
  const call = stack.emulator.placeCall({
    to: NUMBER,
    script: [
      { waitFor: 'say', match: 'opt out', timeoutMs: 15_000 },
      ...(optOut ? [{ press: '9' }] : []),
      { waitFor: 'say', match: 'help you', timeoutMs: 15_000 },
      { press: '5' },
      { waitFor: 'say', match: 'You pressed', timeoutMs: 15_000 },
      { wait: 2_500 },
    ],
  });
  const rec = await stack.waitEnded(call.callId, 60_000);
  const rest = new DailyRestClient({ apiUrl: stack.emulator.apiUrl, apiKey: stack.apiKey, timeoutMs: 5_000 });
  return { rec, summary: recordingSummary(rec.botEvents), listed: await rest.listRecordings({ roomName: rec.roomName }) };
}

describe('recording consent', () => {
  it('a caller who opts out is not recorded; the record says so; the key is not the bot’s', async () => {
    const { rec, summary, listed } = await run(true);
    expect(rec.outcome).toBe('completed');
    expect(summary.state).toBe('opted_out');
    expect(listed).toEqual([]);
    const said = rec.botEvents.filter((e) => e.kind === 'say').map((e) => e.value);
    expect(said[0]).toMatch(/opt out/);
    expect(said).toContain('You pressed 5.');
  }, 90_000);

  it('a caller who does not opt out is recorded after the prompt', async () => {
    const { rec, summary, listed } = await run(false);
    expect(rec.outcome).toBe('completed');
    expect(summary.state).toBe('stopped');
    expect(listed).toHaveLength(1);
    const asked = rec.botEvents.find((e) => e.kind === 'recording' && e.value === 'consent asked')!.atMs;
    expect(summary.segments[0]!.startMs).toBeGreaterThan(asked);
  }, 90_000);
});
