/**
 * OUTBOUND_FLEET_MAX_CONCURRENT (docs/outbound.md): outbound calls running at once in the whole fleet.
 * One sorted set in Redis (`pb:{ns}:outbound:slots`): a member per running attempt (`<replica>|<key>`),
 * scored by its lease's end. Taking a slot drops expired leases and adds one only under the cap, in
 * one Lua script; an attempt gives its slot back when its call ended; a lost replica's slots are
 * dropped when a survivor reaps it, and a lease outlives no attempt (the longest an attempt can last).
 */
import type { Redis } from 'ioredis';
import type { FleetSlots } from '../admission/outbound.js';

const ACQUIRE = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
return 1`;

const DROP = `local n = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.sub(m, 1, string.len(ARGV[1])) == ARGV[1] then n = n + redis.call('ZREM', KEYS[1], m) end
end
return n`;

interface FleetLike {
  redis: Redis;
  prefix: string;
  replicaId: string;
  op<T>(what: string, f: () => Promise<T>): Promise<T>;
}

export class FleetOutboundSlots implements FleetSlots {
  private readonly key: string;
  constructor(
    private readonly fleet: FleetLike,
    private readonly cap: number,
    private readonly leaseMs: number,
  ) {
    this.key = `${fleet.prefix}outbound:slots`;
  }

  private member(key: string): string {
    return `${this.fleet.replicaId}|${key}`;
  }

  async acquire(key: string): Promise<boolean> {
    const { redis } = this.fleet;
    return (await this.fleet.op('outbound-slot', () => redis.eval(ACQUIRE, 1, this.key, this.cap, this.leaseMs, this.member(key)))) === 1;
  }

  release(key: string): void {
    const { redis } = this.fleet;
    // A release Redis misses ends with its lease.
    void this.fleet.op('outbound-slot-release', () => redis.zrem(this.key, this.member(key))).catch(() => undefined);
  }

  /** A lost replica's slots (fleet.ts `replica-lost`). */
  async dropReplica(replicaId: string): Promise<number> {
    const { redis } = this.fleet;
    return Number(await this.fleet.op('outbound-slot-drop', () => redis.eval(DROP, 1, this.key, `${replicaId}|`)));
  }
}
