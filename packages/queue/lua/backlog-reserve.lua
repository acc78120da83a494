--[[
  Reserve room in the backlog for a batch of attempts, or refuse it whole.

  KEYS[1]  backlog counter (attempts queued and not yet decided)
  ARGV[1]  attempts in the batch (n > 0)
  ARGV[2]  backlog bound

  Returns the new backlog, or -1 when the batch would pass the bound (nothing
  reserved). The ingress reserves before adding the job and releases on a
  failed add, so the counter is an upper bound at every moment; a crash
  between reserve and add leaks a little room, which backlog-reset.lua takes
  back once the queues are idle. Trade-off: one counter for all partitions
  (one round trip per batch) instead of an exact per-partition bound.
]]
local n = tonumber(ARGV[1])
local bound = tonumber(ARGV[2])
local current = tonumber(redis.call("GET", KEYS[1]) or "0")
if current + n > bound then
  return -1
end
return redis.call("INCRBY", KEYS[1], n)
