--[[
  Renew a partition lease, only if this worker still holds it.

  KEYS[1]  lease key of the partition
  ARGV[1]  worker id (the lease value)
  ARGV[2]  lease duration, ms

  Returns 1 when renewed, 0 when the lease expired or belongs to another
  worker: the caller must stop draining the partition at once. Postgres
  fencing (the partition epoch) backs this up for a worker that was paused
  past its lease and has not yet noticed.
]]
if redis.call("GET", KEYS[1]) == ARGV[1] then
  redis.call("PEXPIRE", KEYS[1], ARGV[2])
  return 1
end
return 0
