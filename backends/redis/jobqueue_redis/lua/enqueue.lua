-- Store one job unless its id exists in the queue. One call per job.
-- ARGV: now, origin, retention, then the job's fields as enqueue_many.lua takes them (id, envelope json, priority,
--       not_before|'', created_at, attempt, max_attempts, concurrency key|'', group member '1'|''), then
--       idempotency key|'', the key's end (now + window), window in ms, then the parents (encoded refs) of a
--       job that depends on others. A job with no idempotency key and no parents stops after its fields.
-- Returns 1 if this call (or an earlier call with the same origin token) created the job, else 0;
-- {0, first id} when the idempotency key is held by another job within its window.
-- A plain job costs six calls: EXISTS, INCR, ZPOPMAX (an idle worker?), one HSET with its whole record and
-- state, ZADD, LPUSH.
-- A plain job due now, on a queue with nothing waiting, goes straight to a worker blocked on its inbox, if one
-- registered (idle.lua; no worker is registered on a paused queue): it is stored active under that worker's token
-- and lease (by the server's clock, as wake.lua claims) and pushed onto the inbox, whose BLPOP answers with it: no
-- claim call between the enqueue and the start. The inbox item: attempt '|' envelope json NUL id (the json holds no
-- raw NUL). Every call here is on the pick-up's path: what can be checked elsewhere is (pause: idle.lua and
-- pause.lua; a dead worker's inbox: claim.lua, as it reaps the job's lease).
for i = #ARGV + 1, 15 do ARGV[i] = '' end  -- the optional fields a plain job leaves out
local now = tonumber(ARGV[1])
local id = ARGV[4]
local key = jk(id)
if ARGV[13] ~= '' then
  -- the key answers with its first job until its end (app clock); PX only collects it afterwards
  local ikey = base .. 'idem:' .. ARGV[13]
  local held = redis.call('GET', ikey)
  local sep = held and string.find(held, '|', 1, true)
  if sep and tonumber(string.sub(held, 1, sep - 1)) > now then
    local first = string.sub(held, sep + 1)
    if first ~= id then return {0, first} end
  else
    redis.call('SET', ikey, ARGV[14] .. '|' .. id, 'PX', ARGV[15])
  end
end
if redis.call('EXISTS', key) == 1 and not expired(key, id, parse_retention(ARGV[3]), now) then
  if redis.call('HGET', key, 'origin') == ARGV[2] then return 1 end
  return 0
end
local seq = redis.call('INCR', SEQ)
local waits = #ARGV > 15  -- for its parents: delivered by resolve.lua once every one completed
local nb = tonumber(ARGV[7])
local delayed = not waits and nb and nb > now
local state = (waits and 'waiting-children') or (delayed and 'delayed') or 'waiting'
local worker = nil  -- token, lease deadline, start time and lease of the idle worker this job is handed to
if state == 'waiting' and ARGV[11] == '' then
  local idle = redis.call('ZPOPMAX', IDLE)  -- the registration with the longest wait left
  if #idle > 0 then
    local t = redis.call('TIME')
    local tnow = tonumber(t[1]) + tonumber(t[2]) / 1000000
    if tonumber(idle[2]) <= tnow then
      redis.call('DEL', IDLE)  -- the longest wait is over, so every one is: those workers went on (or died)
    elseif redis.call('ZCARD', WAITING) > 0 then
      redis.call('ZADD', IDLE, idle[2], idle[1])  -- jobs ahead of this one: the worker stays registered
    else
      local token, lease = string.match(idle[1], '^(.*)|([^|]*)$')
      lease = tonumber(lease)
      worker = {token, lease_ms(tnow + lease), string.format('%.6f', tnow), lease}
      state = 'active'
    end
  end
end
-- fields at their default are left out (no progress, cancel flag, lease token or due time: readers take a
-- missing one as 0, unset, none): a smaller record is a cheaper HSET
local record = {'env', ARGV[5], 'priority', ARGV[6], 'seq', seq, 'created_at', ARGV[8], 'attempt', ARGV[9],
  'max_attempts', ARGV[10], 'origin', ARGV[2], 'state', state}
if ARGV[7] ~= '' then record[#record + 1] = 'not_before' record[#record + 1] = ARGV[7] end
if worker then
  record[#record + 1] = 'token' record[#record + 1] = worker[1]
  record[#record + 1] = 'started_at' record[#record + 1] = worker[3]
end
if ARGV[11] ~= '' then record[#record + 1] = 'ckey' record[#record + 1] = ARGV[11] end
if ARGV[12] ~= '' then record[#record + 1] = 'grp' record[#record + 1] = '1' end
redis.call('HSET', key, unpack(record))
if waits then
  redis.call('ZADD', WCHILD, ARGV[1], id)
  redis.call('SADD', deps_key(id), unpack(ARGV, 16))
  return 1
end
if delayed then
  redis.call('ZADD', DELAYED, ARGV[7], id)
elseif worker then
  redis.call('ZADD', ACTIVE, worker[2], id)
  local inbox = base .. 'inbox:' .. worker[1]
  redis.call('RPUSH', inbox, ARGV[9] .. '|' .. ARGV[5] .. '\0' .. id)  -- a dead worker's: deleted as its lease is reaped
  return 1
else
  redis.call('ZADD', WAITING, wscore(ARGV[6], seq), id)
end
-- a wake-up either way: a worker sleeping until its next delayed job must see an earlier one.
-- The list is trimmed only when it is full (LPUSH answers its length), to half, so trims are rare.
if redis.call('LPUSH', SIGNAL, '1') > SIGNAL_MAX then redis.call('LTRIM', SIGNAL, 0, SIGNAL_MAX / 2 - 1) end
return 1
