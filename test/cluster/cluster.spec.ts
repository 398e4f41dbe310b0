/**
 * Multi-replica test (opt-in: `npm run test:cluster`; needs /usr/sbin/nginx, see docs/scaling.md).
 *
 * One emulator (in this process) → nginx on 127.0.0.1 → three real replicas (`src/app/main.ts`,
 * each with its own worker processes), all sharing the emulator as their "Daily" and, in fleet mode
 * (the default; CLUSTER_FLEET=0 runs them as islands), one real redis-server. Phases:
 *   1. spread: a burst of calls; every call connects and each replica takes a share;
 *   2. drain:  one replica is draining (503 + Retry-After); nginx passes its webhooks to the others;
 *   3. fleet:  50 calls at once under Daily's REST limits: no 429 on a caller's path (fleet mode);
 *   4. kill:   one replica is SIGKILLed mid-burst; every call it had not admitted still connects;
 *              in fleet mode a survivor records its calls `replica_lost` once and deletes their rooms.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmulator } from '../../src/emulator/server.js';
import type { CallEnd, CallerStep, Emulator, EmulatedCall } from '../../src/emulator/types.js';
import { createLogger } from '../../src/core/logger.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { freePort, isAlive, startNginx, startReplica, waitUntil, type Nginx, type Replica } from './procs.js';

const FLEET = process.env.CLUSTER_FLEET !== '0';
let redis: RedisServer | undefined;

const NUMBER = '+15550001000';
// Each replica keeps as many warm workers as it runs bots: a burst is served by warm workers,
// cold forks refill the pool behind it (a cold start under tsx costs ~0.5 s of CPU, see docs/BENCHMARKS.md).
const PER_REPLICA = { bots: 6, queued: 6, idle: 6 };
// Generous: the test must hold on a busy 2-core machine; Daily's real hold timeout is longer still.
const HOLD_TIMEOUT_MS = 30_000;

interface Placed {
  call: EmulatedCall;
  connected: boolean;
  end: CallEnd | undefined;
  ended: Promise<CallEnd>;
}

let dir: string;
let emulator: Emulator;
let nginx: Nginx;
const replicas: Replica[] = [];
let ports: number[] = [];
let replicaEnv: Record<string, string>;
let failed = false;
const summary: Record<string, unknown> = {};

function place(n: number, script: CallerStep[]): Placed[] {
  return Array.from({ length: n }, () => placeOne(script));
}

function placeOne(script: CallerStep[]): Placed {
  const call = emulator.placeCall({ to: NUMBER, from: `+1555${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`, script });
  const p: Placed = { call, connected: false, end: undefined, ended: call.ended };
  call.on('state', (s) => {
    if (s === 'connected') p.connected = true;
  });
  void call.ended.then((e) => (p.end = e));
  return p;
}

async function allEnded(calls: Placed[], timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(calls.map((c) => c.ended)),
    new Promise((_, reject) => {
      timer = setTimeout(() => {
        const open = calls.filter((c) => !c.end).map((c) => `${c.call.callId} (${c.call.state})`);
        reject(new Error(`${open.length} calls still open after ${timeoutMs} ms: ${open.slice(0, 5).join(', ')}`));
      }, timeoutMs);
    }),
  ]);
  clearTimeout(timer);
}

/** The replica (port) whose 200 answered each call's webhook, from nginx's access log. */
function admittedBy(): Map<string, number> {
  const m = new Map<string, number>();
  for (const e of nginx.accessLog()) {
    if (e.uri !== '/dialin' || e.status !== 200 || !e.callId) continue;
    const last = e.upstreams[e.upstreams.length - 1];
    if (last) m.set(e.callId, Number(last.split(':')[1]));
  }
  return m;
}

function dialinEntries(callIds: Set<string>) {
  return nginx.accessLog().filter((e) => e.uri === '/dialin' && e.callId !== undefined && callIds.has(e.callId));
}

async function status(r: Replica): Promise<{ activeCalls: number; queuedCalls: number; admitting: number; draining: boolean }> {
  const res = await fetch(`${r.url}/status`);
  return (await res.json()) as { activeCalls: number; queuedCalls: number; admitting: number; draining: boolean };
}

async function idle(rs: Replica[]): Promise<void> {
  await waitUntil(
    async () => (await Promise.all(rs.map(status))).every((s) => s.activeCalls + s.queuedCalls + s.admitting === 0),
    'replicas to be idle',
    15_000,
    100,
  );
}

/** Waits until every replica has its warm workers (after a burst, the pool refills behind it). */
async function warm(rs: Replica[]): Promise<void> {
  await waitUntil(
    async () =>
      (await Promise.all(rs.map(async (r) => (await (await fetch(`${r.url}/status`)).json()) as { workers: { idle: number } }))).every(
        (s) => s.workers.idle >= PER_REPLICA.idle,
      ),
    'warm worker pools',
    60_000,
    200,
  );
}

async function start(i: number): Promise<Replica> {
  const r = await startReplica({
    name: `replica-${i}`,
    port: ports[i]!,
    env: replicaEnv,
    logFile: path.join(dir, `replica-${i}.log`),
    readyTimeoutMs: 90_000,
  });
  replicas[i] = r;
  return r;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'patchbay-cluster-'));
  const apiKey = `cluster_${randomBytes(8).toString('hex')}`;
  const secret = randomBytes(32).toString('base64');
  emulator = await createEmulator({
    host: '127.0.0.1',
    port: 0,
    apiKey,
    holdTimeoutMs: HOLD_TIMEOUT_MS,
    logger: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent', name: 'emulator' }),
    // Small but non-zero: calls take a realistic shape without slowing the test down.
    latencies: { roomCreateMs: 20, tokenCreateMs: 10, joinMs: 30, dialinReadyMs: 50, connectMs: 30, webhookMs: 0 },
  });
  ports = await Promise.all([freePort(), freePort(), freePort()]);
  const nginxPort = await freePort();
  replicaEnv = {
    NODE_ENV: 'development',
    LOG_LEVEL: 'info',
    // One external emulator for all replicas (config.ts: CALL_CLIENT=emulator needs a loopback DAILY_API_URL).
    DAILY_API_KEY: apiKey,
    DAILY_API_URL: emulator.apiUrl,
    CALL_CLIENT: 'emulator',
    DAILY_PINLESS_HMAC: secret,
    TTS_PROVIDER: 'text',
    MAX_CONCURRENT_BOTS: String(PER_REPLICA.bots),
    MAX_QUEUED_CALLS: String(PER_REPLICA.queued),
    QUEUE_TIMEOUT_MS: '15000',
    IDLE_WORKERS: String(PER_REPLICA.idle),
    DRAIN_TIMEOUT_MS: '20000',
    WORKER_CLOSE_TIMEOUT_MS: '2000',
  };
  if (FLEET) {
    redis = await startRedis();
    Object.assign(replicaEnv, {
      REDIS_URL: redis.url,
      FLEET_NAMESPACE: `cluster${randomBytes(3).toString('hex')}`,
      FLEET_HEARTBEAT_MS: '300',
      FLEET_REPLICA_LOST_MS: '2000',
      MAX_QUEUED_CALLS: '50',
      QUEUE_TIMEOUT_MS: '40000',
      DAILY_ROOM_DELETE_INTERVAL_MS: '100',
    });
  }
  await Promise.all([0, 1, 2].map(start));
  nginx = await startNginx({ dir, port: nginxPort, upstreamPorts: ports });
  emulator.setPinlessDialin([{ phone_number: NUMBER, room_creation_api: `${nginx.url}/dialin`, hmac: secret }]);
  summary.dir = dir;
  await warm(replicas);
});

afterAll(async () => {
  // Replicas drain (no calls left by now) and exit; then nginx; then the emulator.
  const exits = await Promise.all(
    replicas.map(async (r) => {
      if (!r || !isAlive(r.pid)) return undefined;
      r.proc.kill('SIGTERM');
      const t = setTimeout(() => r.proc.kill('SIGKILL'), 15_000);
      const e = await r.exited;
      clearTimeout(t);
      return e;
    }),
  );
  summary.replicaExits = exits;
  await nginx?.stop();
  await emulator?.close();
  await redis?.stop();
  console.log(`cluster summary: ${JSON.stringify(summary, null, 2)}`);
  if (!failed && !process.env.CLUSTER_KEEP) rmSync(dir, { recursive: true, force: true });
  else console.log(`logs kept in ${dir}`);
}, 60_000);

const SHORT_CALL: CallerStep[] = [{ waitFor: 'connected', timeoutMs: HOLD_TIMEOUT_MS }, { wait: 1_000 }, { hangup: true }];

function track<T>(p: Promise<T>): Promise<T> {
  return p.catch((err: unknown) => {
    failed = true;
    throw err;
  });
}

describe.sequential('three replicas behind nginx', () => {
  it(
    'spreads a burst of calls over the replicas; every call connects',
    () =>
      track(
        (async () => {
          const calls = place(18, SHORT_CALL);
          await allEnded(calls, 60_000);
          const by = admittedBy();
          const perReplica = ports.map((p) => calls.filter((c) => by.get(c.call.callId) === p).length);
          summary.spread = { calls: calls.length, connected: calls.filter((c) => c.connected).length, perReplica };
          expect(calls.filter((c) => !c.connected).map((c) => `${c.call.callId}: ${c.end?.reason}`)).toEqual([]);
          expect(calls.every((c) => c.end?.reason === 'caller_hangup')).toBe(true);
          expect(perReplica.reduce((a, b) => a + b, 0)).toBe(calls.length);
          for (const n of perReplica) expect(n).toBeGreaterThanOrEqual(3);
          await idle(replicas);
          await warm(replicas);
        })(),
      ),
    120_000,
  );

  it(
    'routes around a draining replica: its 503s go to the next replica',
    () =>
      track(
        (async () => {
          // A long call keeps one replica busy while it drains.
          const long = placeOne([{ waitFor: 'connected', timeoutMs: HOLD_TIMEOUT_MS }, { wait: 60_000 }, { hangup: true }]);
          await waitUntil(() => long.connected, 'the long call to connect', 20_000);
          // The replica running it (in fleet mode not necessarily the one that admitted it).
          const loads = await Promise.all(replicas.map(status));
          const i = loads.findIndex((st) => st.activeCalls > 0);
          expect(i).toBeGreaterThanOrEqual(0);
          const draining = replicas[i]!;
          draining.proc.kill('SIGTERM');
          await waitUntil(async () => (await status(draining)).draining, 'the replica to drain', 10_000);

          const calls = place(12, SHORT_CALL);
          await allEnded(calls, 60_000);
          const ids = new Set(calls.map((c) => c.call.callId));
          const entries = dialinEntries(ids);
          const passedOn = entries.filter((e) => e.upstreamStatuses[0] === '503' && e.status === 200).length;
          const by = admittedBy();
          summary.drain = {
            calls: calls.length,
            connected: calls.filter((c) => c.connected).length,
            passedOnAfter503: passedOn,
            admittedByDraining: calls.filter((c) => by.get(c.call.callId) === draining.port).length,
          };
          expect(calls.filter((c) => !c.connected).map((c) => `${c.call.callId}: ${c.end?.reason}`)).toEqual([]);
          expect(calls.filter((c) => by.get(c.call.callId) === draining.port)).toEqual([]);
          // Round robin sends about a third of them to the draining replica first.
          expect(passedOn).toBeGreaterThanOrEqual(1);
          for (const e of entries) expect(e.status).toBe(200);

          // The draining replica exits cleanly once its last call ends.
          long.call.hangup();
          await long.ended;
          const exit = await Promise.race([draining.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 15_000))]);
          expect(exit).toEqual({ code: 0, signal: null });
          await start(i);
          await idle(replicas);
          await warm(replicas);
        })(),
      ),
    120_000,
  );

  it.runIf(FLEET)(
    "fleet: 50 calls at once under Daily's REST limits — all connect, no 429 on a caller's path, every room deleted",
    () =>
      track(
        (async () => {
          await warm(replicas);
          const t0 = Date.now();
          const calls = place(50, [{ waitFor: 'connected', timeoutMs: 45_000 }, { wait: 500 }, { hangup: true }]);
          await allEnded(calls, 90_000);
          const log = emulator.requestLog.filter((r) => r.atMs >= t0);
          const limited = log.filter((r) => r.status === 429);
          const onCallPath = limited.filter((r) => !(r.method === 'DELETE' && r.path.startsWith('/rooms/')));
          summary.fleetBurst = {
            calls: calls.length,
            connected: calls.filter((c) => c.connected).length,
            requests: log.length,
            limited: limited.length,
            onCallPath: onCallPath.length,
            ms: Date.now() - t0,
          };
          expect(calls.filter((c) => !c.connected).map((c) => `${c.call.callId}: ${c.end?.reason}`)).toEqual([]);
          expect(onCallPath).toEqual([]);
          await idle(replicas);
          await waitUntil(() => emulator.snapshot().rooms.length === 0, 'every room deleted', 60_000, 200);
        })(),
      ),
    180_000,
  );

  it(
    'loses no unadmitted call when a replica is killed mid-burst',
    () =>
      track(
        (async () => {
          const victim = replicas[0]!;
          const calls: Placed[] = [];
          let workersAtKill: number[] = [];
          let killedAfterCalls = 0;
          const N = 24;
          const ids = new Set<string>();
          // Mid-burst: once the victim has admitted one of this burst's calls (and at least 8 are placed).
          const victimAdmitted = () =>
            victim.lines.filter((l) => l.msg === 'call admitted' && l.callId !== undefined && ids.has(l.callId)).length;
          for (let n = 0; n < N; n++) {
            const c = placeOne(SHORT_CALL);
            calls.push(c);
            ids.add(c.call.callId);
            if (killedAfterCalls === 0 && n >= 7 && victimAdmitted() >= 1) {
              workersAtKill = victim.workerPids();
              killedAfterCalls = n + 1;
              victim.proc.kill('SIGKILL');
            }
            await new Promise((r) => setTimeout(r, 60));
          }
          await allEnded(calls, HOLD_TIMEOUT_MS + 40_000);
          const by = admittedBy();
          const lost = calls.filter((c) => by.get(c.call.callId) === victim.port);
          const others = calls.filter((c) => by.get(c.call.callId) !== victim.port);
          const entries = dialinEntries(ids);
          const failedOver = entries.filter((e) => e.upstreams.length > 1 && e.upstreams[0] === `127.0.0.1:${victim.port}`).length;
          summary.kill = {
            calls: N,
            killedAfterCalls,
            admittedByKilled: lost.length,
            admittedByKilledOutcomes: lost.map((c) => c.end?.reason),
            othersConnected: others.filter((c) => c.connected).length,
            others: others.length,
            failedOverFromKilled: failedOver,
            nginxStatuses: entries.map((e) => e.status).reduce<Record<string, number>>((a, s) => ((a[s] = (a[s] ?? 0) + 1), a), {}),
            killedWorkers: workersAtKill.length,
          };
          // Every call the killed replica had not admitted was admitted elsewhere and connected.
          expect(
            others
              .filter((c) => !c.connected)
              .map((c) => `${c.call.callId}: ${c.end?.reason} (webhook ${c.call.webhook?.status ?? c.call.webhook?.error})`),
          ).toEqual([]);
          for (const e of entries) expect(e.status).toBe(200);
          // nginx really did pass webhooks on from the dead replica (connection refused → next).
          expect(failedOver).toBeGreaterThanOrEqual(1);
          // The calls it had admitted still end with a clear reason (the caller gives up on hold, or hangs up).
          for (const c of lost) expect(['caller_hangup', 'hold_timeout', 'room_closed', 'ejected']).toContain(c.end?.reason);
          expect(killedAfterCalls).toBeGreaterThan(0);
          expect(killedAfterCalls).toBeLessThan(N);
          expect(lost.length).toBeGreaterThanOrEqual(1);
          // Its workers notice the parent is gone (IPC disconnect) and exit.
          await waitUntil(() => workersAtKill.every((p) => !isAlive(p)), "the killed replica's workers to exit", 15_000);
          await idle(replicas.filter((r) => r !== victim));
          // Rooms left behind are the killed replica's (admitted calls, and webhooks it was handling when
          // killed, which nginx then passed on); they expire by themselves on Daily (`exp`).
          if (FLEET) {
            // A survivor records each call the victim ran `replica_lost`, once, and deletes its room.
            const lostLines = replicas
              .filter((r) => r !== victim)
              .flatMap((r) => r.lines.filter((l) => l.msg === 'call ended' && l.outcome === 'replica_lost'));
            const ids = lostLines.map((l) => l.callId);
            (summary.kill as Record<string, unknown>).recordedReplicaLost = ids.length;
            expect(new Set(ids).size).toBe(ids.length);
            await waitUntil(() => emulator.snapshot().rooms.length === 0, "the victim's rooms deleted by a survivor", 60_000, 200);
            return;
          }
          const roomsLeft = emulator.snapshot().rooms.length;
          (summary.kill as Record<string, unknown>).roomsLeft = roomsLeft;
          expect(roomsLeft).toBeLessThanOrEqual(entries.filter((e) => e.upstreams.includes(`127.0.0.1:${victim.port}`)).length);
        })(),
      ),
    180_000,
  );
});
