-- Remove jobs in one state whose last change is at or before a cutoff, a slice at a time.
-- ARGV: state, cutoff, offset, count. Returns {removed, scanned}.
local state = ARGV[1]
local cutoff = tonumber(ARGV[2])
local set
if state == 'waiting' then set = WAITING elseif state == 'delayed' then set = DELAYED else set = fin(state) end
local ids = redis.call('ZRANGE', set, tonumber(ARGV[3]), tonumber(ARGV[3]) + tonumber(ARGV[4]) - 1)
local removed = 0
for _, id in ipairs(ids) do
  local f = redis.call('HMGET', jk(id), 'finished_at', 'created_at')
  local when = tonumber(f[1]) or tonumber(f[2]) or 0
  if when <= cutoff then
    redis.call('ZREM', set, id)
    drop(id)
    removed = removed + 1
  end
end
return {removed, #ids}
