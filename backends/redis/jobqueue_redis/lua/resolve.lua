-- In the child's queue: note that one parent ended. Nothing unless the child is in waiting-children.
-- ARGV: child id, parent (encoded ref), parent's end state, the child's error json if that end fails it, now, retention.
-- Returns {} (still waiting, or nothing to do); {'released', env, attempt} once every parent completed (the
-- child is now waiting or delayed, and workers are woken); {'ended'} or {'followup', env, state, error, result,
-- attempt} when a failed or cancelled parent ended the child (with a follow-up for its own dependents / group).
local id = ARGV[1]
local key = jk(id)
if redis.call('HGET', key, 'state') ~= 'waiting-children' then return {} end
local now_s = ARGV[5]
if ARGV[3] == 'completed' then
  redis.call('SREM', deps_key(id), ARGV[2])
  if redis.call('SCARD', deps_key(id)) > 0 then return {} end
  redis.call('ZREM', WCHILD, id)
  schedule(id, tonumber(now_s))
  local f = redis.call('HMGET', key, 'env', 'attempt', 'state')
  if f[3] == 'delayed' then signal(1) end
  return {'released', f[1], f[2]}
end
redis.call('ZREM', WCHILD, id)
redis.call('DEL', deps_key(id))
redis.call('HSET', key, 'error', ARGV[4])
local state = 'failed'
if ARGV[3] == 'cancelled' then state = 'cancelled' end
if not finish_job(id, state, now_s, parse_retention(ARGV[6])) then return {'ended'} end
local f = record_of(id)  -- ended just now (retention may have moved it to fu:<id> already)
return {'followup', f[1], f[2], f[3] or '', f[4] or '', f[5] or ''}
