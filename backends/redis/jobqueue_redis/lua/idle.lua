-- A worker about to block on its inbox (base .. 'inbox:' .. token) and the queue's wake-up list registers here,
-- until the end of its wait by the server's clock; enqueue.lua hands a new job straight to such a worker:
-- it stores the job active under the worker's token and lease and pushes it onto the inbox (see enqueue.lua).
-- The worker's wake.lua call removes the registration once its wait is over (and takes a job handed meanwhile).
-- A paused queue takes no registration (pause.lua ends the ones there are), so enqueue.lua need not look.
-- ARGV: 'token|lease seconds', seconds it waits. Returns 1 if registered, 0 if paused.
if redis.call('EXISTS', PAUSED) == 1 then return 0 end
local t = redis.call('TIME')
local until_s = string.format('%.6f', tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[2]))
redis.call('ZADD', IDLE, until_s, ARGV[1])
return 1
