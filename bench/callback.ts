/**
 * Time to a callback (issue 26, benchmarks): from capacity freeing (the call on the one bot slot
 * ended) to the next callback dialling (the worker reports `dialing`, just before its dial-out
 * grant and `startDialOut`). One replica in this process (bench/lib/common.ts), MAX_CONCURRENT_BOTS=1,
 * N callbacks stored while the slot is taken; the holder hangs up and the callbacks are placed one
 * after another, each freeing the slot for the next (the far end answers, hears the bot, the bot hangs up).
 *   npx tsx bench/callback.ts [--callbacks 20] [--realistic]
 */
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { realisticLatencies } from '../src/emulator/types.js';
import { machine, NUMBER, record, REPO, startBenchStack, summarize, warmPool } from './lib/common.js';

const opts = new Command()
  .option('--callbacks <n>', 'callbacks to place', '20')
  .option('--realistic', "the emulator's realistic Daily latencies (room create, join, connect)", false)
  .parse()
  .opts<{ callbacks: string; realistic: boolean }>();
const n = Number(opts.callbacks);

const s = await startBenchStack({
  env: {
    BOTS_DIR: path.join(REPO, 'test/fixtures/bots'),
    DEFAULT_BOT: 'callback',
    CALLBACK_OFFER: 'true',
    MAX_CONCURRENT_BOTS: '1',
    MAX_QUEUED_CALLS: '0',
    IDLE_WORKERS: '2',
    OUTBOUND_MAX_CONCURRENT: '1',
    VOICEMAIL_DETECT: 'false',
    CALL_RECORDS_PATH: ':memory:',
  },
  ...(opts.realistic ? { latencies: realisticLatencies } : {}),
});
const callbacks = s.rt.callbacks!.callbacks;
await warmPool(s.rt, 2);
const holder = s.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'say', timeoutMs: 60_000 }, { wait: 600_000 }] });
while (!holder.transcript.some((t) => t.who === 'bot')) await new Promise((r) => setTimeout(r, 50));
const t0 = Date.now();
for (let i = 0; i < n; i++) {
  const number = `+1555900${String(1000 + i)}`;
  s.emulator.setDialOutTarget(number, { answer: 'answer', script: [{ waitFor: 'say', match: 'callback', timeoutMs: 30_000 }] });
  await callbacks.request({ id: `bench-${i}`, number, to: NUMBER, bot: 'callback', reason: 'queue_full', requestedAtMs: t0 + i });
}
// Capacity frees each time a call on the slot ends (the holder, then each callback).
const freedAt: number[] = [];
s.rt.dispatcher.on('call-ended', () => freedAt.push(Date.now()));
const load0 = os.loadavg()[0]!;
holder.hangup();
const deadline = Date.now() + 60_000 + n * 30_000;
for (;;) {
  const rows = await callbacks.list();
  if (rows.every((r) => r.state === 'done')) break;
  if (Date.now() > deadline) throw new Error(`not all callbacks placed: ${JSON.stringify(rows.map((r) => r.state))}`);
  await new Promise((r) => setTimeout(r, 100));
}
const rows = await callbacks.list();
const dialingAt = rows
  .map((r) => s.rt.outbound!.get(r.outboundId!)?.history.find((h) => h.status === 'dialing')?.atMs)
  .filter((x): x is number => x !== undefined)
  .sort((a, b) => a - b);
const samples = dialingAt.map((d) => d - Math.max(...freedAt.filter((f) => f <= d)));
const legs = rows.map((r) => s.emulator.dialOutsTo(r.number).length);
const result = {
  callbacks: n,
  realistic: opts.realistic,
  answered: rows.filter((r) => r.result === 'answered').length,
  placedOnce: legs.every((l) => l === 1),
  freeToDialingMs: summarize(samples),
  loadAvg1m: { start: +load0.toFixed(1), end: +os.loadavg()[0]!.toFixed(1) },
  machine: machine(),
};
console.log(JSON.stringify(result, null, 1));
record('callback', result);
await s.close();
process.exit(0);
