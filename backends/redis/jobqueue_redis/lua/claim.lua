-- Take up to N due jobs for a worker: reap expired leases, promote due delayed jobs, honour
-- pause, the queue's concurrency cap and its rate limit, then mark jobs active under a lease.
-- A job whose concurrency key already has its limit of active jobs is parked (parked:<key>) until one
-- of them leaves active (free_key).
-- ARGV: now, n, lease deadline (integer ms), token prefix, concurrency|'', rate limit|'', rate period|'',
--       lost-lease error json, retention, active jobs allowed per concurrency key
-- Returns {jobs, hint, followed}: jobs = flat list of id, envelope, attempt, token, ...; hint = the earliest
-- time something may become claimable (next delayed, rate window reopening, lease expiry) or '';
-- followed = ids of jobs whose lease ran out for good and that left a follow-up (dependents, group).
local now_s = ARGV[1]
local now = tonumber(now_s)
local now_ms = now * 1000  -- the active set's scores are lease deadlines in ms
local want = tonumber(ARGV[2])
local rules = parse_retention(ARGV[9])
local per_key = tonumber(ARGV[10]) or 1
local followed = {}

-- the earliest lease and the earliest delayed job, each read once: they say whether to reap or promote at all,
-- and (unless that changed them) they are the hint's answer too
local first_lease = redis.call('ZRANGE', ACTIVE, 0, 0, 'WITHSCORES')
local first_delayed = redis.call('ZRANGE', DELAYED, 0, 0, 'WITHSCORES')

-- leases that ran out: the attempt counts; deliver again or fail
local dead = {}
if #first_lease > 0 and tonumber(first_lease[2]) <= now_ms then
  dead = redis.call('ZRANGEBYSCORE', ACTIVE, '-inf', string.format('%.3f', now_ms), 'LIMIT', 0, 100)
  first_lease = nil  -- read again for the hint
end
for _, id in ipairs(dead) do
  redis.call('ZREM', ACTIVE, id)
  local key = jk(id)
  local f = redis.call('HMGET', key, 'state', 'attempt', 'max_attempts', 'cancel', 'ckey', 'token')
  if f[6] and string.sub(f[6], -2) == ':0' then
    redis.call('DEL', base .. 'inbox:' .. f[6])  -- handed to a wait (its token ends ':0') that never took it: gone now
  end
  if f[1] == 'active' then
    free_key(id, f[5])
    redis.call('HSET', key, 'error', ARGV[8], 'token', '')
    local ended = false
    if f[4] == '1' then
      ended = finish_job(id, 'cancelled', now_s, rules)
    elseif tonumber(f[2]) < tonumber(f[3]) then
      redis.call('HSET', key, 'attempt', tonumber(f[2]) + 1, 'not_before', '', 'progress', '0')
      schedule(id, now)
    else
      ended = finish_job(id, 'failed', now_s, rules)
    end
    if ended then followed[#followed + 1] = id end
  end
end

if (#first_delayed > 0 and tonumber(first_delayed[2]) <= now) or #dead > 0 then  -- a reaped job may be delayed
  promote(now_s, 1000)
  first_delayed = nil
end

local taken = 0
local function hint()
  local best = nil
  local d = first_delayed or redis.call('ZRANGE', DELAYED, 0, 0, 'WITHSCORES')
  if #d > 0 then best = tonumber(d[2]) end
  local a = first_lease or redis.call('ZRANGE', ACTIVE, 0, 0, 'WITHSCORES')
  local lease = #a > 0 and tonumber(a[2]) / 1000 or nil
  local mine = tonumber(ARGV[3]) / 1000
  if taken > 0 and (not lease or mine < lease) then lease = mine end  -- this claim's leases
  if lease and (not best or lease < best) then best = lease end
  return best
end

local function reply(jobs, extra, full)
  if full then return {jobs, '', followed} end  -- the caller comes back for more soon: no hint needed
  local best = hint()
  if extra and (not best or extra < best) then best = extra end
  return {jobs, best and string.format('%.6f', best) or '', followed}
end

if redis.call('EXISTS', PAUSED) == 1 then return reply({}, nil) end
local n = want
if ARGV[5] ~= '' then
  n = math.min(n, tonumber(ARGV[5]) - redis.call('ZCARD', ACTIVE))
end
local reopen = nil
local limit = tonumber(ARGV[6])
if limit then
  local period = tonumber(ARGV[7])
  local r = redis.call('HMGET', RATE, 'start', 'count')
  local start, count = tonumber(r[1]), tonumber(r[2])
  if not start or now - start >= period then
    start, count = now, 0
    redis.call('HSET', RATE, 'start', now_s, 'count', 0)
    redis.call('PEXPIRE', RATE, math.ceil(period * 1000) + 60000)
  end
  n = math.min(n, limit - count)
  if n <= 0 then reopen = start + period end
end
if n <= 0 then
  if redis.call('ZCARD', WAITING) == 0 then reopen = nil end
  return reply({}, reopen)
end

local jobs = {}
local leases = {}  -- deadline, id pairs: one ZADD to active for the whole claim
for _ = 1, 20 do  -- parked jobs leave room for more: take again, a bounded number of times
  -- the first ids without their scores, removed together below (ZPOPMIN would format every score as text)
  local head = redis.call('ZRANGE', WAITING, 0, n - taken - 1)
  drained = #head < n - taken
  local parked = 0
  for i = 1, #head do
    local id = head[i]
    local key = jk(id)
    local f = redis.call('HMGET', key, 'state', 'env', 'attempt', 'ckey')
    if f[1] == 'waiting' and f[4] and (tonumber(redis.call('HGET', CKEYS, f[4])) or 0) >= per_key then
      parked = parked + 1
      local score = redis.call('ZSCORE', WAITING, id)
      redis.call('ZADD', parked_key(f[4]), score, id)
      redis.call('ZADD', PARKED, score, id)
    elseif f[1] == 'waiting' then
      if f[4] then redis.call('HINCRBY', CKEYS, f[4], 1) end
      taken = taken + 1
      local token = ARGV[4] .. ':' .. taken
      -- no progress to reset: an attempt that ends without completing resets it (finish, lease reaped, release, retry)
      redis.call('HSET', key, 'state', 'active', 'started_at', now_s, 'token', token)
      leases[#leases + 1] = ARGV[3]
      leases[#leases + 1] = id
      jobs[#jobs + 1] = id
      jobs[#jobs + 1] = f[2]
      jobs[#jobs + 1] = f[3]
      jobs[#jobs + 1] = token
    end
  end
  if #head > 0 then redis.call('ZREMRANGEBYRANK', WAITING, 0, #head - 1) end
  if parked == 0 or taken >= n then break end
end
zadd_many(ACTIVE, leases)
if limit and taken > 0 then redis.call('HINCRBY', RATE, 'count', taken) end
return reply(jobs, nil, taken >= want)
