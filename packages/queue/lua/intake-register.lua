--[[
  Admit one intake batch: register the first body seen of each txn, and
  reserve backlog room for the attempts that will be queued, in one round trip.

  KEYS[1]      backlog counter (attempts queued and not yet decided)
  KEYS[2..n+1] txn registry keys, one per attempt (repeats allowed)
  ARGV[1]      backlog bound
  ARGV[2]      registry TTL, seconds, of an attempt that will be queued (a
               backstop: its worker deletes the key once the decision is stored)
  ARGV[3]      registry TTL, seconds, of an attempt the ingress stores itself
               (mode "i"; the ingress deletes the key once the decision is stored)
  ARGV[4+2i-2] body hash of attempt i
  ARGV[4+2i-1] mode of attempt i: "q" queue, "r" re-queue a repeat whose first
               copy has no stored decision yet, "i" immediate (needs no stock)

  Returns an array: first the backlog after this batch, then one code per
  attempt: 1 first sighting (registered), 2 seen before with this body,
  3 seen before with another body (409 unless Postgres holds this body's
  decision: the caller checks), 4 re-queued, 5 refused because the queued
  attempts would pass the bound (nothing left registered or reserved for
  them, nor for another body that only they had been seen with).
  Attempts to be queued (modes "q" and "r" with codes 1 or 4) take room.

  States of a txn here: absent -> registered (in flight: queued, or being
  stored by the ingress) -> absent (decided: Postgres answers for it from
  then on, a copy of the stored body with its decision, another body 409).
  Every first body is registered, immediate ones too: otherwise another body
  queued while an immediate one is still being stored could be answered 202
  and then find the txn decided with the other body.
  Trade-off: one SET NX GET per attempt; Redis holds only what is in flight,
  and a key left by a crash expires. All keys of a batch in one script is one
  round trip, but ties the deployment to a single Redis node (the keys are not
  in one slot). Needs Redis 7 (SET with NX and GET together).
]]
local n = #KEYS - 1
local bound = tonumber(ARGV[1])
local ttlQueued = tonumber(ARGV[2])
local ttlImmediate = tonumber(ARGV[3])
local codes = {}
local seen = {}
local freshBy = {}
local fresh = {}
local reserve = 0
for i = 1, n do
  local key = KEYS[i + 1]
  local hash = ARGV[2 + 2 * i]
  local mode = ARGV[3 + 2 * i]
  local previous = seen[key]
  if not previous then
    previous = redis.call("SET", key, hash, "NX", "GET", "EX", mode == "i" and ttlImmediate or ttlQueued)
    if previous then
      seen[key] = previous
    else
      seen[key] = hash
      freshBy[key] = i
      fresh[i] = true
    end
  end
  if fresh[i] then
    codes[i] = 1
    if mode ~= "i" then reserve = reserve + 1 end
  elseif previous ~= hash then
    codes[i] = 3
  elseif mode == "r" then
    codes[i] = 4
    reserve = reserve + 1
    -- Registered by an immediate copy (short TTL) that turned out to need stock: keep it as long as a queued one.
    redis.call("EXPIRE", KEYS[i + 1], ttlQueued)
  else
    codes[i] = 2
  end
end
local backlog = tonumber(redis.call("GET", KEYS[1]) or "0")
if reserve > 0 then
  if backlog + reserve > bound then
    local undone = {}
    for i = 1, n do
      local queued = ARGV[3 + 2 * i] ~= "i"
      if queued and (codes[i] == 1 or codes[i] == 4) then
        if fresh[i] then
          redis.call("DEL", KEYS[i + 1])
          undone[KEYS[i + 1]] = true
        end
        codes[i] = 5
      end
    end
    -- A copy judged against a registration just undone was judged against nothing.
    for i = 1, n do
      local key = KEYS[i + 1]
      if undone[key] and not fresh[i] and codes[i] ~= 5 then codes[i] = 5 end
    end
  else
    backlog = redis.call("INCRBY", KEYS[1], reserve)
  end
end
local reply = { backlog }
for i = 1, n do reply[i + 1] = codes[i] end
return reply
