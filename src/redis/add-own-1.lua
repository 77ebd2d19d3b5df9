--[[
add-own-1.lua: appends a node's events to its own bus stream and, for events the node has
already applied, moves the node's consumer group past them, so the group does not read them
back only to skip them. Other consumer groups read every entry as usual.

KEYS[1]  the stream
ARGV[1]  the node's consumer group
ARGV[2..] the entries, in order, each as: applied ('1' or '0'), the number of fields and
          values that follow (n), then those n strings (field, value, field, value, ...)

The group is moved only while it had read everything on the stream before the entry (its
last-delivered-id is the stream's last id), and only across entries marked applied: the first
entry not applied, or a group behind the stream (another program's entries it has not read,
or the node's own events waiting for it), leaves the group where it is, and the node's reader
then reads and skips what follows, as without this script. Entries the group is moved past
are never pending in it; trimming deletes them once every other group has read them.

Returns the number of entries the group was moved past.
]]
local stream, group = KEYS[1], ARGV[1]
local caught = false
local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', stream)
if ok then
  local delivered
  for _, g in ipairs(groups) do
    local name, last
    for i = 1, #g, 2 do
      if g[i] == 'name' then name = g[i + 1] end
      if g[i] == 'last-delivered-id' then last = g[i + 1] end
    end
    if name == group then delivered = last end
  end
  if delivered then
    local info = redis.call('XINFO', 'STREAM', stream)
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' then caught = info[i + 1] == delivered end
    end
  end
end

local past, moved = nil, 0
local i = 2
while i <= #ARGV do
  local applied, n = ARGV[i], tonumber(ARGV[i + 1])
  local id = redis.call('XADD', stream, '*', unpack(ARGV, i + 2, i + 1 + n))
  if caught and applied == '1' then
    past = id
    moved = moved + 1
  else
    caught = false
  end
  i = i + 2 + n
end
if past then redis.call('XGROUP', 'SETID', stream, group, past) end
return moved
