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
if #entries == 0 then return { 0, '' } end
-- What is still pending in the scanned range, once per group (not one lookup per entry).
local pending = {}
local first, last = entries[1][1], entries[#entries][1]
for _, name in ipairs(names) do
  for _, p in ipairs(redis.call('XPENDING', KEYS[1], name, first, last, #entries)) do pending[p[1]] = true end
end
local doomed = {}
for _, e in ipairs(entries) do
  local id, fields = e[1], e[2]
  if not pending[id] then
    for i = 1, #fields, 2 do
      if fields[i] == ARGV[3] and fields[i + 1] == ARGV[4] then
        doomed[#doomed + 1] = id
        break
      end
    end
  end
end
local deleted = 0
for i = 1, #doomed, 500 do
  deleted = deleted + redis.call('XDEL', KEYS[1], unpack(doomed, i, math.min(i + 499, #doomed)))
end
if #entries < tonumber(ARGV[2]) then return { deleted, '' } end
return { deleted, entries[#entries][1] }
