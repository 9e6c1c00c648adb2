--[[
  Release a lease: compare-and-delete on the lease id. A stale or void id frees nothing, and an
  address is freed only while it is still held by this very lease id. A lease whose address is a
  sticky reservation gives up its pod but the address stays reserved.

  Input:
    KEYS[1] meta       podlease:{pool}:meta      hash: held, layout
    KEYS[2] released   podlease:{pool}:released  zset index -> release time (ms)
    KEYS[3] leases     podlease:{pool}:leases    hash leaseId -> record JSON
    KEYS[4] byip       podlease:{pool}:byip      hash index -> leaseId
    KEYS[5] pending    podlease:{pool}:pending   zset leaseId -> expiry (ms)
    KEYS[6] resbyip    podlease:{pool}:resbyip   hash index -> stickyKey

    ARGV[1] lease id
    ARGV[2] only if pending  "1": leave a bound lease alone (expiry path)
    ARGV[3] pod uid          release only if bound to this uid (or still pending); "" for any
    ARGV[4] attempt token    release only if the lease still belongs to this admission attempt
                             (a failed or late admission cleaning up); "" for any
    ARGV[5] now (ms)         the release time: the address's reuse cooldown starts here

  Output:
    { 0, index, kept 0|1, layoutHash }   released; kept = address stays held by its reservation
    { -3 }                               no such lease (never existed, released, or replaced)
    { -4, "not-pending" }                guard: lease is bound
    { -4, "uid-mismatch" }               guard: lease is bound to another pod
    { -4, "attempt-mismatch" }           guard: a retry of the admission has adopted the lease
]]
local rcall = redis.call
local id = ARGV[1]
local rec = rcall("HGET", KEYS[3], id)
if not rec then return { -3 } end
local h = cjson.decode(rec)
if ARGV[2] == "1" and h.s ~= "pending" then return { -4, "not-pending" } end
if ARGV[3] ~= "" and h.s == "bound" and h.u ~= ARGV[3] then return { -4, "uid-mismatch" } end
if ARGV[4] ~= "" and h.t ~= ARGV[4] then return { -4, "attempt-mismatch" } end
local i = tostring(h.i)
rcall("HDEL", KEYS[3], id)
rcall("ZREM", KEYS[5], id)
-- A record whose address is held by another lease id frees nothing (it was void already).
if rcall("HGET", KEYS[4], i) ~= id then return { -3 } end
rcall("HDEL", KEYS[4], i)
local layout = rcall("HGET", KEYS[1], "layout") or ""
if rcall("HEXISTS", KEYS[6], i) == 1 then return { 0, h.i, 1, layout } end
rcall("ZADD", KEYS[2], ARGV[5], i)
rcall("HINCRBY", KEYS[1], "held", -1)
return { 0, h.i, 0, layout }
