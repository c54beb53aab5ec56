-- Pause (ARGV[1] = '1') or resume ('0') a queue; resuming wakes its workers.
if ARGV[1] == '1' then
  redis.call('SET', PAUSED, '1')
  redis.call('DEL', IDLE)  -- no job is handed to a worker of a paused queue (enqueue.lua); its wait ends as before
else
  redis.call('DEL', PAUSED)
  local n = redis.call('ZCARD', WAITING)
  if n > 0 then signal(n) end
end
return 1
