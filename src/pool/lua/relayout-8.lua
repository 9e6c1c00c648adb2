--[[
  Lay a pool out again for a changed pools file, keeping every lease and reservation. The caller
  read the state, mapped every index through the address to the new layout, and checked that no
  held address falls outside it. Compare-and-set on the old layout hash: a concurrent change
  makes this a no-op and the caller starts over.

  Input:
    KEYS[1] meta  KEYS[2] dirty  KEYS[3] released  KEYS[4] leases
    KEYS[5] byip  KEYS[6] pending  KEYS[7] sticky  KEYS[8] resbyip   (see allocate-8.lua)

    ARGV[1] the layout hash the caller read
    ARGV[2] new layout hash
    ARGV[3] new size
    ARGV[4] new segments text
    ARGV[5] state JSON: { cursor, held, leases: list of {id, json}, byip: list of {index, id},
                          sticky: list of {key, index}, released: indexes, oldest first }

  Output:
    { 0 }                  laid out again
    { -6, currentHash }    the layout changed meanwhile
]]
local rcall = redis.call
local current = rcall("HGET", KEYS[1], "layout")
if current ~= ARGV[1] then return { -6, current or "" } end
local s = cjson.decode(ARGV[5])
rcall("DEL", KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[7], KEYS[8])
rcall("SETBIT", KEYS[2], tonumber(ARGV[3]) - 1, 0)
for _, e in ipairs(s.leases) do rcall("HSET", KEYS[4], e[1], e[2]) end
for _, e in ipairs(s.byip) do
  rcall("HSET", KEYS[5], e[1], e[2])
  rcall("SETBIT", KEYS[2], e[1], 1)
end
for _, e in ipairs(s.sticky) do
  rcall("HSET", KEYS[7], e[1], e[2])
  rcall("HSET", KEYS[8], e[2], e[1])
  rcall("SETBIT", KEYS[2], e[2], 1)
end
local seq = 0
for _, i in ipairs(s.released) do
  seq = seq + 1
  rcall("ZADD", KEYS[3], seq, i)
  rcall("SETBIT", KEYS[2], i, 1)
end
rcall("HDEL", KEYS[1], "nofresh")
rcall("HSET", KEYS[1], "layout", ARGV[2], "size", ARGV[3], "segments", ARGV[4],
  "cursor", s.cursor, "held", s.held, "seq", seq)
return { 0 }
