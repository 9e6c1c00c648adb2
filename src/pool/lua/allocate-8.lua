--[[
  Lease an address of a pool: next-fit over never-used addresses, then the oldest released one;
  or an exact address; or the address of a sticky reservation. Also reserves a sticky key without
  a lease (mode "reserve") and re-inserts a bound lease during a rebuild (mode "restore").

  Input:
    KEYS[1] meta       podlease:{pool}:meta      hash: size, layout, cursor, held, seq, epoch
                                                 (epoch missing = fresh or wiped pool), nofresh
    KEYS[2] dirty      podlease:{pool}:dirty     bitmap: index ever handed out
    KEYS[3] released   podlease:{pool}:released  zset index -> release sequence
    KEYS[4] leases     podlease:{pool}:leases    hash leaseId -> record JSON
    KEYS[5] byip       podlease:{pool}:byip      hash index -> leaseId
    KEYS[6] pending    podlease:{pool}:pending   zset leaseId -> expiry (ms)
    KEYS[7] sticky     podlease:{pool}:sticky    hash stickyKey -> index
    KEYS[8] resbyip    podlease:{pool}:resbyip   hash index -> stickyKey

    ARGV[1] layout hash the caller computed from its pools file
    ARGV[2] mode        "lease" | "reserve" | "restore"
    ARGV[3] lease id    ("" for reserve)
    ARGV[4] index       exact index, or -1 for the next free one
    ARGV[5] sticky key  ("" for none)
    ARGV[6] record JSON without "i" (e.g. {"s":"pending","ns":"default",...}; "" for reserve)
    ARGV[7] expiry (ms) of a pending lease
    ARGV[8] dry run     "1": check everything, write nothing
    ARGV[9] namespace   of the pod asking (exact address: the same pod may take its address over)
    ARGV[10] name       of the pod asking ("" when not yet named)

  Output:
    { 0, index, replacedLeaseId or "", reused 0|1 }
    { -1, held, size }            pool exhausted
    { -2, "lease", recordJSON }   address held by a lease
    { -2, "key", stickyKey }      address held by another sticky reservation
    { -5 }                        pool not initialised (epoch missing)
    { -6, storedLayoutHash }      the pool was laid out from another pools file
    { -8 }                        restore: lease id exists at another address
]]
local rcall = redis.call
local metaKey, dirtyKey, releasedKey = KEYS[1], KEYS[2], KEYS[3]
local leasesKey, byipKey, pendingKey, stickyKey, resbyipKey = KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local layout, mode, leaseId = ARGV[1], ARGV[2], ARGV[3]
local wanted, key, record = tonumber(ARGV[4]), ARGV[5], ARGV[6]
local dryRun = ARGV[8] == "1"

local meta = rcall("HMGET", metaKey, "size", "layout", "cursor", "held", "epoch", "nofresh")
if not meta[1] then return { -5 } end
if meta[2] ~= layout then return { -6, meta[2] } end
if mode ~= "restore" and not meta[5] then return { -5 } end
local size, cursor, held = tonumber(meta[1]), tonumber(meta[3]), tonumber(meta[4])

-- Restore of a lease already present at this index is a no-op; elsewhere it is a conflict.
-- (Lease ids from the webhook are fresh ULIDs: the check is only needed for restore.)
if mode == "restore" and rcall("HEXISTS", leasesKey, leaseId) == 1 then
  if mode == "restore" and rcall("HGET", byipKey, tostring(wanted)) == leaseId then
    return { 0, wanted, "", 0 }
  end
  return { -8 }
end

local index, replaced, reused, isHeld, fresh = -1, "", 0, false, false

-- 1. A sticky key that already has a reservation gets the same address.
if key ~= "" then
  local r = rcall("HGET", stickyKey, key)
  if r then
    index = tonumber(r)
    if mode == "restore" and wanted ~= index then return { -2, "key", key } end
    local holder = rcall("HGET", byipKey, r)
    if holder and mode == "restore" then return { -2, "lease", rcall("HGET", leasesKey, holder) } end
    if holder then replaced = holder end
    reused, isHeld = 1, true
    if mode == "reserve" then return { 0, index, "", 1 } end
  end
end

-- 2. An exact address: free, or held by this very pod (same namespace and name).
if index < 0 and wanted >= 0 then
  index = wanted
  local i = tostring(index)
  local resKey = rcall("HGET", resbyipKey, i)
  local holder = rcall("HGET", byipKey, i)
  if resKey and resKey ~= key then
    if holder then return { -2, "lease", rcall("HGET", leasesKey, holder) } end
    return { -2, "key", resKey }
  end
  if holder then
    local rec = rcall("HGET", leasesKey, holder)
    local h = cjson.decode(rec)
    if mode ~= "lease" or ARGV[10] == "" or h.ns ~= ARGV[9] or h.n ~= ARGV[10] then
      return { -2, "lease", rec }
    end
    replaced, isHeld = holder, true
  end
end

-- 3. Next-fit: the first never-used index after the cursor (wrapping), else the oldest released.
if index < 0 then
  if held >= size then return { -1, held, size } end
  -- "nofresh": a full scan found every address used once; only init and relayout add fresh ones.
  if not meta[6] then
    if cursor + 1 < size then index = rcall("BITPOS", dirtyKey, 0, cursor + 1, size - 1, "BIT") end
    if index < 0 and cursor >= 0 then index = rcall("BITPOS", dirtyKey, 0, 0, cursor, "BIT") end
    if index < 0 and not dryRun then rcall("HSET", metaKey, "nofresh", 1) end
  end
  if index >= 0 then
    fresh = true
  else
    local oldest = rcall("ZRANGE", releasedKey, 0, 0)
    if not oldest[1] then return { -1, held, size } end
    index = tonumber(oldest[1])
  end
end

if dryRun then return { 0, index, replaced, reused } end

local i = tostring(index)
if not isHeld then
  if fresh then
    rcall("SETBIT", dirtyKey, index, 1)
    rcall("HSET", metaKey, "cursor", index, "held", held + 1)
  else
    if rcall("SETBIT", dirtyKey, index, 1) == 1 then rcall("ZREM", releasedKey, i) end
    rcall("HSET", metaKey, "held", held + 1)
  end
end
if key ~= "" and reused == 0 then
  rcall("HSET", stickyKey, key, index)
  rcall("HSET", resbyipKey, i, key)
end
if mode == "reserve" then return { 0, index, "", 0 } end

if replaced ~= "" then
  rcall("HDEL", leasesKey, replaced)
  rcall("ZREM", pendingKey, replaced)
end
rcall("HSET", leasesKey, leaseId, '{"i":' .. index .. ',' .. string.sub(record, 2))
rcall("HSET", byipKey, i, leaseId)
if mode == "lease" then rcall("ZADD", pendingKey, ARGV[7], leaseId) end
return { 0, index, replaced, reused }
