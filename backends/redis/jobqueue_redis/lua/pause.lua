-- Pause (ARGV[1] = '1') or resume ('0') a queue; resuming wakes its workers.
if ARGV[1] == '1' then
  redis.call('SET', PAUSED, '1')
else
  redis.call('DEL', PAUSED)
  local n = redis.call('ZCARD', WAITING)
  if n > 0 then signal(n) end
end
return 1
