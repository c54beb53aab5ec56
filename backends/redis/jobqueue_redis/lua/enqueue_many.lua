-- Store many jobs of one queue in one call (enqueue_many): enqueue.lua's work for each job that has neither an
-- idempotency key nor parents (those go through enqueue.lua), with the counter, the waiting set's ZADD and the
-- wake-ups done once for the whole call.
-- ARGV: now, origin, retention, then per job 9 fields: id, envelope json, priority, not_before|'', created_at,
--       attempt, max_attempts, concurrency key|'', group member '1'|''
-- Returns one answer per job, as enqueue.lua's: 1 if this call (or an earlier call with the same origin token)
-- created it, else 0.
local now = tonumber(ARGV[1])
local origin = ARGV[2]
local rules = nil
local n = (#ARGV - 3) / 9
local last = redis.call('INCRBY', SEQ, n)
local answers = {}
local waiting = {}
local woken = 0
for j = 1, n do
  local at = 3 + (j - 1) * 9
  local id = ARGV[at + 1]
  local key = jk(id)
  local exists = redis.call('EXISTS', key) == 1
  if exists then
    rules = rules or parse_retention(ARGV[3])
    exists = not expired(key, id, rules, now)
  end
  if exists then
    answers[j] = (redis.call('HGET', key, 'origin') == origin) and 1 or 0
  else
    local seq = last - n + j
    local nb = tonumber(ARGV[at + 4])
    local delayed = nb and nb > now
    local record = {'env', ARGV[at + 2], 'priority', ARGV[at + 3], 'seq', seq, 'created_at', ARGV[at + 5],
      'attempt', ARGV[at + 6], 'max_attempts', ARGV[at + 7], 'origin', origin,
      'state', delayed and 'delayed' or 'waiting'}  -- fields at their default left out, as in enqueue.lua
    if ARGV[at + 4] ~= '' then record[#record + 1] = 'not_before' record[#record + 1] = ARGV[at + 4] end
    if ARGV[at + 8] ~= '' then record[#record + 1] = 'ckey' record[#record + 1] = ARGV[at + 8] end
    if ARGV[at + 9] ~= '' then record[#record + 1] = 'grp' record[#record + 1] = '1' end
    redis.call('HSET', key, unpack(record))
    if delayed then
      redis.call('ZADD', DELAYED, ARGV[at + 4], id)
    else
      waiting[#waiting + 1] = wscore(ARGV[at + 3], seq)
      waiting[#waiting + 1] = id
    end
    woken = woken + 1
    answers[j] = 1
  end
end
if #waiting > 0 then redis.call('ZADD', WAITING, unpack(waiting)) end
if woken > 0 then
  local tokens = {}
  for i = 1, math.min(woken, SIGNAL_MAX) do tokens[i] = '1' end
  if redis.call('LPUSH', SIGNAL, unpack(tokens)) > SIGNAL_MAX then redis.call('LTRIM', SIGNAL, 0, SIGNAL_MAX - 1) end
end
return answers
