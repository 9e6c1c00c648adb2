--[[
  Lay a pool out again for a changed pools file, keeping every lease and reservation, in one
  atomic step: no allocation, release or bind can run between reading the state and writing it
  back. The caller passes how old indexes map to new ones (runs of consecutive indexes whose
  addresses stay allocatable); an index in no run is an address the new pools file leaves out.
  Refused (nothing written) when a held address would be left out. Released addresses keep
  their release time (the zset score), so their reuse cooldown and their order carry over.

  Input:
    KEYS[1] meta  KEYS[2] dirty  KEYS[3] released  KEYS[4] leases
    KEYS[5] byip  KEYS[6] pending  KEYS[7] sticky  KEYS[8] resbyip   (see allocate-8.lua)

    ARGV[1] the layout hash the caller mapped from
    ARGV[2] new layout hash
    ARGV[3] new size
    ARGV[4] new segments text
    ARGV[5] runs JSON: [[oldFirst, count, newFirst], ...] sorted by oldFirst, disjoint

  Output:
    { 0, held }                       laid out again
    { -6, currentHash }               the layout changed meanwhile (caller starts over)
    { -7, count, index, ... }         held indexes (old layout, lowest 20) the new file leaves out
]]
local rcall = redis.call
local current = rcall("HGET", KEYS[1], "layout")
if current ~= ARGV[1] then return { -6, current or "" } end
local runs = cjson.decode(ARGV[5])
local n = #runs

local function map(i)
  local lo, hi = 1, n
  while lo <= hi do
    local mid = math.floor((lo + hi) / 2)
    local r = runs[mid]
    if i < r[1] then
      hi = mid - 1
    elseif i >= r[1] + r[2] then
      lo = mid + 1
    else
      return r[3] + (i - r[1])
    end
  end
  return nil
end

local byip = rcall("HGETALL", KEYS[5])
local resbyip = rcall("HGETALL", KEYS[8])
local stranded, seen = {}, {}
local function check(flat)
  for k = 1, #flat, 2 do
    local i = tonumber(flat[k])
    if map(i) == nil and not seen[i] then
      seen[i] = true
      stranded[#stranded + 1] = i
    end
  end
end
check(byip)
check(resbyip)
if #stranded > 0 then
  table.sort(stranded)
  local out = { -7, #stranded }
  for k = 1, math.min(20, #stranded) do out[#out + 1] = stranded[k] end
  return out
end

local leases = rcall("HGETALL", KEYS[4])
local released = rcall("ZRANGE", KEYS[3], 0, -1, "WITHSCORES")
local meta = rcall("HMGET", KEYS[1], "cursor")
local size = tonumber(ARGV[3])

rcall("DEL", KEYS[2], KEYS[3], KEYS[5], KEYS[7], KEYS[8])
rcall("SETBIT", KEYS[2], size - 1, 0)
local heldSet, held = {}, 0
local function hold(j)
  rcall("SETBIT", KEYS[2], j, 1)
  if not heldSet[j] then
    heldSet[j] = true
    held = held + 1
  end
end
for k = 1, #byip, 2 do
  local j = map(tonumber(byip[k]))
  rcall("HSET", KEYS[5], j, byip[k + 1])
  hold(j)
end
for k = 1, #resbyip, 2 do
  local j = map(tonumber(resbyip[k]))
  rcall("HSET", KEYS[8], j, resbyip[k + 1])
  rcall("HSET", KEYS[7], resbyip[k + 1], j)
  hold(j)
end
for k = 1, #leases, 2 do
  local h = cjson.decode(leases[k + 1])
  local j = map(h.i)
  if j == nil then
    -- A record whose address is held by no one (void): nothing refers to it any more.
    rcall("HDEL", KEYS[4], leases[k])
    rcall("ZREM", KEYS[6], leases[k])
  else
    h.i = j
    rcall("HSET", KEYS[4], leases[k], cjson.encode(h))
  end
end
for k = 1, #released, 2 do
  local j = map(tonumber(released[k]))
  if j ~= nil and not heldSet[j] then
    rcall("ZADD", KEYS[3], released[k + 1], j)
    rcall("SETBIT", KEYS[2], j, 1)
  end
end

-- The cursor stays at the same address, or at the last address before it that is still in.
local cursor = tonumber(meta[1] or "-1")
local newCursor = -1
if cursor >= 0 then
  for _, r in ipairs(runs) do
    if r[1] > cursor then break end
    if cursor < r[1] + r[2] then
      newCursor = r[3] + (cursor - r[1])
    else
      newCursor = r[3] + r[2] - 1
    end
  end
end

rcall("HDEL", KEYS[1], "nofresh")
rcall("HSET", KEYS[1], "layout", ARGV[2], "size", ARGV[3], "segments", ARGV[4],
  "cursor", newCursor, "held", held)
return { 0, held }
