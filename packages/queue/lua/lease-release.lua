--[[
  Release a partition lease held by this worker (graceful handover).

  KEYS[1]  lease key of the partition
  ARGV[1]  worker id

  Returns 1 when released, 0 when it was not ours any more.
]]
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0
