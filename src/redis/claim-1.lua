--[[
claim-1.lua: takes or refreshes a name on a shared Redis for one node.

KEYS[1]  the claim key
ARGV[1]  the claimant (a node id)
ARGV[2]  lifetime in ms (the claim expires unless refreshed)

Returns 'OK' when the claim is (now) the claimant's, or { holder, remaining ms } when
another node holds it.
]]
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
  return 'OK'
end
return { holder, redis.call('PTTL', KEYS[1]) }
