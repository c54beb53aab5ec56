-- Extend the leases a worker holds. ARGV: new deadline (integer ms), then id, token pairs.
-- Returns the ids whose lease was lost (reaped, cancelled-and-finished, or taken by another worker).
local lost = {}
for i = 2, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local f = redis.call('HMGET', jk(id), 'state', 'token')
  if f[1] == 'active' and f[2] == token then
    redis.call('ZADD', ACTIVE, 'XX', ARGV[1], id)
  else
    lost[#lost + 1] = id
  end
end
return lost
