--[[
registry-leave-2.lua: removes a node's entry from the cluster-layout peer registry (see
registry-beat-2.lua), only if the entry is still that node's.

KEYS[1]  the entries: a hash, computer name -> PeerInfo JSON
KEYS[2]  the expiries: a sorted set, computer name -> expiry time
ARGV[1]  the computer name
ARGV[2]  the node id that wrote the entry

Returns 1 when the entry was removed, 0 when there was none or another node's.
]]
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local ok, entry = pcall(cjson.decode, v)
if not ok or type(entry) ~= 'table' or entry.nodeId ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
