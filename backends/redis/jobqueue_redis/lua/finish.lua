-- Record how an attempt ended, if the caller still holds the job's lease.
-- ARGV: id, token, now, outcome (completed|delayed|failed|cancelled), envelope json|'', attempt,
--       not_before|'', result json|'', error json|'', retention
-- Returns 1 if written, 0 if the lease was lost (nothing written); if written and the job ended with a
-- follow-up to run: 2 (it has dependents) or 3 (a group member without dependents).
local id = ARGV[1]
local key = jk(id)
local now_s = ARGV[3]
local f = redis.call('HMGET', key, 'state', 'token', 'cancel')
if f[1] ~= 'active' or f[2] ~= ARGV[2] then return 0 end
local rules = parse_retention(ARGV[10])
redis.call('ZREM', ACTIVE, id)
free_key(id)
redis.call('HSET', key, 'token', '')
local followed = false
if ARGV[9] ~= '' then redis.call('HSET', key, 'error', ARGV[9]) end
local outcome = ARGV[4]
if outcome == 'delayed' then
  if ARGV[5] ~= '' then redis.call('HSET', key, 'env', ARGV[5]) end
  redis.call('HSET', key, 'attempt', ARGV[6], 'not_before', ARGV[7])
  if f[3] == '1' then
    followed = finish_job(id, 'cancelled', now_s, rules)
  else
    schedule(id, tonumber(now_s))
  end
elseif outcome == 'completed' then
  redis.call('HSET', key, 'result', ARGV[8], 'progress', '100')
  redis.call('HDEL', key, 'error')
  followed = finish_job(id, 'completed', now_s, rules)
else
  followed = finish_job(id, outcome, now_s, rules)
end
-- a slot freed: wake a worker that held back for the queue's concurrency cap
if redis.call('ZCARD', WAITING) > 0 then signal(1) end
if followed then return followed end
return 1
