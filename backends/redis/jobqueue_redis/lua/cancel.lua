-- Cancel a job: a pending one ends cancelled, an active one is flagged. ARGV: id, now, retention.
-- Returns 1 if cancelled or flagged, 2 if cancelled with a follow-up to run (dependents, group),
-- 0 if unknown or finished.
local id = ARGV[1]
local key = jk(id)
local f = redis.call('HMGET', key, 'state', 'ckey')
local state = f[1]
if not state then return 0 end
if state == 'active' then
  redis.call('HSET', key, 'cancel', '1')
  return 1
end
if state == 'waiting' or state == 'delayed' or state == 'waiting-children' then
  redis.call('ZREM', WAITING, id)
  redis.call('ZREM', DELAYED, id)
  redis.call('ZREM', WCHILD, id)
  redis.call('DEL', deps_key(id))
  if f[2] then
    redis.call('ZREM', PARKED, id)
    redis.call('ZREM', parked_key(f[2]), id)
  end
  if finish_job(id, 'cancelled', ARGV[2], parse_retention(ARGV[3])) then return 2 end
  return 1
end
return 0
