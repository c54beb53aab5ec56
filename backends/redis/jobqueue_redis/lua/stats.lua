-- Counts per state, after promoting due jobs and applying retention. ARGV: now, retention.
-- Returns {waiting, delayed, active, completed, failed, cancelled, paused, waiting-children};
-- waiting includes the jobs parked for their concurrency key.
local now = tonumber(ARGV[1])
promote(ARGV[1], 1000)
retain_all(parse_retention(ARGV[2]), now)
return {
  redis.call('ZCARD', WAITING) + redis.call('ZCARD', PARKED), redis.call('ZCARD', DELAYED), redis.call('ZCARD', ACTIVE),
  redis.call('ZCARD', fin('completed')), redis.call('ZCARD', fin('failed')), redis.call('ZCARD', fin('cancelled')),
  redis.call('EXISTS', PAUSED), redis.call('ZCARD', WCHILD),
}
