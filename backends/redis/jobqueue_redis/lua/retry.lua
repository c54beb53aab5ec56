-- Send failed or cancelled jobs back to waiting with fresh attempts.
-- ARGV: now, then ids; an id of '*' retries every failed job of the queue. Returns how many.
local now = tonumber(ARGV[1])
local ids = {}
for i = 2, #ARGV do
  if ARGV[i] == '*' then
    for _, id in ipairs(redis.call('ZRANGE', fin('failed'), 0, -1)) do ids[#ids + 1] = id end
  else
    ids[#ids + 1] = ARGV[i]
  end
end
local count = 0
for _, id in ipairs(ids) do
  local key = jk(id)
  local state = redis.call('HGET', key, 'state')
  if state == 'failed' or state == 'cancelled' then
    redis.call('ZREM', fin(state), id)
    redis.call('HSET', key, 'attempt', '1', 'not_before', '', 'cancel', '0', 'finished_at', '',
      'progress', '0', 'token', '')
    schedule(id, now)
    count = count + 1
  end
end
return count
