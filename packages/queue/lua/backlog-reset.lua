--[[
  Zero a partition's backlog counter when its queue is idle.

  KEYS[1]      the partition's backlog counter
  KEYS[2..5]   its queue's four BullMQ keys: wait list, active list, delayed
               zset, prioritized zset (all in the partition's slot)
  ARGV         none

  Returns 1 when it corrected a counter that was not 0, 0 otherwise (the
  queue still holds jobs, or there was nothing to correct). Run by workers
  every few seconds; corrects drift left by a process killed between a
  reserve and its add, or between a decision and its release.
]]
for i = 2, #KEYS, 4 do
  if redis.call("LLEN", KEYS[i]) > 0 or redis.call("LLEN", KEYS[i + 1]) > 0
     or redis.call("ZCARD", KEYS[i + 2]) > 0 or redis.call("ZCARD", KEYS[i + 3]) > 0 then
    return 0
  end
end
local before = tonumber(redis.call("GET", KEYS[1]) or "0")
if before == 0 then return 0 end
redis.call("SET", KEYS[1], "0")
return 1
