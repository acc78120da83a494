--[[
  Register the txns of one intake batch (or of the part of it in one slot):
  the first body seen of each txn, in one round trip.

  KEYS[1..n]   txn registry keys, one per attempt (repeats allowed); on a
               Redis Cluster all in one slot (one registry shard)
  ARGV[1]      registry TTL, seconds, of an attempt that will be queued (a
               backstop: its worker deletes the key once the decision is stored)
  ARGV[2]      registry TTL, seconds, of an attempt the ingress stores itself
               (mode "i"; the ingress deletes the key once the decision is stored)
  ARGV[2i+1]   body hash of attempt i
  ARGV[2i+2]   mode of attempt i: "q" queue, "r" re-queue a repeat whose first
               copy has no stored decision yet, "i" immediate (needs no stock)

  Returns one code per attempt: 1 first sighting (registered), 2 seen before
  with this body, 3 seen before with another body (409 unless Postgres holds
  this body's decision: the caller checks), 4 re-queued (a repeat in mode "r").
  Backlog room is reserved before, per partition (backlog-reserve.lua): an
  attempt of a full partition is never registered here, so a registration is
  never withdrawn for want of room.

  States of a txn here: absent -> registered (in flight: queued, or being
  stored by the ingress) -> absent (decided: Postgres answers for it from
  then on, a copy of the stored body with its decision, another body 409).
  The value is the body hash, with ":i" appended while the ingress stores
  that body's decision itself (mode "i"): nothing queued such a txn, so
  GET /v1/attempts must not call it pending (202 promises a decision, and a
  statement whose outcome is unknown may never have run). A re-queue turns
  the value back into the plain hash.
  Every first body is registered, immediate ones too: otherwise another body
  queued while an immediate one is still being stored could be answered 202
  and then find the txn decided with the other body.
  Trade-off: one SET NX GET per attempt; Redis holds only what is in flight,
  and a key left by a crash expires. Registering and reserving are two round
  trips, not one script: the registry is keyed by txn and the backlog by
  partition, two slots on a cluster. Needs Redis 7 (SET with NX and GET).
]]
local ttlQueued = tonumber(ARGV[1])
local ttlImmediate = tonumber(ARGV[2])
-- The body hash a value names (body hashes are hex: no ":" of their own).
local function bodyOf(value)
  return (string.gsub(value, ":i$", ""))
end
local codes = {}
local seen = {}
local fresh = {}
for i = 1, #KEYS do
  local key = KEYS[i]
  local hash = ARGV[1 + 2 * i]
  local mode = ARGV[2 + 2 * i]
  local previous = seen[key]
  if not previous then
    local value = mode == "i" and (hash .. ":i") or hash
    previous = redis.call("SET", key, value, "NX", "GET", "EX", mode == "i" and ttlImmediate or ttlQueued)
    if previous then
      previous = bodyOf(previous)
      seen[key] = previous
    else
      seen[key] = hash
      fresh[i] = true
    end
  end
  if fresh[i] then
    codes[i] = 1
  elseif previous ~= hash then
    codes[i] = 3
  elseif mode == "r" then
    codes[i] = 4
    -- Registered by an immediate copy (short TTL, ":i") that turned out to need stock: queued
    -- now, so the plain hash, kept as long as a queued one.
    redis.call("SET", key, hash, "XX", "EX", ttlQueued)
  else
    codes[i] = 2
  end
end
return codes
