--[[
  Remove a sticky reservation. The address goes back to the pool unless a lease still holds it
  (then it is freed when that lease is released).

  Input:
    KEYS[1] meta       podlease:{pool}:meta      hash: held
    KEYS[2] released   podlease:{pool}:released  zset index -> release time (ms)
    KEYS[3] byip       podlease:{pool}:byip      hash index -> leaseId
    KEYS[4] sticky     podlease:{pool}:sticky    hash stickyKey -> index
    KEYS[5] resbyip    podlease:{pool}:resbyip   hash index -> stickyKey

    ARGV[1] sticky key
    ARGV[2] now (ms)    the release time, when the address goes back to the pool

  Output:
    { 0, index, freed 0|1 }   removed; freed = the address went back to the pool
    { -3 }                    no such reservation
]]
local rcall = redis.call
local i = rcall("HGET", KEYS[4], ARGV[1])
if not i then return { -3 } end
rcall("HDEL", KEYS[4], ARGV[1])
rcall("HDEL", KEYS[5], i)
if rcall("HEXISTS", KEYS[3], i) == 1 then return { 0, tonumber(i), 0 } end
rcall("ZADD", KEYS[2], ARGV[2], i)
rcall("HINCRBY", KEYS[1], "held", -1)
return { 0, tonumber(i), 1 }
