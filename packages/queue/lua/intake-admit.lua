--[[
  Admit one intake batch: register the first body seen of each txn that
  will be queued, check the others, and reserve backlog room for what will
  be queued, in one round trip.

  KEYS[1]      backlog counter (attempts queued and not yet decided)
  KEYS[2..n+1] txn registry keys, one per attempt (repeats allowed)
  ARGV[1]      backlog bound
  ARGV[2]      registry TTL, seconds (a backstop: the worker deletes the key
               once the decision is stored)
  ARGV[3+2i-2] body hash of attempt i
  ARGV[3+2i-1] mode of attempt i: "q" queue, "r" re-queue a repeat whose
               first copy has no stored decision yet, "i" immediate (needs
               no stock: the ingress stores it; checked, never registered)

  Returns an array: first the backlog after this batch, then one code per
  attempt: 1 first sighting (registered, or for "i" nothing registered),
  2 seen before with this body, 3 seen before with another body (409 unless
  Postgres holds this body's decision: the caller checks), 4 re-queued,
  5 refused because the queued attempts would pass the bound (nothing left
  registered or reserved for them; the batch's other attempts are admitted).
  Attempts to be queued (modes "q" and "r" with codes 1 or 4) take room.

  States of a txn here: absent -> registered (queued, in flight) -> absent
  (decided: Postgres answers for it from then on). An immediate decision is
  stored by one statement that cannot race a queued copy's 202 (it is checked
  here first, and its own stored row answers every later copy), so it needs
  no registration. Trade-off: one SET NX GET per queued attempt and one GET
  per immediate one; Redis holds only what is queued, and a key left by a
  crash expires. All keys of a batch in one script is one round trip, but
  ties the deployment to a single Redis node (the keys are not in one slot).
  Needs Redis 7 (SET with NX and GET together).
]]
local n = #KEYS - 1
local bound = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local codes = {}
local seen = {}
local fresh = {}
local reserve = 0
for i = 1, n do
  local key = KEYS[i + 1]
  local hash = ARGV[1 + 2 * i]
  local mode = ARGV[2 + 2 * i]
  local previous = seen[key]
  if not previous then
    if mode == "i" then
      previous = redis.call("GET", key)
    else
      previous = redis.call("SET", key, hash, "NX", "GET", "EX", ttl)
      if not previous then fresh[i] = true end
    end
    if previous then seen[key] = previous elseif mode ~= "i" then seen[key] = hash end
  end
  if fresh[i] then
    codes[i] = 1
    reserve = reserve + 1
  elseif not previous then
    codes[i] = 1
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
if reserve > 0 then
  if backlog + reserve > bound then
    for i = 1, n do
      if codes[i] == 4 or (codes[i] == 1 and ARGV[2 + 2 * i] ~= "i") then
        if fresh[i] then redis.call("DEL", KEYS[i + 1]) end
        codes[i] = 5
      end
    end
  else
    backlog = redis.call("INCRBY", KEYS[1], reserve)
  end
end
local reply = { backlog }
for i = 1, n do reply[i + 1] = codes[i] end
return reply
