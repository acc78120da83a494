--[[
  Reserve backlog room for the attempts an intake batch will queue, per
  partition, each partition all or nothing.

  KEYS[1..n]   backlog counters of n partitions (on a Redis Cluster, n = 1:
               each counter lives in its partition's slot)
  ARGV[1]      bound per partition (QUANTA_BACKLOG_MAX / partitions, so the
               total holds too)
  ARGV[1+i]    attempts to queue for partition i

  Returns one number per partition: its backlog after the reservation (>= 0),
  or -1 when the reservation would pass the bound (nothing reserved: the caller
  answers those attempts 503 and takes back their registrations).
  Trade-off: a partition's bound can refuse while another has room, which
  keeps one hot partition from filling everyone's queue; payers hash evenly.
]]
local bound = tonumber(ARGV[1])
local reply = {}
for i = 1, #KEYS do
  local want = tonumber(ARGV[1 + i])
  local backlog = tonumber(redis.call("GET", KEYS[i]) or "0")
  if backlog < 0 then
    -- Drift below zero (room given back for a reservation a failover lost): count from zero, so
    -- that a refusal (-1) is never confused with a counter value.
    redis.call("SET", KEYS[i], "0")
    backlog = 0
  end
  if want > 0 and backlog + want > bound then
    reply[i] = -1
  elseif want > 0 then
    reply[i] = redis.call("INCRBY", KEYS[i], want)
  else
    reply[i] = backlog
  end
end
return reply
