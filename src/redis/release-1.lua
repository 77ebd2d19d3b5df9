--[[
release-1.lua: gives a claim up, only if the caller still holds it.

KEYS[1]  the claim key
ARGV[1]  the claimant (a node id)

Returns 1 when the claim was released, 0 when the caller did not hold it.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
