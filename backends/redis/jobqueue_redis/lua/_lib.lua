-- Shared prelude of every jobqueue script (prepended at load time).
-- KEYS[1] is the queue's key base "<prefix>:{<queue>}:"; every key a script touches starts with it,
-- so all of them hash to the queue's slot (Redis Cluster, Valkey).
-- Times are strings the client passes (the app's clock), never Redis TIME.
local base = KEYS[1]
local WAITING = base .. 'waiting'      -- zset: priority * 1e12 + seq -> id
local DELAYED = base .. 'delayed'      -- zset: not_before -> id
local ACTIVE = base .. 'active'        -- zset: lease deadline -> id
local SIGNAL = base .. 'signal'        -- list: one token per wake-up, trimmed
local PAUSED = base .. 'paused'        -- string: exists while paused
local RATE = base .. 'rate'            -- hash: start, count of the current rate-limit window
local SEQ = base .. 'seq'              -- counter: enqueue order
local FSEQ = base .. 'fseq'            -- counter: finish order
local SIGNAL_MAX = 1000

local function jk(id) return base .. 'job:' .. id end
local function fin(state) return base .. state end

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

-- retention spec "ccount,cage,fcount,fage" ('' = no bound); cancelled jobs follow the failed rule
local function parse_retention(spec)
  local parts = {}
  local i = 0
  for field in string.gmatch(spec .. ',', '([^,]*),') do
    i = i + 1
    parts[i] = tonumber(field)
  end
  local completed = {count = parts[1], age = parts[2]}
  local failed = {count = parts[3], age = parts[4]}
  return {completed = completed, failed = failed, cancelled = failed}
end

local function drop(id)
  redis.call('DEL', jk(id))
end

-- enforce retention on one finished set: by count (oldest first), then by age; bounded work per call
local function retain(state, rules, now)
  local rule = rules[state]
  local set = fin(state)
  if rule.count then
    local excess = redis.call('ZCARD', set) - rule.count
    if excess > 0 then
      excess = math.min(excess, 1000)
      local ids = redis.call('ZRANGE', set, 0, excess - 1)
      for _, id in ipairs(ids) do drop(id) end
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

-- move a job into a finished state
local function finish_job(id, state, now_s, rules)
  local key = jk(id)
  redis.call('HSET', key, 'state', state, 'finished_at', now_s, 'token', '')
  redis.call('ZADD', fin(state), redis.call('INCR', FSEQ), id)
  if batch then batch.retain[state] = {rules, tonumber(now_s)} return end
  retain(state, rules, tonumber(now_s))
end

local function begin_batch() batch = {signal = 0, retain = {}} end

local function end_batch()
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
    redis.call('DEL', key)
    return true
  end
  return false
end
