-- Write progress if the caller holds the lease. ARGV: id, token, value. Returns 1 or 0.
local key = jk(ARGV[1])
local f = redis.call('HMGET', key, 'state', 'token')
if f[1] ~= 'active' or f[2] ~= ARGV[2] then return 0 end
redis.call('HSET', key, 'progress', ARGV[3])
return 1
