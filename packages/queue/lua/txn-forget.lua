--[[
  Forget txn registrations whose decision is stored, each only if it still
  holds the body hash the decider saw.

  KEYS[1..n]  txn registry keys
  ARGV[1..n]  body hash of the attempt decided (or answered 409) for KEYS[i]

  Returns the number of keys deleted.

  Why compare: a registration is the first body seen of a txn still in
  flight. Once a decision is stored, Postgres answers for the txn (a repeat
  from its row, another body 409 from its row), so the key can go. A key
  that holds another hash belongs to another body admitted meanwhile, and
  that body's own decider forgets it. Deleting the key of a body answered
  409 matters as much: left behind, it made every later copy of the stored
  body look like a conflict (issue #16).
  Trade-off: a txn decided long ago costs its resend a queue hop instead of
  a registry hit, and Redis holds only what is in flight.
]]
local deleted = 0
for i = 1, #KEYS do
  if redis.call("GET", KEYS[i]) == ARGV[i] then
    deleted = deleted + redis.call("DEL", KEYS[i])
  end
end
return deleted
