--[[
  Admit one intake batch: register each txn's first sighting and reserve
  backlog room for the attempts that will be queued, in one round trip.

  KEYS[1]      backlog counter (attempts queued and not yet decided)
  KEYS[2..n+1] txn registry keys, one per attempt (repeats allowed)
  ARGV[1]      backlog bound
  ARGV[2]      registry TTL, seconds, of an attempt that will be queued
  ARGV[3]      registry TTL, seconds, of an attempt the ingress decides
               itself (mode "i"): it deletes the key once the decision is
               stored, so this only bounds what a crash between the two
               leaves behind
  ARGV[3+2i-1] body hash of attempt i
  ARGV[3+2i]   mode of attempt i: "q" queue if first sighting, "i" immediate
               (needs no stock: stored by the ingress, never queued), "r"
               re-queue a repeat whose first copy has no stored decision yet

  Returns an array: first the backlog after this batch, then one code per
  attempt: 1 first sighting (registered), 2 seen before with this body,
  3 seen before with another body (txn_conflict), 4 re-queued, 5 refused
  because the queued attempts would pass the bound (nothing registered or
  reserved for them; immediate attempts of the batch are still admitted).
  Attempts to be queued (modes "q" and "r" with codes 1 or 4) take room.

  Trade-off: a txn is registered only while it is in flight (the ingress
  forgets what it stored, the worker what it decided: txn-forget.lua), so
  Redis holds what is queued or being decided, not every txn of the
  campaign; a copy with another body arriving after that is refused from
  Postgres's stored row (409) instead of by this script, and a code 3 here
  is checked against Postgres by the ingress before it answers 409.
  All keys of a batch in one script is one round trip instead of
  one per attempt, but ties the deployment to a single Redis node (the keys
  are not in one hash slot). Repeats inside one batch see the first copy as
  already registered (code 2), exactly as if they had come later.
]]
local n = #KEYS - 1
local bound = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local ttlAtOnce = tonumber(ARGV[3])
local codes = {}
local seen = {}
local reserve = 0
for i = 1, n do
  local key = KEYS[i + 1]
  local hash = ARGV[3 + 2 * i - 1]
  local mode = ARGV[3 + 2 * i]
  local previous = seen[key] or redis.call("GET", key)
  if not previous then
    codes[i] = 1
    seen[key] = hash
    if mode ~= "i" then reserve = reserve + 1 end
  elseif previous ~= hash then
    codes[i] = 3
  elseif mode == "r" then
    codes[i] = 4
    reserve = reserve + 1
  else
    codes[i] = 2
  end
end
local backlog = tonumber(redis.call("GET", KEYS[1]) or "0")
local refused = reserve > 0 and backlog + reserve > bound
for i = 1, n do
  local queued = ARGV[3 + 2 * i] ~= "i"
  if refused and queued and (codes[i] == 1 or codes[i] == 4) then
    codes[i] = 5
  elseif codes[i] == 1 then
    redis.call("SET", KEYS[i + 1], ARGV[3 + 2 * i - 1], "EX", queued and ttl or ttlAtOnce)
  elseif codes[i] == 4 then
    -- A repeat queued again may have been registered to be stored by the ingress: keep it as long as a queued one.
    redis.call("EXPIRE", KEYS[i + 1], ttl)
  end
end
if reserve > 0 and not refused then backlog = redis.call("INCRBY", KEYS[1], reserve) end
local reply = { backlog }
for i = 1, n do reply[i + 1] = codes[i] end
return reply
