--[[
  Bind a pending lease to the pod that carries its id. Idempotent for the same pod UID.

  Input:
    KEYS[1] leases     podlease:{pool}:leases    hash leaseId -> record JSON
    KEYS[2] pending    podlease:{pool}:pending   zset leaseId -> expiry (ms)

    ARGV[1] lease id
    ARGV[2] namespace
    ARGV[3] pod name
    ARGV[4] pod uid
    ARGV[5] now (ms)

  Output:
    { 0, recordJSON }    bound (or already bound to this uid)
    { -3 }               no such lease
    { -4, recordJSON }   already bound to another uid (conflict)
]]
local rcall = redis.call
local rec = rcall("HGET", KEYS[1], ARGV[1])
if not rec then return { -3 } end
local h = cjson.decode(rec)
if h.s == "bound" then
  if h.u ~= ARGV[4] then return { -4, rec } end
  return { 0, rec }
end
h.s, h.ns, h.n, h.u, h.b, h.e = "bound", ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), nil
rec = cjson.encode(h)
rcall("HSET", KEYS[1], ARGV[1], rec)
rcall("ZREM", KEYS[2], ARGV[1])
return { 0, rec }
