-- Cancel a job: a pending one ends cancelled, an active one is flagged. ARGV: id, now, retention.
-- Returns 1 if cancelled or flagged, 0 if unknown or finished.
local id = ARGV[1]
local key = jk(id)
local state = redis.call('HGET', key, 'state')
if not state then return 0 end
if state == 'active' then
  redis.call('HSET', key, 'cancel', '1')
  return 1
end
if state == 'waiting' or state == 'delayed' then
  redis.call('ZREM', WAITING, id)
  redis.call('ZREM', DELAYED, id)
  finish_job(id, 'cancelled', ARGV[2], parse_retention(ARGV[3]))
  return 1
end
return 0
