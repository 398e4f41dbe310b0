/**
 * Fleet mode's cost per call: Redis round trips and added milliseconds on the admission path
 * (claim → reserve → enqueue → setAnswer → take → ack → finish), against a local redis-server started here
 * (the same helper the tests use). Three Fleets in this process, as three replicas would be.
 *
 *   sequential  one call at a time, N calls: per-step latency (no queueing, no contention)
 *   burst       B calls at once spread over the 3 fleets, taken by consumer loops: webhook-side
 *               (claim + setAnswer + enqueue) and bot-side (enqueue → taken) times under contention
 *
 *   npx tsx bench/fleet.ts [--calls 500] [--burst 50]
 */
import { Command } from 'commander';
import { Fleet, type TakenCall } from '../src/fleet/index.js';
import { startRedis } from '../test/helpers/redis.js';
import { machine, record, summarize } from './lib/common.js';

const opts = new Command()
  .option('--calls <n>', 'sequential calls', (v) => Number.parseInt(v, 10), 500)
  .option('--burst <n>', 'simultaneous calls', (v) => Number.parseInt(v, 10), 50)
  .parse()
  .opts<{ calls: number; burst: number }>();

/** Counts round trips on a Fleet's command connection: one per command written, a MULTI…EXEC block counting once. */
function countRoundTrips(f: Fleet): { n: number } {
  const counter = { n: 0 };
  const r = f.redis as unknown as { sendCommand: (c: { name: string }) => unknown };
  const orig = r.sendCommand.bind(r);
  let inMulti = false;
  r.sendCommand = (c) => {
    const name = c.name.toLowerCase();
    if (name === 'multi') inMulti = true;
    else if (name === 'exec') {
      inMulti = false;
      counter.n++;
    } else if (!inMulti) counter.n++;
    return orig(c);
  };
  return counter;
}

const redis = await startRedis();
const ns = `bench${Date.now().toString(36)}`;
const mk = () =>
  new Fleet<{ n: number }>({
    url: redis.url,
    namespace: ns,
    capacity: 64,
    maxQueued: 64,
    claimTtlMs: 60_000,
    heartbeatMs: 60_000,
    replicaLostMs: 120_000,
  });
const fleets = [mk(), mk(), mk()];
await Promise.all(fleets.map((f) => f.start()));
const [a, b] = fleets as [Fleet<{ n: number }>, Fleet<{ n: number }>];
const rtA = countRoundTrips(a);
const rtB = countRoundTrips(b);

// ---- sequential: a admits, b runs --------------------------------------------------------------
const steps: Record<string, number[]> = {
  claim: [],
  reserve: [],
  enqueue: [],
  setAnswer: [],
  take: [],
  ack: [],
  finish: [],
  webhookSide: [],
  botSide: [],
  total: [],
};
const rts: number[] = [];
for (let i = 0; i < opts.calls + 50; i++) {
  const callId = `seq-${i}`;
  const rt0 = rtA.n + rtB.n;
  const t0 = performance.now();
  await a.claim(callId);
  const t1 = performance.now();
  await a.reserve(callId, 10_000);
  const t1b = performance.now();
  // (the room and token are made here, on Daily)
  await a.enqueue({ callId, room: `room-${i}`, payload: { n: i } }, 10_000);
  const t2 = performance.now();
  await a.setAnswer(callId, { status: 'accepted', id: callId });
  const t3 = performance.now();
  const taken = await b.take();
  if (taken?.callId !== callId) throw new Error(`took ${taken?.callId}, expected ${callId}`);
  const t4 = performance.now();
  await b.ack(callId);
  const t5 = performance.now();
  await b.finish(callId);
  const t6 = performance.now();
  if (i < 50) continue; // warm-up
  rts.push(rtA.n + rtB.n - rt0);
  steps.claim!.push(t1 - t0);
  steps.reserve!.push(t1b - t1);
  steps.enqueue!.push(t2 - t1b);
  steps.setAnswer!.push(t3 - t2);
  steps.take!.push(t4 - t3);
  steps.ack!.push(t5 - t4);
  steps.finish!.push(t6 - t5);
  steps.webhookSide!.push(t3 - t0);
  steps.botSide!.push(t4 - t3);
  steps.total!.push(t6 - t0);
}
const round = (s: ReturnType<typeof summarize>) =>
  Object.fromEntries(Object.entries(s).map(([k, v]) => [k, k === 'n' ? v : Math.round(v * 1000) / 1000]));
const sequential = Object.fromEntries(Object.entries(steps).map(([k, v]) => [k, round(summarize(v))]));
const roundTrips = { min: Math.min(...rts), max: Math.max(...rts) };

// ---- burst: B calls at once over 3 fleets, consumer loops take them ----------------------------
const enqueuedAt = new Map<string, number>();
const takenAfter: number[] = [];
let done = 0;
let resolveAll: () => void;
const all = new Promise<void>((r) => (resolveAll = r));
for (const f of fleets) {
  f.startConsumer(
    () => true,
    (t: TakenCall<{ n: number }>) => {
      takenAfter.push(performance.now() - enqueuedAt.get(t.callId)!);
      void f
        .ack(t.callId)
        .then(() => f.finish(t.callId))
        .then(() => {
          if (++done === opts.burst) resolveAll();
        });
    },
  );
}
await new Promise((r) => setTimeout(r, 300));
const webhookSide: number[] = [];
await Promise.all(
  Array.from({ length: opts.burst }, async (_, i) => {
    const f = fleets[i % 3]!;
    const callId = `burst-${i}`;
    const t0 = performance.now();
    await f.claim(callId);
    await f.reserve(callId, 10_000);
    enqueuedAt.set(callId, performance.now());
    await f.enqueue({ callId, room: `room-b${i}`, payload: { n: i } }, 10_000);
    await f.setAnswer(callId, { status: 'accepted' });
    webhookSide.push(performance.now() - t0);
  }),
);
await all;
const burst = { calls: opts.burst, webhookSide: round(summarize(webhookSide)), enqueueToTaken: round(summarize(takenAfter)) };

await Promise.all(fleets.map((f) => f.close()));
await redis.stop();
const result = {
  redis: 'redis-server 7 on 127.0.0.1 (no persistence)',
  calls: opts.calls,
  roundTripsPerCall: roundTrips,
  sequentialMs: sequential,
  burstMs: burst,
};
record('fleet', result);
console.log(JSON.stringify({ ...machine(), ...result }, null, 2));
process.exit(0);
