-- Record how an attempt ended, if the caller still holds the job's lease.
-- ARGV: id, token, now, outcome (completed|delayed|failed|cancelled), envelope json|'', attempt,
--       not_before|'', result json|'', error json|'', retention, '1' if the queue has a concurrency cap|''
-- Returns 1 if written, 0 if the lease was lost (nothing written); if written and the job ended with a
-- follow-up to run: 2 (it has dependents) or 3 (a group member without dependents).
local id = ARGV[1]
local key = jk(id)
local now_s = ARGV[3]
-- everything this needs of the hash in one read: its concurrency key and workflow flags too (the cancel flag
-- matters only to a retry, which reads it itself)
local f = redis.call('HMGET', key, 'state', 'token', 'ckey', 'deps', 'grp', 'error')
if f[1] ~= 'active' or f[2] ~= ARGV[2] then return 0 end
unactive(id)
free_key(id, f[3])
local outcome = ARGV[4]
if outcome == 'completed' and ARGV[9] == '' and not f[6] then
  -- the usual end, written with no table built for it (a tenth of the worker's cycle script, measured)
  redis.call('HSET', key, 'token', '', 'result', ARGV[8], 'progress', '100', 'state', outcome, 'finished_at', now_s)
else
  local fields = {'token', ''}
  if ARGV[9] ~= '' then
    fields[#fields + 1] = 'error'
    fields[#fields + 1] = ARGV[9]
  end
  if outcome == 'delayed' then
    if ARGV[5] ~= '' then
      fields[#fields + 1] = 'env'
      fields[#fields + 1] = ARGV[5]
    end
    fields[#fields + 1] = 'attempt'
    fields[#fields + 1] = ARGV[6]
    fields[#fields + 1] = 'not_before'
    fields[#fields + 1] = ARGV[7]
    fields[#fields + 1] = 'progress'  -- the next attempt starts from nothing (the claim does not reset it)
    fields[#fields + 1] = '0'
    if redis.call('HGET', key, 'cancel') == '1' then  -- cancelled while it ran: it ends instead of waiting for its next attempt
      outcome = 'cancelled'
    else
      redis.call('HSET', key, unpack(fields))
      schedule(id, tonumber(now_s))
    end
  elseif outcome == 'completed' then
    fields[#fields + 1] = 'result'
    fields[#fields + 1] = ARGV[8]
    fields[#fields + 1] = 'progress'
    fields[#fields + 1] = '100'
    if f[6] and ARGV[9] == '' then redis.call('HDEL', key, 'error') end  -- an earlier attempt's error
  end
  if outcome ~= 'delayed' then
    fields[#fields + 1] = 'state'
    fields[#fields + 1] = outcome
    fields[#fields + 1] = 'finished_at'
    fields[#fields + 1] = now_s
    redis.call('HSET', key, unpack(fields))
  end
end
-- an end (not a retry): filed in its finished set, with its follow-up noted
local followed = outcome ~= 'delayed' and ended(id, outcome, now_s, parse_retention(ARGV[10]), follow_up_of(f[4], f[5]))
-- a slot freed: wake a worker that held back for the queue's concurrency cap
if ARGV[11] == '1' and redis.call('ZCARD', WAITING) > 0 then signal(1) end
if followed then return followed end
return 1
