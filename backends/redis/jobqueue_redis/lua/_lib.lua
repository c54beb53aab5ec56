-- Shared prelude of every jobqueue script (prepended at load time).
-- KEYS[1] is the queue's key base "<prefix>:{<queue>}:"; every key a script touches starts with it,
-- so all of them hash to the queue's slot (Redis Cluster, Valkey).
-- Times are strings the client passes (the app's clock), never Redis TIME.
local base = KEYS[1]
local WAITING = base .. 'waiting'      -- zset: priority * 1e12 + seq -> id
local DELAYED = base .. 'delayed'      -- zset: not_before -> id
local ACTIVE = base .. 'active'        -- zset: lease deadline (integer ms, see lease_ms) -> id
local SIGNAL = base .. 'signal'        -- list: one token per wake-up, trimmed
local PAUSED = base .. 'paused'        -- string: exists while paused
local RATE = base .. 'rate'            -- hash: start, count of the current rate-limit window
local SEQ = base .. 'seq'              -- counter: enqueue order
local FSEQ = base .. 'fseq'            -- counter: finish order
local WCHILD = base .. 'waiting-children'  -- zset: stored (or last re-checked) time -> id of a job waiting for its parents
local FOLLOWUPS = base .. 'followups'  -- zset: end time -> id of an ended job whose dependents / group are not all told
local CKEYS = base .. 'ckeys'          -- hash: concurrency key -> how many of its jobs are active
local PARKED = base .. 'parked'        -- zset: waiting score -> id of every job held back for its concurrency key
local IDLE = base .. 'idle'            -- zset: end of its wait (server clock) -> 'token|lease' of a worker blocked on its inbox (idle.lua)
local SIGNAL_MAX = 1000
-- set by claim.lua: its last take emptied the waiting set (so the caller need not look)
local drained = false

local function jk(id) return base .. 'job:' .. id end
local function fin(state) return base .. state end
local function deps_key(id) return base .. 'deps:' .. id end              -- set: parents a waiting child has not heard from
local function dependents_key(id) return base .. 'dependents:' .. id end  -- set: children to tell when this job ends
local function kept_key(id) return base .. 'fu:' .. id end                -- hash: a dropped job's record, kept for its follow-up
local function parked_key(ckey) return base .. 'parked:' .. ckey end      -- zset: waiting score -> id held back for ckey

-- a lease deadline as the active set scores it: whole milliseconds. An integer score is kept as an integer in a
-- small (listpack) sorted set, so inserting a claim's leases compares integers instead of parsing every score
-- with strtod (a tenth of the worker's cycle script, measured).
local function lease_ms(seconds) return string.format('%d', math.floor(seconds * 1000)) end

local function wscore(priority, seq)
  return string.format('%d', tonumber(priority) * 1000000000000 + tonumber(seq))
end

-- set by a script that runs many transitions (the worker's cycle): wake-ups and retention are then
-- done once at its end (see end_batch) instead of once per job
local batch = nil

local function signal(n)
  if batch then batch.signal = batch.signal + n return end
  local tokens = {}
  for i = 1, math.min(n, SIGNAL_MAX) do tokens[i] = '1' end
  redis.call('LPUSH', SIGNAL, unpack(tokens))
  redis.call('LTRIM', SIGNAL, 0, SIGNAL_MAX - 1)
end

-- retention spec "ccount,cage,fcount,fage" ('' = no bound); cancelled jobs follow the failed rule.
-- Parsed once per spec per script call (a cycle passes the same spec with every outcome).
local parsed_retention = {}
local function parse_retention(spec)
  local known = parsed_retention[spec]
  if known then return known end
  local parts = {}
  local i = 0
  for field in string.gmatch(spec .. ',', '([^,]*),') do
    i = i + 1
    parts[i] = tonumber(field)
  end
  local completed = {count = parts[1], age = parts[2]}
  local failed = {count = parts[3], age = parts[4]}
  known = {completed = completed, failed = failed, cancelled = failed}
  parsed_retention[spec] = known
  return known
end

-- forget a job; one with a pending follow-up keeps its record (as fu:<id>) and dependents until the follow-up is cleared
local function drop(id)
  local key = jk(id)
  if redis.call('ZSCORE', FOLLOWUPS, id) and redis.call('EXISTS', key) == 1 then
    redis.call('RENAME', key, kept_key(id))
    redis.call('DEL', deps_key(id))
  else
    redis.call('DEL', key, deps_key(id), dependents_key(id))
  end
end

-- forget many jobs: one DEL per hundred when no follow-up is pending anywhere in the queue (the usual case)
local function drop_all(ids)
  if redis.call('ZCARD', FOLLOWUPS) > 0 then
    for _, id in ipairs(ids) do drop(id) end
    return
  end
  for i = 1, #ids, 100 do
    local keys = {}
    for j = i, math.min(i + 99, #ids) do
      local id = ids[j]
      keys[#keys + 1] = jk(id)
      keys[#keys + 1] = deps_key(id)
      keys[#keys + 1] = dependents_key(id)
    end
    redis.call('DEL', unpack(keys))
  end
end

-- enforce retention on one finished set: by count (oldest first), then by age; bounded work per call
local function retain(state, rules, now)
  local rule = rules[state]
  local set = fin(state)
  if rule.count then
    local excess = redis.call('ZCARD', set) - rule.count
    if excess > 0 then
      excess = math.min(excess, 1000)
      drop_all(redis.call('ZRANGE', set, 0, excess - 1))
      redis.call('ZREMRANGEBYRANK', set, 0, excess - 1)
    end
  end
  if rule.age then
    local cutoff = now - rule.age
    for _ = 1, 100 do
      local oldest = redis.call('ZRANGE', set, 0, 9)
      if #oldest == 0 then break end
      local stop = false
      for _, id in ipairs(oldest) do
        local finished = tonumber(redis.call('HGET', jk(id), 'finished_at'))
        if finished and finished >= cutoff then stop = true break end
        drop(id)
        redis.call('ZREM', set, id)
      end
      if stop then break end
    end
  end
end

local function retain_all(rules, now)
  retain('completed', rules, now)
  retain('failed', rules, now)
  retain('cancelled', rules, now)
end

-- ZADD of many (score, member) pairs, in chunks that stay within Lua's stack
local function zadd_many(key, items)
  for i = 1, #items, 1000 do
    redis.call('ZADD', key, unpack(items, i, math.min(i + 999, #items)))
  end
end

-- a job leaves active (its lease zset); a batch removes them all at once (see flush_batch)
local function unactive(id)
  if batch then batch.unactive[#batch.unactive + 1] = id return end
  redis.call('ZREM', ACTIVE, id)
end

-- the follow-up a job that ends leaves, from its hash's fields: 2 if it has dependents (link.lua sets `deps`),
-- 3 if it is a group member without them (they cannot come later, since link.lua answers an ended parent with
-- its end), else false
local function follow_up_of(deps, grp)
  if deps == '1' then return 2 end
  if grp == '1' then return 3 end
  return false
end

-- a job whose hash already says it ended (state, finished_at, token cleared): file it in its finished set
-- (in finish order), note its follow-up, apply retention. Returns the follow-up (see follow_up_of).
local function ended(id, state, now_s, rules, followed)
  if followed then redis.call('ZADD', FOLLOWUPS, now_s, id) end
  if batch then
    local ids = batch.ended[state]
    if not ids then ids = {} batch.ended[state] = ids end
    ids[#ids + 1] = id
    if not batch.retain[state] then batch.retain[state] = {rules, tonumber(now_s)} end  -- one clock and rule per call
    return followed
  end
  redis.call('ZADD', fin(state), redis.call('INCR', FSEQ), id)
  retain(state, rules, tonumber(now_s))
  return followed
end

-- move a job into a finished state. A job with dependents or a group gets a follow-up; returns false if none,
-- else 2 (it has dependents) or 3 (a group member without dependents)
local function finish_job(id, state, now_s, rules)
  local key = jk(id)
  redis.call('HSET', key, 'state', state, 'finished_at', now_s, 'token', '')
  local f = redis.call('HMGET', key, 'deps', 'grp')
  return ended(id, state, now_s, rules, follow_up_of(f[1], f[2]))
end

-- an active job stops being active: free its concurrency key's place and put the key's next parked job back in
-- line. ckey: the job's concurrency key as read by the caller (false: none), or nil to read it here
local function free_key(id, ckey)
  if ckey == nil then ckey = redis.call('HGET', jk(id), 'ckey') end
  if not ckey then return end
  if redis.call('HINCRBY', CKEYS, ckey, -1) <= 0 then redis.call('HDEL', CKEYS, ckey) end
  local nxt = redis.call('ZPOPMIN', parked_key(ckey))
  if #nxt > 0 then
    redis.call('ZREM', PARKED, nxt[1])
    redis.call('ZADD', WAITING, nxt[2], nxt[1])
    signal(1)
  end
end

local function begin_batch() batch = {signal = 0, retain = {}, unactive = {}, ended = {}} end

-- apply what a batch deferred, without ending it: the ZREM from active of the jobs that left it, and the
-- finished jobs filed in their sets in the order they ended (one INCRBY of the finish counter per set)
local function flush_batch()
  local done = batch
  if #done.unactive > 0 then
    for i = 1, #done.unactive, 1000 do
      redis.call('ZREM', ACTIVE, unpack(done.unactive, i, math.min(i + 999, #done.unactive)))
    end
    done.unactive = {}
  end
  for state, ids in pairs(done.ended) do
    local last = redis.call('INCRBY', FSEQ, #ids)
    local scored = {}
    for i, id in ipairs(ids) do
      scored[#scored + 1] = last - #ids + i
      scored[#scored + 1] = id
    end
    zadd_many(fin(state), scored)
  end
  done.ended = {}
end

local function end_batch()
  flush_batch()
  local done = batch
  batch = nil
  for state, how in pairs(done.retain) do retain(state, how[1], how[2]) end
  if done.signal > 0 then signal(done.signal) end
end

-- put a job in line: waiting now, or delayed until not_before
local function schedule(id, now)
  local key = jk(id)
  local f = redis.call('HMGET', key, 'priority', 'seq', 'not_before')
  local nb = tonumber(f[3])
  if nb and nb > now then
    redis.call('HSET', key, 'state', 'delayed')
    redis.call('ZADD', DELAYED, f[3], id)
  else
    redis.call('HSET', key, 'state', 'waiting')
    redis.call('ZADD', WAITING, wscore(f[1], f[2]), id)
    signal(1)
  end
end

-- delayed jobs whose time has come go to waiting
local function promote(now_s, limit)
  local due = redis.call('ZRANGEBYSCORE', DELAYED, '-inf', now_s, 'LIMIT', 0, limit)
  for _, id in ipairs(due) do
    redis.call('ZREM', DELAYED, id)
    local key = jk(id)
    local f = redis.call('HMGET', key, 'priority', 'seq', 'state')
    if f[3] == 'delayed' then
      redis.call('HSET', key, 'state', 'waiting')
      redis.call('ZADD', WAITING, wscore(f[1], f[2]), id)
    end
  end
  if #due > 0 then signal(#due) end
  return #due
end

-- a finished job whose age is past retention counts as gone; drop it now
local function expired(key, id, rules, now)
  local f = redis.call('HMGET', key, 'state', 'finished_at')
  local rule = rules[f[1] or '']
  if rule and rule.age and f[2] and now - tonumber(f[2]) > rule.age then
    redis.call('ZREM', fin(f[1]), id)
    drop(id)
    return true
  end
  return false
end

-- what workflow steps read of a job: env, state, error, result, attempt; from its hash, or from the copy drop()
-- kept for a pending follow-up (first, with kept_first: a job stored again under the id is not the one that
-- ended); state is false for a job not stored
local function record_of(id, kept_first)
  local first, second = jk(id), kept_key(id)
  if kept_first then first, second = second, first end
  local f = redis.call('HMGET', first, 'env', 'state', 'error', 'result', 'attempt')
  if not f[2] then f = redis.call('HMGET', second, 'env', 'state', 'error', 'result', 'attempt') end
  return f
end

local function is_finished(state)
  return state == 'completed' or state == 'failed' or state == 'cancelled'
end
