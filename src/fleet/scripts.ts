/**
 * The fleet's Lua scripts (ioredis `defineCommand`: EVALSHA, EVAL again after NOSCRIPT, so a
 * restarted Redis needs nothing re-loaded). Each script is one atomic step and one round trip.
 *
 * Every script takes the queue stream as KEYS[1] (all fleet keys share the `{ns}` hash tag, so
 * they live in one slot) and the key prefix as ARGV[1]; other keys are derived from the prefix.
 * Time is Redis's own (`TIME`), so replicas with skewed clocks agree on deadlines and buckets.
 */

const NOW = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

/** Sum of free slots on live, non-draining replicas. */
const FREE_SLOTS = `
local function free_slots(P)
  local free = 0
  for _, id in ipairs(redis.call('ZRANGE', P .. 'replicas', 0, -1)) do
    if redis.call('EXISTS', P .. 'hb:' .. id) == 1 then
      local r = redis.call('HMGET', P .. 'r:' .. id, 'capacity', 'draining')
      if r[2] ~= '1' then
        local f = (tonumber(r[1]) or 0) - redis.call('HLEN', P .. 'calls:' .. id)
        if f > 0 then free = free + f end
      end
    end
  end
  return free
end
`;

/** Puts one stream entry's call back in the queue as a new entry (attempt + 1); drops the old one. */
const REQUEUE = `
local function requeue(P, Q, G, entryId, waitMs, now)
  local e = redis.call('XRANGE', Q, entryId, entryId)
  redis.call('XACK', Q, G, entryId)
  redis.call('XDEL', Q, entryId)
  if not e[1] then return nil end
  local f = {}
  local kv = e[1][2]
  for i = 1, #kv, 2 do f[kv[i]] = kv[i + 1] end
  local dl = now + waitMs
  local attempt = (tonumber(f['a']) or 0) + 1
  redis.call('XADD', Q, '*', 'c', f['c'], 'o', f['o'], 'r', f['r'] or '', 'd', dl, 'a', attempt, 'p', f['p'])
  redis.call('ZADD', P .. 'waiting', dl, f['c'])
  return f['c']
end
`;

export const SCRIPTS = {
  /**
   * ARGV: P, callId, replicaId, ttlMs → {1} won | {1, previousOwner} won from an owner that died
   * before answering | {0, owner, answer, runner}
   */
  fleetClaim: `
local k = ARGV[1] .. 'claim:' .. ARGV[2]
if redis.call('EXISTS', k) == 1 then
  local v = redis.call('HMGET', k, 'owner', 'answer', 'runner')
  -- An owner that vanished before answering would leave the caller unanswered: take the call over,
  -- unless the call is already queued or running (then it is served without us).
  local P = ARGV[1]
  local queued = redis.call('ZSCORE', P .. 'waiting', ARGV[2]) and redis.call('EXISTS', P .. 'resv:' .. ARGV[2]) == 0
  if (not v[2]) and (not v[3]) and (not queued) and v[1] ~= ARGV[3] and redis.call('EXISTS', P .. 'hb:' .. v[1]) == 0 then
    redis.call('DEL', k, P .. 'resv:' .. ARGV[2])
    redis.call('ZREM', P .. 'waiting', ARGV[2])
    redis.call('HSET', k, 'owner', ARGV[3])
    redis.call('PEXPIRE', k, ARGV[4])
    return {1, v[1]}
  end
  return {0, v[1] or '', v[2] or '', v[3] or ''}
end
redis.call('HSET', k, 'owner', ARGV[3])
redis.call('PEXPIRE', k, ARGV[4])
return {1}
`,
  /** ARGV: P, callId, replicaId, answer → 1 stored | 0 not the owner (or expired) */
  fleetSetAnswer: `
local k = ARGV[1] .. 'claim:' .. ARGV[2]
if redis.call('HGET', k, 'owner') ~= ARGV[3] then return 0 end
redis.call('HSET', k, 'answer', ARGV[4])
return 1
`,
  /** Re-publish claims this replica holds after Redis came back empty. ARGV: P, me, callId1, answer1, ttlMs1, … → 1 */
  fleetRestoreClaims: `
local P, me = ARGV[1], ARGV[2]
for i = 3, #ARGV, 3 do
  local k = P .. 'claim:' .. ARGV[i]
  if redis.call('EXISTS', k) == 0 then
    redis.call('HSET', k, 'owner', me)
    if ARGV[i + 1] ~= '' then redis.call('HSET', k, 'answer', ARGV[i + 1]) end
    redis.call('PEXPIRE', k, ARGV[i + 2])
  end
end
return 1
`,
  /** ARGV: P, callId, replicaId → 1 released | 0 */
  fleetRelease: `
local k = ARGV[1] .. 'claim:' .. ARGV[2]
if redis.call('HGET', k, 'owner') ~= ARGV[3] then return 0 end
redis.call('DEL', k)
return 1
`,
  /**
   * Holds a place in the fleet-wide bound before the room is made (so a burst cannot make rooms for
   * calls the fleet will refuse). ARGV: P, callId, owner, waitMs, maxQueued
   * → {1, backlog, free} reserved | {0, backlog, free} fleet full | {2, backlog, free} already held
   */
  fleetReserve: `${NOW}${FREE_SLOTS}
local P = ARGV[1]
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', P .. 'waiting', '-inf', '(' .. (now - 3600000))
local backlog = redis.call('ZCOUNT', P .. 'waiting', now, '+inf')
local free = free_slots(P)
if redis.call('ZSCORE', P .. 'waiting', ARGV[2]) then return {2, backlog, free} end
if backlog >= tonumber(ARGV[5]) + free then return {0, backlog, free} end
redis.call('ZADD', P .. 'waiting', now + tonumber(ARGV[4]), ARGV[2])
redis.call('SET', P .. 'resv:' .. ARGV[2], ARGV[3], 'PX', ARGV[4])
return {1, backlog + 1, free}
`,
  /**
   * ARGV: P, callId, owner, room, payload, waitMs, maxQueued, roomTtlMs
   * → {1, entryId, backlog, free} queued | {0, '', backlog, free} fleet full | {2, '', backlog, free} already queued
   */
  fleetEnqueue: `${NOW}${FREE_SLOTS}
local P, Q = ARGV[1], KEYS[1]
local now = now_ms()
-- Expired entries stay until a consumer drops them (and tells their owner); long-forgotten ones go.
redis.call('ZREMRANGEBYSCORE', P .. 'waiting', '-inf', '(' .. (now - 3600000))
local backlog = redis.call('ZCOUNT', P .. 'waiting', now, '+inf')
local free = free_slots(P)
-- A reservation (fleetReserve) already holds this call's place in the bound.
local reserved = redis.call('DEL', P .. 'resv:' .. ARGV[2]) == 1
if not reserved then
  if redis.call('ZSCORE', P .. 'waiting', ARGV[2]) then return {2, '', backlog, free} end
  if backlog >= tonumber(ARGV[7]) + free then return {0, '', backlog, free} end
end
local dl = now + tonumber(ARGV[6])
local id = redis.call('XADD', Q, '*', 'c', ARGV[2], 'o', ARGV[3], 'r', ARGV[4], 'd', dl, 'a', 0, 'p', ARGV[5])
redis.call('ZADD', P .. 'waiting', dl, ARGV[2])
if ARGV[4] ~= '' then redis.call('SET', P .. 'room:' .. ARGV[4], ARGV[3] .. '|' .. ARGV[2], 'PX', ARGV[8]) end
return {1, id, backlog + 1, free}
`,
  /**
   * After XREADGROUP delivered an entry to this replica. ARGV: P, group, entryId, callId, owner, me, room, roomTtlMs
   * → {1, deadline} now ours | {0, 'cancelled'|'expired'|'orphaned'} dropped ('orphaned': expired, its owner gone)
   */
  fleetAccept: `${NOW}
local P, Q, G = ARGV[1], KEYS[1], ARGV[2]
local now = now_ms()
local dl = redis.call('ZSCORE', P .. 'waiting', ARGV[4])
if (not dl) or tonumber(dl) < now then
  redis.call('ZREM', P .. 'waiting', ARGV[4])
  redis.call('XACK', Q, G, ARGV[3])
  redis.call('XDEL', Q, ARGV[3])
  if dl then
    -- Its owner is gone: nobody would read the notice; the replica that found it records the call.
    if ARGV[5] ~= ARGV[6] and redis.call('EXISTS', P .. 'hb:' .. ARGV[5]) == 0 then return {0, 'orphaned'} end
    redis.call('XADD', P .. 'inbox:' .. ARGV[5], 'MAXLEN', '~', 1000, '*', 't', 'expired', 'c', ARGV[4])
    return {0, 'expired'}
  end
  return {0, 'cancelled'}
end
redis.call('ZREM', P .. 'waiting', ARGV[4])
redis.call('HSET', P .. 'calls:' .. ARGV[6], ARGV[4], ARGV[7])
if redis.call('EXISTS', P .. 'claim:' .. ARGV[4]) == 1 then redis.call('HSET', P .. 'claim:' .. ARGV[4], 'runner', ARGV[6]) end
if ARGV[7] ~= '' then redis.call('SET', P .. 'room:' .. ARGV[7], ARGV[6] .. '|' .. ARGV[4], 'PX', ARGV[8]) end
if ARGV[5] ~= ARGV[6] then
  redis.call('XADD', P .. 'inbox:' .. ARGV[5], 'MAXLEN', '~', 1000, '*', 't', 'taken', 'c', ARGV[4], 'r', ARGV[6])
end
return {1, dl}
`,
  /**
   * Put back an entry read but not accepted (this replica's last slot went between the blocking
   * read and the entry's arrival): as if never read — no taken notice, the owner still waits.
   * ARGV: P, group, entryId, field1, value1, … → 1
   */
  fleetUnread: `
local Q, G = KEYS[1], ARGV[2]
redis.call('XACK', Q, G, ARGV[3])
redis.call('XDEL', Q, ARGV[3])
local fields = {}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('XADD', Q, '*', unpack(fields))
return 1
`,
  /** Give back an entry this replica took but will not run. ARGV: P, group, entryId, me, callId, waitMs → 1 */
  fleetGiveBack: `${NOW}${REQUEUE}
local P, Q = ARGV[1], KEYS[1]
local c = requeue(P, Q, ARGV[2], ARGV[3], tonumber(ARGV[6]), now_ms()) or ARGV[5]
redis.call('HDEL', P .. 'calls:' .. ARGV[4], c)
return 1
`,
  /** ARGV: P, callId → 1 was still waiting (now cancelled) | 0 taken, expired or unknown */
  fleetCancel: `
redis.call('DEL', ARGV[1] .. 'resv:' .. ARGV[2])
return redis.call('ZREM', ARGV[1] .. 'waiting', ARGV[2])
`,
  /** The call ended here. ARGV: P, me, callId, room → 1 */
  fleetFinish: `
local P = ARGV[1]
redis.call('HDEL', P .. 'calls:' .. ARGV[2], ARGV[3])
if ARGV[4] ~= '' and redis.call('GET', P .. 'room:' .. ARGV[4]) == ARGV[2] .. '|' .. ARGV[3] then redis.call('DEL', P .. 'room:' .. ARGV[4]) end
return 1
`,
  /**
   * Run a call on this replica at once, past the queue (a warm slot is ready here): only if nobody
   * waits in the fleet queue (first come, first served) and this replica has a free bot slot.
   * Registers it as running here, as fleetAccept would. ARGV: P, me, callId, room, roomTtlMs → 1 | 0
   */
  fleetRunHere: `${NOW}
local P, me, c = ARGV[1], ARGV[2], ARGV[3]
local now = now_ms()
local r = redis.call('HMGET', P .. 'r:' .. me, 'capacity', 'draining')
if r[2] == '1' then return 0 end
if (tonumber(r[1]) or 0) - redis.call('HLEN', P .. 'calls:' .. me) <= 0 then return 0 end
local mine = redis.call('ZSCORE', P .. 'waiting', c)
local backlog = redis.call('ZCOUNT', P .. 'waiting', now, '+inf')
if mine and tonumber(mine) >= now then backlog = backlog - 1 end
if backlog > 0 then return 0 end
redis.call('ZREM', P .. 'waiting', c)
redis.call('DEL', P .. 'resv:' .. c)
redis.call('HSET', P .. 'calls:' .. me, c, ARGV[4])
if redis.call('EXISTS', P .. 'claim:' .. c) == 1 then redis.call('HSET', P .. 'claim:' .. c, 'runner', me) end
if ARGV[4] ~= '' then redis.call('SET', P .. 'room:' .. ARGV[4], me .. '|' .. c, 'PX', ARGV[5]) end
return 1
`,
  /** Publish a call that runs here (re-forming after Redis came back). ARGV: P, me, roomTtlMs, callId1, room1, … */
  fleetPublishCalls: `
local P, me = ARGV[1], ARGV[2]
for i = 4, #ARGV, 2 do
  redis.call('HSET', P .. 'calls:' .. me, ARGV[i], ARGV[i + 1])
  if ARGV[i + 1] ~= '' then redis.call('SET', P .. 'room:' .. ARGV[i + 1], me .. '|' .. ARGV[i], 'PX', ARGV[3]) end
end
return 1
`,
  /**
   * ARGV: P, me, lostMs, capacity, draining, queuedHere, meta(JSON), startedAtMs, knownEpoch, newEpoch
   * → {reapedMarker(0|1), stateLost(0|1), epoch, lostCandidate1, …}
   *
   * The fleet's epoch key (no TTL) is set once by the first replica to find it missing. A replica
   * that knew an epoch and finds another one, or none, or finds its own entry gone without being
   * reaped, learns that Redis lost the fleet's state over the same connection (FLUSHALL, eviction,
   * a fail-over to an empty primary): it must publish again what it holds.
   */
  fleetHeartbeat: `${NOW}
local P, me = ARGV[1], ARGV[2]
local now = now_ms()
local known = ARGV[9]
local epoch = redis.call('GET', P .. 'epoch')
local stateLost = 0
if not epoch then
  epoch = ARGV[10]
  redis.call('SET', P .. 'epoch', epoch)
  if known ~= '' then stateLost = 1 end
elseif known ~= '' and epoch ~= known then
  stateLost = 1
end
if known ~= '' and stateLost == 0 and redis.call('EXISTS', P .. 'r:' .. me) == 0 and redis.call('EXISTS', P .. 'reaped:' .. me) == 0 then
  stateLost = 1
end
redis.call('SET', P .. 'hb:' .. me, now, 'PX', ARGV[3])
redis.call('ZADD', P .. 'replicas', now, me)
redis.call('HSET', P .. 'r:' .. me, 'capacity', ARGV[4], 'draining', ARGV[5], 'queued', ARGV[6], 'meta', ARGV[7], 'startedAt', ARGV[8], 'seen', now)
local out = {redis.call('EXISTS', P .. 'reaped:' .. me), stateLost, epoch}
for _, id in ipairs(redis.call('ZRANGE', P .. 'replicas', 0, -1)) do
  if id ~= me and redis.call('EXISTS', P .. 'hb:' .. id) == 0 then table.insert(out, id) end
end
return out
`,
  /**
   * Clean up a lost replica, once fleet-wide. ARGV: P, group, lostId, lockTtlMs, requeueWaitMs
   * → {0} alive | {-1} someone else did it | {1, nRequeued, requeuedCallId…, lostCallId, room, …}
   */
  fleetReap: `${NOW}${REQUEUE}
local P, Q, G, lost = ARGV[1], KEYS[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', P .. 'hb:' .. lost) == 1 then return {0} end
if not redis.call('SET', P .. 'reaped:' .. lost, '1', 'NX', 'PX', ARGV[4]) then return {-1} end
local now = now_ms()
local requeued = {}
local seen = {}
if redis.call('EXISTS', Q) == 1 then
  local ok, pending = pcall(redis.call, 'XPENDING', Q, G, '-', '+', 10000, lost)
  if ok then
    for _, p in ipairs(pending) do
      local c = requeue(P, Q, G, p[1], tonumber(ARGV[5]), now)
      if c then table.insert(requeued, c); seen[c] = true end
    end
  end
  pcall(redis.call, 'XGROUP', 'DELCONSUMER', Q, G, lost)
end
local out = {1, #requeued}
for _, c in ipairs(requeued) do table.insert(out, c) end
local calls = redis.call('HGETALL', P .. 'calls:' .. lost)
for i = 1, #calls, 2 do
  if not seen[calls[i]] then
    table.insert(out, calls[i]); table.insert(out, calls[i + 1])
    if calls[i + 1] ~= '' and redis.call('GET', P .. 'room:' .. calls[i + 1]) == lost .. '|' .. calls[i] then redis.call('DEL', P .. 'room:' .. calls[i + 1]) end
  end
end
redis.call('DEL', P .. 'calls:' .. lost, P .. 'r:' .. lost, P .. 'inbox:' .. lost)
redis.call('ZREM', P .. 'replicas', lost)
return out
`,
  /** A clean exit. ARGV: P, me → 1 */
  fleetLeave: `
local P, me = ARGV[1], ARGV[2]
redis.call('DEL', P .. 'hb:' .. me, P .. 'r:' .. me, P .. 'calls:' .. me, P .. 'inbox:' .. me)
redis.call('ZREM', P .. 'replicas', me)
return 1
`,
  /** ARGV: P, owner, json → 1 delivered to the owner's inbox | 0 owner gone */
  fleetRoute: `
local P = ARGV[1]
if redis.call('EXISTS', P .. 'hb:' .. ARGV[2]) == 0 then return 0 end
redis.call('XADD', P .. 'inbox:' .. ARGV[2], 'MAXLEN', '~', 1000, '*', 't', 'event', 'e', ARGV[3])
return 1
`,
  /** One view of the fleet, as JSON. ARGV: P */
  fleetStatus: `${NOW}
local P = ARGV[1]
local now = now_ms()
local reps = {}
for _, id in ipairs(redis.call('ZRANGE', P .. 'replicas', 0, -1)) do
  local h = redis.call('HGETALL', P .. 'r:' .. id)
  local r = {id = id, alive = redis.call('EXISTS', P .. 'hb:' .. id) == 1, fields = h, calls = redis.call('HGETALL', P .. 'calls:' .. id)}
  table.insert(reps, r)
end
return cjson.encode({now = now, queued = redis.call('ZCOUNT', P .. 'waiting', now, '+inf'), replicas = reps})
`,
  /**
   * Sliding-window limit (a log of the last `limit` grants): grant and record atomically.
   * KEYS[1]: the class's window. ARGV: limit, windowMs, reserve, member, leaseMs, pollMs (the grant counts from now + leaseMs
   * until fleetRateRelease re-stamps it) → 0 granted | ms to wait
   */
  fleetTake: `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local limit, win, reserve = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local lease = tonumber(ARGV[5] or '0')
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - win)
local count = redis.call('ZCARD', KEYS[1])
local allowed = limit - reserve
if count < allowed then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[4])
  local ttl = math.ceil(win + lease)
  if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
  return 0
end
local idx = count - allowed
local e = redis.call('ZRANGE', KEYS[1], idx, idx, 'WITHSCORES')
local s = tonumber(e[2])
local w = s + win - now
-- Still in flight: its answer (and release) may come any moment; look again soon.
if s > now then w = math.min(w, tonumber(ARGV[6] or '50')) end
return math.max(1, math.ceil(w))
`,
  /** A rate grant's answer is in: it counts from now for one window (unless already expired). KEYS: rl key; ARGV: member, windowMs. */
  fleetRateRelease: `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s then redis.call('ZADD', KEYS[1], 'XX', now, ARGV[1]) end
local ttl = math.ceil(tonumber(ARGV[2]))
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
`,
} as const;

export type ScriptName = keyof typeof SCRIPTS;

/** Number of KEYS each script takes. */
export const SCRIPT_KEYS: Record<ScriptName, number> = Object.fromEntries(Object.keys(SCRIPTS).map((k) => [k, 1])) as Record<
  ScriptName,
  number
>;
