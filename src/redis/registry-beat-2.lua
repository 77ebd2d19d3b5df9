--[[
registry-beat-2.lua: announces one node in the cluster-layout peer registry (one hash and
one sorted set under one hash tag, so a Redis Cluster serves them from one slot) and drops
entries whose node stopped announcing. Times are the server's clock, so the nodes' clocks
do not matter.

KEYS[1]  the entries: a hash, computer name -> PeerInfo JSON
KEYS[2]  the expiries: a sorted set, computer name -> expiry time (ms, server clock)
ARGV[1]  the computer name
ARGV[2]  its PeerInfo JSON
ARGV[3]  lifetime of the entry in ms
ARGV[4]  how many expired entries to drop at most

Returns the number of expired entries dropped. Both keys expire when the last entry does,
so a registry nobody announces in any more leaves nothing behind.
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
if #dead > 0 then
  redis.call('HDEL', KEYS[1], unpack(dead))
  redis.call('ZREM', KEYS[2], unpack(dead))
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
local until_ms = math.max(tonumber(last[2]), now + tonumber(ARGV[3]))
redis.call('PEXPIREAT', KEYS[1], until_ms)
redis.call('PEXPIREAT', KEYS[2], until_ms)
return #dead
