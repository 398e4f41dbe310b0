/**
 * A fleet of real replica processes for tests: one emulator (in the test process), one real
 * redis-server (test/helpers/redis.ts), N replicas (`node --import tsx src/app/main.ts`,
 * test/cluster/procs.ts `startReplica`) with REDIS_URL set, all on 127.0.0.1.
 *
 * The emulator's pinless webhook goes to a small "switch" in the test process that passes the
 * webhook (body and signature headers unchanged) to the replicas: `fanout` sends it to every
 * replica at the same instant (a duplicate storm), `only(i)` to one replica, `roundRobin` to one
 * each in turn (a load balancer). It answers the emulator with the first 200 (else the last answer).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RateLimitSettings } from '../../src/emulator/rate-limits.js';
import { createEmulator } from '../../src/emulator/server.js';
import type { CallerStep, EmulatedCall, Emulator, Latencies } from '../../src/emulator/types.js';
import { signPinless, signWebhook } from '../../src/daily/signature.js';
import { createLogger } from '../../src/core/logger.js';
import { freePort, isAlive, startReplica, type LogLine, type Replica } from '../cluster/procs.js';
import { startRedis, type RedisServer } from './redis.js';
import { startDelayProxy, type DelayProxy } from './fleet-proxy.js';

export const FLEET_NUMBER = '+15550007000';

export type SwitchMode = { kind: 'fanout' } | { kind: 'only'; index: number } | { kind: 'roundRobin' };

export interface FleetOfReplicas {
  dir: string;
  emulator: Emulator;
  redis: RedisServer;
  /** With `opts.slowRedis`: the proxy the replicas reach Redis through (set `delayMs` to slow it). */
  proxy: DelayProxy | undefined;
  replicas: Replica[];
  env: Record<string, string>;
  pinlessSecret: string;
  webhookSecret: string;
  /** Where the emulator's pinless webhooks go now. */
  mode: SwitchMode;
  /** Every answer the switch got from a replica: callId, replica index, status. */
  answers: Array<{ callId: string; index: number; status: number; body: { id?: string; roomUrl?: string; duplicate?: boolean } }>;
  /** Starts replica `i` again (after a kill), same port. */
  restart(i: number): Promise<Replica>;
  /** Every log line of every replica (current and previous processes), with its index. */
  lines(): Array<LogLine & { replicaIndex: number }>;
  status(i: number): Promise<ReplicaStatusBody>;
  /** A signed pinless webhook sent by hand to replica `i`. */
  dialin(i: number, body: Record<string, unknown>): Promise<Response>;
  /** A signed domain webhook sent to replica `i`. */
  domainEvent(
    i: number,
    type: string,
    payload: Record<string, unknown>,
    id?: string,
  ): Promise<{ status: number; body: Record<string, unknown> }>;
  /**
   * The no-leak invariants over every replica (waits up to `timeoutMs`, then throws naming each
   * problem): every placed call ended; a call answered 200 has exactly one outcome fleet-wide (one
   * `call ended` line over all replicas), a refused one none; no room, call client or webhook left
   * in the emulator; every live replica idle with no busy worker.
   */
  expectNoLeaks(placed: readonly EmulatedCall[], timeoutMs?: number): Promise<void>;
  stop(keep?: boolean): Promise<void>;
}

export interface ReplicaStatusBody {
  activeCalls: number;
  queuedCalls: number;
  admitting: number;
  draining: boolean;
  workers: { idle: number; busy: number };
  fleet?: {
    replicaId: string;
    degraded: boolean;
    queued: number;
    replicas: Array<{
      id: string;
      alive: boolean;
      capacity: number;
      active: number;
      queued: number;
      draining: boolean;
      meta: Record<string, unknown>;
      calls: Array<{ callId: string; room: string }>;
    }>;
  };
}

const parse = (text: string): { id?: string; roomUrl?: string; duplicate?: boolean } => {
  try {
    return JSON.parse(text) as { id?: string; roomUrl?: string; duplicate?: boolean };
  } catch {
    return {};
  }
};

/** `opts.fleet: false`: the same replicas without REDIS_URL (each on its own; for comparisons). */
export async function startFleetOfReplicas(
  n: number,
  env: Record<string, string>,
  opts: {
    fleet?: boolean;
    /** The emulator's limits (default: Daily's, DELETE raised). */
    rateLimits?: RateLimitSettings;
    /** How long the emulator holds a caller (default 30 s). */
    holdTimeoutMs?: number;
    /** How far the emulator's room presence trails the room (Daily: up to 15 s; default 0). */
    presenceLagMs?: number;
    /** The emulator's latencies (default: small ones, below). */
    latencies?: Partial<Latencies>;
    /** A compiled server.js for the replicas (default: the sources under tsx). */
    entry?: string;
    /** The replicas reach Redis through a proxy that can delay its answers (test/helpers/fleet-proxy.ts). */
    slowRedis?: boolean;
  } = {},
): Promise<FleetOfReplicas> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'patchbay-fleet-'));
  const apiKey = `fleet_${randomBytes(8).toString('hex')}`;
  const pinlessSecret = randomBytes(32).toString('base64');
  const webhookSecret = randomBytes(32).toString('base64');
  const redis = await startRedis();
  const proxy = opts.slowRedis ? await startDelayProxy(redis.port) : undefined;
  const emulator = await createEmulator({
    host: '127.0.0.1',
    port: 0,
    apiKey,
    holdTimeoutMs: opts.holdTimeoutMs ?? 30_000,
    logger: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent', name: 'emulator' }),
    latencies: {
      roomCreateMs: 10,
      tokenCreateMs: 5,
      joinMs: 20,
      dialinReadyMs: 30,
      connectMs: 20,
      webhookMs: 0,
      presenceLagMs: opts.presenceLagMs ?? 0,
      ...opts.latencies,
    },
    // Daily's windows, except DELETE raised (tests delete many rooms; set DAILY_RATE_LIMITS to match).
    rateLimits: opts.rateLimits ?? { classes: { 'room-delete': [{ requests: 300, windowMs: 30_000 }] } },
  });
  const ports = await Promise.all(Array.from({ length: n }, () => freePort()));
  const fullEnv: Record<string, string> = {
    NODE_ENV: 'development',
    LOG_LEVEL: 'info',
    DAILY_API_KEY: apiKey,
    DAILY_API_URL: emulator.apiUrl,
    CALL_CLIENT: 'emulator',
    DAILY_PINLESS_HMAC: pinlessSecret,
    DAILY_WEBHOOK_HMAC: webhookSecret,
    TTS_PROVIDER: 'text',
    ...(opts.fleet === false ? {} : { REDIS_URL: proxy?.url ?? redis.url, FLEET_NAMESPACE: `t${randomBytes(4).toString('hex')}` }),
    ...env,
  };
  const replicas: Replica[] = [];
  const previous: Array<{ index: number; lines: LogLine[] }> = [];
  const start = async (i: number) => {
    const r = await startReplica({
      name: `replica-${i}`,
      port: ports[i]!,
      env: fullEnv,
      logFile: path.join(dir, `replica-${i}.log`),
      readyTimeoutMs: 90_000,
      ...(opts.entry ? { entry: opts.entry } : {}),
    });
    replicas[i] = r;
    return r;
  };
  await Promise.all(ports.map((_, i) => start(i)));

  const answers: FleetOfReplicas['answers'] = [];
  let rr = 0;
  // Like a load balancer (nginx's proxy_next_upstream error): a connection that fails before any
  // answer is tried once more on a new one. A pooled keep-alive connection the replica closed as
  // idle (HTTP_KEEP_ALIVE_TIMEOUT_MS) in the same instant is the usual cause on a loaded machine.
  const forward = async (i: number, body: string, headers: Record<string, string>) => {
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await fetch(`${replicas[i]!.url}/dialin`, { method: 'POST', headers, body });
        return { index: i, status: res.status, text: await res.text() };
      } catch {
        if (attempt >= 1) return { index: i, status: 502, text: '{"error":"unreachable"}' };
      }
    }
  };
  const sw: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      for (const h of ['x-pinless-timestamp', 'x-pinless-signature']) {
        const v = req.headers[h];
        if (typeof v === 'string') headers[h] = v;
      }
      let callId = '';
      try {
        callId = String((JSON.parse(body) as { callId?: unknown }).callId ?? '');
      } catch {
        /* probe */
      }
      const m = fleet.mode;
      const targets = m.kind === 'fanout' ? replicas.map((_, i) => i) : m.kind === 'only' ? [m.index] : [rr++ % replicas.length];
      void Promise.all(targets.map((i) => forward(i, body, headers))).then((rs) => {
        for (const r of rs) if (callId) answers.push({ callId, index: r.index, status: r.status, body: parse(r.text) });
        const best = rs.find((r) => r.status === 200) ?? rs[rs.length - 1]!;
        res.writeHead(best.status, { 'content-type': 'application/json' }).end(best.text);
      });
    });
  });
  await new Promise<void>((r) => sw.listen(0, '127.0.0.1', r));
  const swPort = (sw.address() as { port: number }).port;
  emulator.setPinlessDialin([{ phone_number: FLEET_NUMBER, room_creation_api: `http://127.0.0.1:${swPort}/dialin`, hmac: pinlessSecret }]);

  const fleet: FleetOfReplicas = {
    dir,
    emulator,
    redis,
    proxy,
    replicas,
    env: fullEnv,
    pinlessSecret,
    webhookSecret,
    mode: { kind: 'fanout' },
    answers,
    async restart(i) {
      previous.push({ index: i, lines: replicas[i]!.lines });
      return start(i);
    },
    lines() {
      return [
        ...previous.flatMap((p) => p.lines.map((l) => ({ ...l, replicaIndex: p.index }))),
        ...replicas.flatMap((r, i) => r.lines.map((l) => ({ ...l, replicaIndex: i }))),
      ];
    },
    async status(i) {
      return (await (await fetch(`${replicas[i]!.url}/status`)).json()) as ReplicaStatusBody;
    },
    dialin(i, b) {
      const body = JSON.stringify(b);
      const ts = String(Math.floor(Date.now() / 1000));
      return fetch(`${replicas[i]!.url}/dialin`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-pinless-timestamp': ts,
          'x-pinless-signature': signPinless(body, pinlessSecret, ts),
        },
        body,
      });
    },
    async domainEvent(i, type, payload, id = randomBytes(8).toString('hex')) {
      const body = JSON.stringify({ version: '1.0.0', type, id, payload, event_ts: Date.now() / 1000 });
      const ts = String(Math.floor(Date.now() / 1000));
      const res = await fetch(`${replicas[i]!.url}/webhooks/daily`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-webhook-timestamp': ts,
          'x-webhook-signature': signWebhook(body, webhookSecret, ts),
        },
        body,
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    },
    async expectNoLeaks(placed, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const issues: string[] = [];
        const ended = fleet.lines().filter((l) => l.msg === 'call ended');
        for (const c of placed) {
          if (c.state !== 'ended') issues.push(`emulated call ${c.callId} is still ${c.state}`);
          const outcomes = ended.filter((l) => l.callId === c.callId && l.outcome !== 'room_failed');
          const ok = answers.some((a) => a.callId === c.callId && a.status === 200);
          if (ok && outcomes.length !== 1) issues.push(`call ${c.callId}: answered 200, ${outcomes.length} outcomes`);
          if (!ok && outcomes.length > 0) issues.push(`call ${c.callId}: refused, yet ${outcomes.length} outcomes`);
        }
        const snap = emulator.snapshot();
        if (snap.rooms.length > 0) issues.push(`emulator rooms left: ${snap.rooms.length}`);
        if (snap.clients > 0) issues.push(`emulator call clients left: ${snap.clients}`);
        if (snap.webhooksInFlight > 0) issues.push(`emulator webhooks in flight: ${snap.webhooksInFlight}`);
        for (let i = 0; i < replicas.length; i++) {
          if (!isAlive(replicas[i]!.pid)) continue; // killed by the test
          const st = await fleet.status(i).catch(() => undefined);
          if (!st) issues.push(`replica ${i}: no /status`);
          else if (st.activeCalls + st.queuedCalls + st.admitting !== 0 || st.workers.busy !== 0)
            issues.push(
              `replica ${i} not idle: ${JSON.stringify({ active: st.activeCalls, queued: st.queuedCalls, admitting: st.admitting, busy: st.workers.busy })}`,
            );
        }
        if (issues.length === 0) return;
        if (Date.now() > deadline) throw new Error(`fleet invariant violated:\n  - ${issues.join('\n  - ')}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    async stop(keep = false) {
      await Promise.all(
        replicas.map(async (r) => {
          if (!r || !isAlive(r.pid)) return;
          r.proc.kill('SIGTERM');
          const t = setTimeout(() => r.proc.kill('SIGKILL'), 15_000);
          await r.exited;
          clearTimeout(t);
        }),
      );
      await new Promise<void>((r) => sw.close(() => r()));
      sw.closeAllConnections?.();
      await emulator.close();
      await proxy?.close();
      await redis.stop();
      if (!keep && !process.env.FLEET_KEEP) rmSync(dir, { recursive: true, force: true });
      else console.log(`fleet logs kept in ${dir}`);
    },
  };
  return fleet;
}

/** Places a call to the fleet's number; `connected` resolves true once it connects (false if it ends first). */
export function placeCall(f: FleetOfReplicas, script: CallerStep[]): { call: EmulatedCall; connected: Promise<boolean> } {
  const call = f.emulator.placeCall({ to: FLEET_NUMBER, script });
  const connected = new Promise<boolean>((resolve) => {
    call.on('state', (s) => s === 'connected' && resolve(true));
    void call.ended.then(() => resolve(false));
  });
  return { call, connected };
}

/** Every replica's `call ended` lines for Daily's `callId`. */
export function endedLines(f: FleetOfReplicas, callId: string): Array<LogLine & { replicaIndex: number }> {
  return f.lines().filter((l) => l.msg === 'call ended' && l.callId === callId);
}

/** A room's name from its URL. */
export const roomOf = (roomUrl: string): string => new URL(roomUrl).pathname.replace(/^\//, '');
