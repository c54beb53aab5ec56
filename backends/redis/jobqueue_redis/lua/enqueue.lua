-- Store one job unless its id exists in the queue. One call per job.
-- ARGV: id, envelope json, priority, not_before|'', now, created_at, attempt, max_attempts, origin, retention,
--       idempotency key|'', the key's end (now + window), window in ms, concurrency key|'', group member '1'|'',
--       then the parents (encoded refs) of a job that depends on others
-- Returns 1 if this call (or an earlier call with the same origin token) created the job, else 0;
-- {0, first id} when the idempotency key is held by another job within its window.
local id = ARGV[1]
local key = jk(id)
local now = tonumber(ARGV[5])
local rules = parse_retention(ARGV[10])
if ARGV[11] ~= '' then
  -- the key answers with its first job until its end (app clock); PX only collects it afterwards
  local ikey = base .. 'idem:' .. ARGV[11]
  local held = redis.call('GET', ikey)
  local sep = held and string.find(held, '|', 1, true)
  if sep and tonumber(string.sub(held, 1, sep - 1)) > now then
    local first = string.sub(held, sep + 1)
    if first ~= id then return {0, first} end
  else
    redis.call('SET', ikey, ARGV[12] .. '|' .. id, 'PX', ARGV[13])
  end
end
if redis.call('EXISTS', key) == 1 and not expired(key, id, rules, now) then
  if redis.call('HGET', key, 'origin') == ARGV[9] then return 1 end
  return 0
end
local seq = redis.call('INCR', SEQ)
redis.call('HSET', key, 'env', ARGV[2], 'priority', ARGV[3], 'not_before', ARGV[4], 'seq', seq,
  'created_at', ARGV[6], 'attempt', ARGV[7], 'max_attempts', ARGV[8], 'origin', ARGV[9],
  'progress', '0', 'cancel', '0', 'token', '')
if ARGV[14] ~= '' then redis.call('HSET', key, 'ckey', ARGV[14]) end
if ARGV[15] ~= '' then redis.call('HSET', key, 'grp', '1') end
if #ARGV > 15 then
  -- waits for its parents: delivered by resolve.lua once every one completed
  redis.call('HSET', key, 'state', 'waiting-children')
  redis.call('ZADD', WCHILD, ARGV[5], id)
  redis.call('SADD', deps_key(id), unpack(ARGV, 16))
  return 1
end
schedule(id, now)
if redis.call('HGET', key, 'state') == 'delayed' then signal(1) end
return 1
