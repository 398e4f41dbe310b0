/**
 * PCI-safe pauses (issue 24): `collectDigits({sensitive: true})` keeps the card number out of the
 * recording (Daily mode: stopped, then a new segment), out of the record and out of every log line.
 * The real service process (its workers' logs included, at debug) with its embedded emulator, whose
 * recordings carry the caller's keys as in-band DTMF tones: a Goertzel check finds the menu key, and
 * none of the card's keys, in any segment.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FIXTURE_BOTS, startServerProcess, waitFor, type ServerProcess } from '../helpers/ops.js';
import { DailyRestClient } from '../../src/daily/rest.js';
import { recordingSummary } from '../../src/records/recording.js';
import { dtmfKeys, readWav } from './audio.js';

const KEY = 'test_pci_recording_key';
const CARD = '4790';
let s: ServerProcess | undefined;
afterEach(async () => {
  await s?.kill();
  s = undefined;
});

describe('sensitive input is kept out of recordings, records and logs', () => {
  it('Daily mode: the recording stops for the card number and a new segment starts after it', async () => {
    s = await startServerProcess({
      BOTS_DIR: FIXTURE_BOTS,
      DEFAULT_BOT: 'pci',
      TTS_PROVIDER: 'espeak',
      LOG_LEVEL: 'debug',
      EMULATOR_API_KEY: KEY,
      DAILY_RECORDING_ROOMS: 'true',
      // Keys are stored (the menu's): the card's must still not be.
      CALL_RECORDS_STORE_PII: 'true',
    });
    const placed = (await (
      await fetch(`${s.emulator}/_emulator/calls`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          to: '+15550001000',
          script: [
            { waitFor: 'say', match: 'payments', timeoutMs: 20_000 },
            { wait: 1_500 },
            { press: '1' },
            { waitFor: 'say', match: 'card number', timeoutMs: 15_000 },
            // Typed ahead, during the prompt.
            { wait: 1_000 },
            { press: CARD },
            { waitFor: 'say', match: 'Thank you', timeoutMs: 15_000 },
            { wait: 6_000 },
          ],
        }),
      })
    ).json()) as { id: string };
    await waitFor(
      'the call to end',
      async () => ((await (await fetch(`${s!.emulator}/_emulator/calls/${placed.id}`)).json()) as { state: string }).state === 'ended',
      60_000,
      200,
    );
    const stored = await waitFor(
      'the record',
      async () => {
        const r = (await (await fetch(`${s!.url}/calls?limit=1`)).json()) as {
          calls: Array<{ id: string; endedAtMs: number | null; events: Array<{ kind: string; value: string; atMs: number }> }>;
        };
        const c = r.calls[0];
        return c && c.endedAtMs !== null && c.events.some((e) => e.value === 'stopped' || e.value.startsWith('paused')) ? c : undefined;
      },
      20_000,
      200,
    );
    const summary = recordingSummary(stored.events);
    expect(summary.pauses).toHaveLength(1);
    expect(summary.pauses[0]!.endMs).not.toBeNull();
    expect(summary.ids).toHaveLength(2);
    expect(stored.events.filter((e) => e.kind === 'digits').map((e) => e.value)).toEqual(['1', '[sensitive input: 4 keys]']);

    // The card's keys: in no recording segment; the menu key: in the first (the check can fail).
    const rest = new DailyRestClient({ apiUrl: `${s.emulator}/v1`, apiKey: KEY, timeoutMs: 5_000 });
    const heard: string[][] = [];
    for (const id of summary.ids) {
      const link = await rest.recordingAccessLink(id);
      const wav = readWav(Buffer.from(await (await fetch(link.download_link)).arrayBuffer()));
      heard.push(dtmfKeys(wav.channels[0]!, wav.sampleRate).map((k) => k.key));
    }
    expect(heard[0]).toEqual(['1']);
    expect(heard.flat().filter((k) => CARD.includes(k))).toEqual([]);

    // Nowhere in the record or in any log line (the service's and its workers').
    expect(JSON.stringify(stored)).not.toContain(CARD);
    const logs = s.lines.map((l) => JSON.stringify(l)).join('\n') + s.stderr();
    expect(logs.length).toBeGreaterThan(1_000);
    expect(logs).not.toContain(CARD);
  }, 120_000);
});
