-- In the child's queue: the parents a child in waiting-children has not heard from (recovery links them again).
-- It counts as checked now: stale_children returns it again only after another while, so recovery goes round
-- every stale child however many there are. ARGV: child id, now. Returns the encoded refs.
local id = ARGV[1]
if redis.call('HGET', jk(id), 'state') ~= 'waiting-children' then return {} end
redis.call('ZADD', WCHILD, 'XX', ARGV[2], id)
return redis.call('SMEMBERS', deps_key(id))
