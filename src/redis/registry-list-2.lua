--[[
registry-list-2.lua: the live entries of the cluster-layout peer registry (see
registry-beat-2.lua), by the server's clock.

KEYS[1]  the entries: a hash, computer name -> PeerInfo JSON
KEYS[2]  the expiries: a sorted set, computer name -> expiry time (ms, server clock)
ARGV[1]  how many entries to return at most

Returns the PeerInfo JSON of every entry that has not expired (an entry whose hash field
is gone is left out), soonest to expire last.
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local names = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. now, '+inf', 'LIMIT', 0, tonumber(ARGV[1]))
local out = {}
-- HMGET in chunks: unpack() of thousands of values would overflow Lua's stack.
for i = 1, #names, 500 do
  local values = redis.call('HMGET', KEYS[1], unpack(names, i, math.min(i + 499, #names)))
  for _, v in ipairs(values) do
    if v then out[#out + 1] = v end
  end
end
return out
