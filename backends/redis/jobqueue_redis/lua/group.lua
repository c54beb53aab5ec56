-- A group's record and tally, in its home queue: group:<gid> (hash: record json, size, completed, failed,
-- cancelled), gends:<gid> (hash: member index -> end json), gorder:<gid> (zset: member index, for paging).
-- Each write sets the keys to expire ttl ms later: a group is kept well past its callback, not forever.
-- ARGV[1] = 'create', gid, record json, size, ttl ms: store unless it exists; returns the stored record json
-- ARGV[1] = 'tally', gid, index, end json, end state, ttl ms: count the member once; returns the tally
-- ARGV[1] = 'count', gid: the tally, or {} for an unknown group
-- ARGV[1] = 'ends', gid, start, limit: flat index, end json of the counted members by index, from the start-th
-- A tally is {size, completed, failed, cancelled}.
local op, gid = ARGV[1], ARGV[2]
local G = base .. 'group:' .. gid
local ENDS = base .. 'gends:' .. gid
local ORDER = base .. 'gorder:' .. gid
local function tally()
  local f = redis.call('HMGET', G, 'size', 'completed', 'failed', 'cancelled')
  return {f[1] or tostring(redis.call('HLEN', ENDS)), f[2] or '0', f[3] or '0', f[4] or '0'}
end
if op == 'create' then
  local stored = redis.call('HGET', G, 'record')
  if stored then return stored end
  redis.call('HSET', G, 'record', ARGV[3], 'size', ARGV[4])
  redis.call('PEXPIRE', G, ARGV[5])
  return ARGV[3]
elseif op == 'tally' then
  if redis.call('HSETNX', ENDS, ARGV[3], ARGV[4]) == 1 then
    redis.call('ZADD', ORDER, ARGV[3], ARGV[3])
    redis.call('HINCRBY', G, ARGV[5], 1)
    for _, key in ipairs({G, ENDS, ORDER}) do redis.call('PEXPIRE', key, ARGV[6]) end
  end
  return tally()
elseif op == 'count' then
  if redis.call('HEXISTS', G, 'record') == 0 then return {} end
  return tally()
elseif op == 'ends' then
  local start = tonumber(ARGV[3])
  local indexes = redis.call('ZRANGE', ORDER, start, start + tonumber(ARGV[4]) - 1)
  if #indexes == 0 then return {} end
  local ends = redis.call('HMGET', ENDS, unpack(indexes))
  local out = {}
  for i, index in ipairs(indexes) do
    out[#out + 1] = index
    out[#out + 1] = ends[i]
  end
  return out
end
return redis.error_reply('unknown op ' .. tostring(op))
