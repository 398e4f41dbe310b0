/**
 * Fleet mode's callback queue (docs/outbound.md "Callbacks"; the contract in
 * src/admission/callback-types.ts), in Redis beside the fleet's other keys (`pb:{ns}:cb…`):
 *
 *   cb:pending         sorted set: pending callbacks by request time (the claim takes the lowest)
 *   cb:all             sorted set: every callback (the listing)
 *   cb:<id>            hash: the request, its state, owner, outbound call, result
 *   cb:owned:<replica> set: the callbacks a replica claimed or is dialling
 *
 * Each transition is one Lua script (atomic, one round trip), so a callback is claimed by one
 * replica only, and a lost replica's are settled once: its claims go back to pending, those it was
 * dialling end `interrupted` (never dialled twice). The `dialing` mark goes out on the connection the
 * rate limiter's grants use, before the worker asks for its dial-out grant.
 */
import type { Redis } from 'ioredis';
import type { CallbackRequest, CallbackRow, CallbackStore } from '../admission/callback-types.js';
import { CALLBACK_STATES } from '../admission/callback-types.js';

const ROW = `
local function row(P, id)
  return redis.call('HGETALL', P .. 'cb:' .. id)
end
`;

const LUA = {
  add: `local P = ARGV[1]
local h = P .. 'cb:' .. ARGV[2]
if redis.call('EXISTS', h) == 1 then return 0 end
redis.call('HSET', h, 'id', ARGV[2], 'number', ARGV[3], 'to', ARGV[4], 'bot', ARGV[5], 'reason', ARGV[6], 'at', ARGV[7],
  'state', 'pending', 'updated', ARGV[8])
redis.call('ZADD', P .. 'cb:pending', ARGV[7], ARGV[2])
redis.call('ZADD', P .. 'cb:all', ARGV[7], ARGV[2])
return 1`,
  claim: `${ROW}local P = ARGV[1]
local ids = redis.call('ZRANGE', P .. 'cb:pending', 0, 0)
if not ids[1] then return nil end
local id = ids[1]
redis.call('ZREM', P .. 'cb:pending', id)
redis.call('HSET', P .. 'cb:' .. id, 'state', 'claimed', 'owner', ARGV[2], 'updated', ARGV[3])
redis.call('SADD', P .. 'cb:owned:' .. ARGV[2], id)
return row(P, id)`,
  dialing: `local h = ARGV[1] .. 'cb:' .. ARGV[2]
local s = redis.call('HMGET', h, 'state', 'owner')
if s[1] ~= 'claimed' or s[2] ~= ARGV[3] then return 0 end
redis.call('HSET', h, 'state', 'dialing', 'outboundId', ARGV[4], 'updated', ARGV[5])
return 1`,
  done: `local P = ARGV[1]
local h = P .. 'cb:' .. ARGV[2]
local s = redis.call('HMGET', h, 'state', 'owner')
if not s[1] or s[1] == 'done' then return 0 end
redis.call('HSET', h, 'state', 'done', 'result', ARGV[3], 'updated', ARGV[4])
if s[2] then redis.call('SREM', P .. 'cb:owned:' .. s[2], ARGV[2]) end
return 1`,
  release: `local P = ARGV[1]
local h = P .. 'cb:' .. ARGV[2]
local s = redis.call('HMGET', h, 'state', 'owner', 'at')
if s[1] ~= 'claimed' or s[2] ~= ARGV[3] then return 0 end
redis.call('HSET', h, 'state', 'pending', 'updated', ARGV[4])
redis.call('HDEL', h, 'owner')
redis.call('SREM', P .. 'cb:owned:' .. ARGV[3], ARGV[2])
redis.call('ZADD', P .. 'cb:pending', s[3], ARGV[2])
return 1`,
  recover: `local P = ARGV[1]
local owned = P .. 'cb:owned:' .. ARGV[2]
local requeued, interrupted = 0, 0
for _, id in ipairs(redis.call('SMEMBERS', owned)) do
  local h = P .. 'cb:' .. id
  local s = redis.call('HMGET', h, 'state', 'at')
  if s[1] == 'claimed' then
    redis.call('HSET', h, 'state', 'pending', 'updated', ARGV[3])
    redis.call('HDEL', h, 'owner')
    redis.call('ZADD', P .. 'cb:pending', s[2], id)
    requeued = requeued + 1
  elseif s[1] == 'dialing' then
    redis.call('HSET', h, 'state', 'done', 'result', 'interrupted', 'updated', ARGV[3])
    interrupted = interrupted + 1
  end
end
redis.call('DEL', owned)
return {requeued, interrupted}`,
  list: `${ROW}local P = ARGV[1]
local out = {}
for _, id in ipairs(redis.call('ZRANGE', P .. 'cb:all', 0, -1)) do out[#out + 1] = row(P, id) end
return out`,
};

function fromFlat(flat: unknown): CallbackRow | undefined {
  if (!Array.isArray(flat) || flat.length === 0) return undefined;
  const f = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) f.set(String(flat[i]), String(flat[i + 1]));
  const at = Number(f.get('at'));
  return {
    id: f.get('id') ?? '',
    number: f.get('number') ?? '',
    to: f.get('to') ?? '',
    bot: f.get('bot') ?? '',
    reason: f.get('reason') ?? '',
    requestedAtMs: at,
    state: CALLBACK_STATES.find((s) => s === f.get('state')) ?? 'done',
    owner: f.get('owner') ?? null,
    outboundId: f.get('outboundId') ?? null,
    result: f.get('result') ?? null,
    updatedAtMs: Number(f.get('updated') ?? at),
  };
}

export class RedisCallbacks implements CallbackStore {
  constructor(private readonly fleet: { redis: Redis; prefix: string; op<T>(what: string, f: () => Promise<T>): Promise<T> }) {}

  private run(name: keyof typeof LUA, ...args: Array<string | number>): Promise<unknown> {
    const { redis, prefix } = this.fleet;
    // One key named (the pending set; every key shares the {ns} hash tag, so one slot).
    return this.fleet.op(`callbacks-${name}`, () => redis.eval(LUA[name], 1, `${prefix}cb:pending`, prefix, ...args));
  }

  async add(r: CallbackRequest): Promise<void> {
    await this.run('add', r.id, r.number, r.to, r.bot, r.reason, r.requestedAtMs, Date.now());
  }

  async claim(owner: string, nowMs: number): Promise<CallbackRow | undefined> {
    return fromFlat(await this.run('claim', owner, nowMs));
  }

  async dialing(id: string, owner: string, outboundId: string, nowMs: number): Promise<boolean> {
    return (await this.run('dialing', id, owner, outboundId, nowMs)) === 1;
  }

  async done(id: string, result: string, nowMs: number): Promise<void> {
    await this.run('done', id, result, nowMs);
  }

  async release(id: string, owner: string, nowMs: number): Promise<void> {
    await this.run('release', id, owner, nowMs);
  }

  async recover(owner: string, nowMs: number): Promise<{ requeued: number; interrupted: number }> {
    const r = await this.run('recover', owner, nowMs);
    const [requeued, interrupted] = Array.isArray(r) ? r.map(Number) : [0, 0];
    return { requeued: requeued ?? 0, interrupted: interrupted ?? 0 };
  }

  async list(): Promise<CallbackRow[]> {
    const r = await this.run('list');
    return (Array.isArray(r) ? r : []).map(fromFlat).filter((x): x is CallbackRow => x !== undefined);
  }
}
