-- Store one job unless its id exists in the queue. One call per job.
-- ARGV: id, envelope json, priority, not_before|'', now, created_at, attempt, max_attempts, origin, retention
-- Returns 1 if this call (or an earlier call with the same origin token) created the job, else 0.
local id = ARGV[1]
local key = jk(id)
local now = tonumber(ARGV[5])
local rules = parse_retention(ARGV[10])
if redis.call('EXISTS', key) == 1 and not expired(key, id, rules, now) then
  if redis.call('HGET', key, 'origin') == ARGV[9] then return 1 end
  return 0
end
local seq = redis.call('INCR', SEQ)
redis.call('HSET', key, 'env', ARGV[2], 'priority', ARGV[3], 'not_before', ARGV[4], 'seq', seq,
  'created_at', ARGV[6], 'attempt', ARGV[7], 'max_attempts', ARGV[8], 'origin', ARGV[9],
  'progress', '0', 'cancel', '0', 'token', '')
schedule(id, now)
if redis.call('HGET', key, 'state') == 'delayed' then signal(1) end
return 1
