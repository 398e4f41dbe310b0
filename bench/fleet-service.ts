/**
 * Fleet mode through the whole service: 3 replica processes with Redis vs 1 replica without, the
 * same number of bots in all (default 3 × 6 vs 1 × 18), N simultaneous calls from the emulator
 * (default 50). Per call, from the replicas' "call ended" and "call admitted" lines: added hold
 * time (received → forward_sent) and webhook ack time; Redis commands per call (INFO commandstats
 * during the burst, minus the idle rate measured just before).
 *
 *   npx tsx bench/fleet-service.ts [--calls 50] [--bots 6]
 */
import { Command } from 'commander';
import { Redis } from 'ioredis';
import type { CallerStep } from '../src/emulator/types.js';
import { waitUntil } from '../test/cluster/procs.js';
import { FLEET_NUMBER, startFleetOfReplicas, type FleetOfReplicas } from '../test/helpers/fleet-replicas.js';
import { machine, record, summarize } from './lib/common.js';

const opts = new Command()
  .option('--calls <n>', 'simultaneous calls', (v) => Number.parseInt(v, 10), 50)
  .option('--bots <n>', 'bots per replica in fleet mode (the single replica gets 3×)', (v) => Number.parseInt(v, 10), 6)
  .parse()
  .opts<{ calls: number; bots: number }>();

const SCRIPT: CallerStep[] = [{ waitFor: 'connected', timeoutMs: 28_000 }, { wait: 500 }, { hangup: true }];
const round = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Math.round(v * 10) / 10]));

async function commands(url: string): Promise<number> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  await r.connect();
  const info = await r.info('stats');
  r.disconnect();
  return Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? 0);
}

async function run(fleet: boolean) {
  const replicas = fleet ? 3 : 1;
  const bots = fleet ? opts.bots : opts.bots * 3;
  const f: FleetOfReplicas = await startFleetOfReplicas(
    replicas,
    {
      LOG_LEVEL: 'info',
      MAX_CONCURRENT_BOTS: String(bots),
      MAX_QUEUED_CALLS: String(opts.calls),
      IDLE_WORKERS: String(bots),
      QUEUE_TIMEOUT_MS: '30000',
      DAILY_RATE_LIMITS: 'delete=300/30000',
      DAILY_ROOM_DELETE_INTERVAL_MS: '50',
    },
    { fleet },
  );
  try {
    f.mode = { kind: 'roundRobin' };
    await waitUntil(
      async () => (await Promise.all(f.replicas.map((_, i) => f.status(i)))).every((s) => s.workers.idle >= bots),
      'warm workers',
      180_000,
      250,
    );
    let idleRate = 0;
    if (fleet) {
      const c0 = await commands(f.redis.url);
      await new Promise((r) => setTimeout(r, 3_000));
      idleRate = ((await commands(f.redis.url)) - c0) / 3_000;
    }
    const c1 = fleet ? await commands(f.redis.url) : 0;
    const t0 = Date.now();
    const calls = Array.from({ length: opts.calls }, () => f.emulator.placeCall({ to: FLEET_NUMBER, script: SCRIPT }));
    const ends = await Promise.all(calls.map((c) => c.ended));
    const ids = new Set(calls.map((c) => c.callId));
    await waitUntil(
      () => f.lines().filter((l) => l.msg === 'call ended' && ids.has(String(l.callId))).length >= opts.calls,
      'every call recorded',
      60_000,
      100,
    );
    const elapsedMs = Date.now() - t0;
    const cmds = fleet ? (await commands(f.redis.url)) - c1 - idleRate * elapsedMs : 0;
    const endedLines = f.lines().filter((l) => l.msg === 'call ended' && ids.has(String(l.callId)));
    const admitted = f.lines().filter((l) => l.msg === 'call admitted' && ids.has(String(l.callId)));
    const hold = endedLines.map((l) => Number(l.holdAddedMs)).filter(Number.isFinite);
    const ack = admitted.map((l) => Number(l.ackMs)).filter(Number.isFinite);
    const perReplica = f.replicas.map((_, i) => endedLines.filter((l) => l.replicaIndex === i).length);
    return {
      mode: fleet ? `${replicas} replicas + Redis` : '1 replica, no Redis',
      bots: `${replicas} × ${bots}`,
      calls: opts.calls,
      connected: ends.filter((e) => e.reason === 'caller_hangup').length,
      ranPerReplica: perReplica,
      holdAddedMs: round(summarize(hold)),
      webhookAckMs: round(summarize(ack)),
      ...(fleet
        ? { redisCommandsPerCall: Math.round((cmds / opts.calls) * 10) / 10, redisIdleCommandsPerSec: Math.round(idleRate * 1000) }
        : {}),
      elapsedMs,
    };
  } finally {
    await f.stop();
  }
}

const single = await run(false);
const fleetRun = await run(true);
const result = { single, fleet: fleetRun };
record('fleet-service', result);
console.log(JSON.stringify({ ...machine(), ...result }, null, 2));
process.exit(0);
