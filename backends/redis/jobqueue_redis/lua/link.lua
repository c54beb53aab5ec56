-- In the parent's queue: remember a child to tell when the parent ends, unless it has ended already.
-- ARGV: parent id, child (encoded ref), now, retention.
-- Returns {} once remembered; {'missing'} for a parent not stored; {state, error json, result json} if it ended.
local id = ARGV[1]
local key = jk(id)
if redis.call('EXISTS', key) == 1 then
  expired(key, id, parse_retention(ARGV[4]), tonumber(ARGV[3]))  -- past its age: gone, unless a follow-up keeps it
end
local f = record_of(id)
if not f[2] then return {'missing'} end
if is_finished(f[2]) then return {f[2], f[3] or '', f[4] or ''} end
redis.call('SADD', dependents_key(id), ARGV[2])
redis.call('HSET', key, 'deps', '1')  -- finish.lua reads the flag with the fields it reads anyway
return {}
