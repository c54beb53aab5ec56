-- Give active jobs back (worker shutting down): they wait again, same attempt, same place in line.
-- ARGV: now, retention, then id, token pairs. Returns how many were given back.
local now_s = ARGV[1]
local rules = parse_retention(ARGV[2])
local released = 0
for i = 3, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local key = jk(id)
  local f = redis.call('HMGET', key, 'state', 'token', 'cancel', 'ckey')
  if f[1] == 'active' and f[2] == token then
    redis.call('ZREM', ACTIVE, id)
    free_key(id, f[4])
    redis.call('HSET', key, 'token', '', 'progress', '0')
    if f[3] == '1' then
      finish_job(id, 'cancelled', now_s, rules)
    else
      redis.call('HSET', key, 'not_before', '')
      schedule(id, tonumber(now_s))
    end
    released = released + 1
  end
end
return released
