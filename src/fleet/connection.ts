/**
 * Redis connections of one Fleet: a command connection (scripts, short timeouts, fail fast:
 * no offline queue, no retries per request) and blocking connections for the queue and inbox
 * reads (a connection blocked in XREAD serves nothing else).
 */
import { Redis, type RedisOptions } from 'ioredis';
import { SCRIPTS, SCRIPT_KEYS, type ScriptName } from './scripts.js';

export type ScriptCaller = (name: ScriptName, key: string, ...args: (string | number)[]) => Promise<unknown>;

export function connectionOptions(opTimeoutMs: number, blocking: boolean): RedisOptions {
  return {
    lazyConnect: true,
    // Fail fast: a command while disconnected is refused at once, not queued until Redis returns.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: Math.max(1_000, opTimeoutMs * 2),
    // A blocking read resolves null at BLOCK + blockingTimeoutGrace (ioredis default 100 ms): an entry
    // Redis delivered in a slower reply would sit in this replica's pending list, read by nobody.
    ...(blocking ? { blockingTimeout: opTimeoutMs, blockingTimeoutGrace: opTimeoutMs } : { commandTimeout: opTimeoutMs }),
    // Reconnect quickly and forever; the Fleet is degraded meanwhile.
    retryStrategy: (times: number) => Math.min(50 * times, 1_000),
    enableReadyCheck: true,
    connectionName: blocking ? 'patchbay-fleet-block' : 'patchbay-fleet',
  };
}

export function createConnection(url: string, opTimeoutMs: number, blocking: boolean): Redis {
  const r = new Redis(url, connectionOptions(opTimeoutMs, blocking));
  if (!blocking)
    for (const [name, lua] of Object.entries(SCRIPTS)) r.defineCommand(name, { numberOfKeys: SCRIPT_KEYS[name as ScriptName], lua });
  // Errors surface through the commands that fail and the 'close' event; without a listener
  // ioredis would print every reconnect attempt as an unhandled error event.
  r.on('error', () => undefined);
  return r;
}

export function scriptCaller(r: Redis): ScriptCaller {
  const fns = r as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>;
  return (name, key, ...args) => fns[name]!.call(r, key, ...args);
}

/** `[k1, v1, k2, v2…]` → object. */
export function pairs(a: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!Array.isArray(a)) return out;
  for (let i = 0; i + 1 < a.length; i += 2) out[String(a[i])] = String(a[i + 1]);
  return out;
}

/** True for errors that mean "Redis not reachable / not answering" rather than a command's own failure. */
export function isConnectionError(err: unknown): boolean {
  return !(err instanceof Error && err.name === 'ReplyError');
}

/**
 * Redis's `maxmemory-policy`, or undefined when it cannot be read (a managed Redis may refuse
 * CONFIG). Anything but `noeviction` may evict fleet keys: claims carry a TTL (volatile-*), and
 * allkeys-* takes any key.
 */
export async function evictionPolicy(r: Redis): Promise<string | undefined> {
  try {
    const v: unknown = await r.config('GET', 'maxmemory-policy');
    return Array.isArray(v) && typeof v[1] === 'string' ? v[1] : undefined;
  } catch {
    return undefined;
  }
}

export async function closeConnection(r: Redis, timeoutMs: number): Promise<void> {
  if (r.status === 'end') return;
  if (r.status !== 'ready') {
    r.disconnect();
    return;
  }
  await Promise.race([r.quit().catch(() => undefined), new Promise((res) => setTimeout(res, timeoutMs))]);
  r.disconnect();
}
