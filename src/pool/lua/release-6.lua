--[[
  Release a lease: compare-and-delete on the lease id. A stale or void id frees nothing. A lease
  whose address is a sticky reservation gives up its pod but the address stays reserved.

  Input:
    KEYS[1] meta       podlease:{pool}:meta      hash: held, seq
    KEYS[2] released   podlease:{pool}:released  zset index -> release sequence
    KEYS[3] leases     podlease:{pool}:leases    hash leaseId -> record JSON
    KEYS[4] byip       podlease:{pool}:byip      hash index -> leaseId
    KEYS[5] pending    podlease:{pool}:pending   zset leaseId -> expiry (ms)
    KEYS[6] resbyip    podlease:{pool}:resbyip   hash index -> stickyKey

    ARGV[1] lease id
    ARGV[2] only if pending  "1": leave a bound lease alone (expiry path)
    ARGV[3] pod uid          release only if bound to this uid (or still pending); "" for any

  Output:
    { 0, index, kept 0|1 }     released; kept = address stays held by its reservation
    { -3 }                     no such lease (never existed, released, or replaced)
    { -4, "not-pending" }      guard: lease is bound
    { -4, "uid-mismatch" }     guard: lease is bound to another pod
]]
local rcall = redis.call
local id = ARGV[1]
local rec = rcall("HGET", KEYS[3], id)
if not rec then return { -3 } end
local h = cjson.decode(rec)
if ARGV[2] == "1" and h.s ~= "pending" then return { -4, "not-pending" } end
if ARGV[3] ~= "" and h.s == "bound" and h.u ~= ARGV[3] then return { -4, "uid-mismatch" } end

local i = tostring(h.i)
rcall("HDEL", KEYS[3], id)
rcall("ZREM", KEYS[5], id)
if rcall("HGET", KEYS[4], i) == id then rcall("HDEL", KEYS[4], i) end
if rcall("HEXISTS", KEYS[6], i) == 1 then return { 0, h.i, 1 } end
rcall("ZADD", KEYS[2], rcall("HINCRBY", KEYS[1], "seq", 1), i)
rcall("HINCRBY", KEYS[1], "held", -1)
return { 0, h.i, 0 }
