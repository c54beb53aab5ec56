-- Follow-ups of one queue: jobs that ended with dependents or a group not all told yet.
-- ARGV[1] = 'pending', cutoff, limit, now: those recorded at or before cutoff; each counts as handed out now
--             (so one that keeps failing does not hide the others); returns flat id, env, state, error, result, attempt
-- ARGV[1] = 'one', id: that job's follow-up, if pending (same six fields, or {})
-- ARGV[1] = 'clear', id: forget it (and the record drop() kept for it)
local op = ARGV[1]
local function entry(id, out)
  local f = record_of(id, true)
  if not f[2] or not f[1] then
    redis.call('ZREM', FOLLOWUPS, id)  -- nothing left to build it from
    return
  end
  if not is_finished(f[2]) then return end  -- retried since: its next end records the follow-up again
  out[#out + 1] = id
  for i = 1, 5 do out[#out + 1] = f[i] or '' end
end
if op == 'pending' then
  local ids = redis.call('ZRANGEBYSCORE', FOLLOWUPS, '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
  local out = {}
  for _, id in ipairs(ids) do
    redis.call('ZADD', FOLLOWUPS, 'XX', ARGV[4], id)
    entry(id, out)
  end
  return out
elseif op == 'one' then
  local out = {}
  if redis.call('ZSCORE', FOLLOWUPS, ARGV[2]) then entry(ARGV[2], out) end
  return out
elseif op == 'clear' then
  local id = ARGV[2]
  redis.call('ZREM', FOLLOWUPS, id)
  redis.call('DEL', kept_key(id))
  if redis.call('EXISTS', jk(id)) == 0 then redis.call('DEL', dependents_key(id)) end
  return 1
end
return redis.error_reply('unknown op ' .. tostring(op))
