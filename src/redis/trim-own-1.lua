--[[
trim-own-1.lua: deletes the entries Weft wrote to a stream once every consumer group on the
stream has read and acknowledged them. Entries without the mark (other programs' data) are
never touched, whatever their age.

KEYS[1]  the stream
ARGV[1]  where to start scanning: an entry id (exclusive), or '-' for the beginning
ARGV[2]  how many entries to scan at most
ARGV[3]  the mark's field name; ARGV[4] its value

Returns { deleted, next }: how many entries were deleted, and the id to continue from next
time, or '' when the scan reached the end of what every group has read (start again at '-').
Without any consumer group nothing has been consumed, so nothing is deleted: { 0, '' }.
]]
local function parse(id)
  local dash = string.find(id, '-', 1, true)
  return tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1))
end
local function less_or_equal(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  if am ~= bm then return am < bm end
  return as <= bs
end

local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])
if not ok or #groups == 0 then return { 0, '' } end
local names = {}
local floor = nil
for _, g in ipairs(groups) do
  local name, delivered
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] end
    if g[i] == 'last-delivered-id' then delivered = g[i + 1] end
  end
  names[#names + 1] = name
  if floor == nil or less_or_equal(delivered, floor) then floor = delivered end
end

local start = ARGV[1]
if start ~= '-' then start = '(' .. start end
local entries = redis.call('XRANGE', KEYS[1], start, floor, 'COUNT', tonumber(ARGV[2]))
local deleted = 0
for _, e in ipairs(entries) do
  local id, fields = e[1], e[2]
  local mine = false
  for i = 1, #fields, 2 do
    if fields[i] == ARGV[3] and fields[i + 1] == ARGV[4] then mine = true end
  end
  if mine then
    local pending = false
    for _, name in ipairs(names) do
      if #redis.call('XPENDING', KEYS[1], name, id, id, 1) > 0 then pending = true end
    end
    if not pending then
      redis.call('XDEL', KEYS[1], id)
      deleted = deleted + 1
    end
  end
end
if #entries < tonumber(ARGV[2]) then return { deleted, '' } end
return { deleted, entries[#entries][1] }
