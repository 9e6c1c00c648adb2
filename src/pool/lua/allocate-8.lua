--[[
  Lease an address of a pool: next-fit over never-used addresses, then the oldest released one
  once its reuse cooldown has passed; or an exact address; or the address of a sticky
  reservation (neither of these two waits for a cooldown). Also reserves a sticky key without
  a lease (mode "reserve") and re-inserts a bound lease during a rebuild (mode "restore").

  Safety rules (the same in memory-store.ts, pinned by the contract suite):
  - A lease id that exists is answered again only for the same admission request (same request
    uid: an API server retry); the retry adopts the lease (its attempt token). Anything else with
    an existing id is refused (-8).
  - A bound lease is never replaced. A pending lease is replaced only when ARGV[13] is set (the
    caller found that the pod it was made for does not exist), it was created at or before that
    time (an older create can no longer be in flight), and it was made for this sticky key or,
    for an exact address, for this very pod name.
  - A sticky key asking for an exact address other than its reservation (an edited ip-list or
    static-ip) moves the reservation there when the new address is free and the old one has no
    bound lease; else the holder is named (-2).
  - Modes "lease" and "reserve" hand out nothing while the server's replication history
    (`master_replid` of INFO replication) differs from the one the pool was last reconciled on
    (meta `history`): after a failover or a restart, leases acknowledged before may be lost, and
    the controller first restores them from the pods' annotations (-9). A pool without a
    `history` (made before v4) adopts the current one. A retry of an existing lease id is still
    answered (it takes no new address); "restore" is never held back.

  Input:
    KEYS[1] meta       podlease:{pool}:meta      hash: size, layout, segments, cursor, held,
                                                 epoch (missing = fresh or wiped pool), nofresh,
                                                 history (master_replid last reconciled on)
    KEYS[2] dirty      podlease:{pool}:dirty     bitmap: index ever handed out
    KEYS[3] released   podlease:{pool}:released  zset index -> release time (ms)
    KEYS[4] leases     podlease:{pool}:leases    hash leaseId -> record JSON
    KEYS[5] byip       podlease:{pool}:byip      hash index -> leaseId
    KEYS[6] pending    podlease:{pool}:pending   zset leaseId -> expiry (ms)
    KEYS[7] sticky     podlease:{pool}:sticky    hash stickyKey -> index
    KEYS[8] resbyip    podlease:{pool}:resbyip   hash index -> stickyKey

    ARGV: one or more items of 15 arguments each, back to back (item j is
    ARGV[15(j-1)+1 .. 15j]; one call is a batch of allocations for this pool, run in order,
    each exactly as if it were a call of its own). Below, ARGV[n] is the n-th argument of an item.
    ARGV[1] layout hash the caller computed from its pools file
    ARGV[2] mode        "lease" | "reserve" | "restore"
    ARGV[3] lease id    ("" for reserve)
    ARGV[4] index       exact index, or -1 for the next free one
    ARGV[5] sticky key  ("" for none)
    ARGV[6] record JSON without "i" (e.g. {"s":"pending","ns":"default",...}; "" for reserve)
    ARGV[7] expiry (ms) of a pending lease
    ARGV[8] dry run     "1": check everything, write nothing
    ARGV[9] namespace   of the pod asking
    ARGV[10] name       of the pod asking ("" when not yet named)
    ARGV[11] request uid of the admission ("" when none)
    ARGV[12] attempt token of this call ("" when none)
    ARGV[13] replace pending: "" never, else a time (ms): a pending lease of this key / pod
             created at or before it may be replaced
    ARGV[14] now (ms)     the release time of an address a moved reservation gives back
    ARGV[15] reuse cooldown (ms): the next-free pick skips addresses released after
             now - cooldown ("0": none)

  Output: a list with one reply per item, in item order. An item's reply is one of those below,
  or an error reply when the item raised (a Redis error such as OOM or WRONGTYPE, or a bad
  argument): the items before it keep their writes and replies (Redis rolls nothing back), the
  items after it still run.
    { 0, index, replacedLeaseId or "", reused 0|1, retried 0|1, movedFromIndex or -1 }
                                  (retried: a 7th element, the lease's record JSON)
    { -1, held, size }            pool exhausted: every address held
    { -1, held, size, cooling, nextFreeAt }
                                  no free address: `cooling` released ones still rest, the
                                  oldest until nextFreeAt (ms)
    { -2, "lease", recordJSON, index }   address (index) held by a lease
    { -2, "key", stickyKey, index }      address (index) held by another sticky reservation
    { -5 }                        pool not initialised (epoch missing)
    { -6, storedLayoutHash }      the pool was laid out from another pools file
    { -9, history, reconciledOn } the server's history is not the one the pool was reconciled on
    { -8 }                        the lease id exists (another request, or restore elsewhere)
]]
local rcall = redis.call
local metaKey, dirtyKey, releasedKey = KEYS[1], KEYS[2], KEYS[3]
local leasesKey, byipKey, pendingKey, stickyKey, resbyipKey = KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]

-- The pool's meta, read once per call and kept in step with each write this call makes to it
-- (meta[n] is the n-th field of this HMGET; nothing else writes while the script runs).
local poolMeta
local function readMeta()
  if not poolMeta then
    poolMeta = rcall("HMGET", metaKey, "size", "layout", "cursor", "held", "epoch", "nofresh",
      "history")
  end
  return poolMeta
end

-- The server's replication history, read once per call: it cannot change while a script runs.
local currentHistory
local function serverHistory()
  if not currentHistory then
    currentHistory = string.match(rcall("INFO", "replication"), "master_replid:(%x+)") or ""
  end
  return currentHistory
end

-- One item: ARGV[1..15] of the header, as arguments; returns the item's reply.
local function allocateOne(layout, mode, leaseId, wantedArg, key, record, expiry, dryRunArg,
                           podNs, podName, requestUid, attempt, replaceArg, now, cooldownArg)
  local wanted = tonumber(wantedArg)
  local dryRun = dryRunArg == "1"
  local replaceBefore = tonumber(replaceArg)
  local cooldown = tonumber(cooldownArg)

  local meta = readMeta()
  if not meta[1] then return { -5 } end
  if meta[2] ~= layout then return { -6, meta[2] } end
  if mode ~= "restore" and not meta[5] then return { -5 } end
  local size, cursor, held = tonumber(meta[1]), tonumber(meta[3]), tonumber(meta[4])

  -- 0. An existing lease id: a retry of the same admission gets the same lease; nothing else does.
  if mode ~= "reserve" then
    local existing = rcall("HGET", leasesKey, leaseId)
    if existing then
      local h = cjson.decode(existing)
      if mode == "restore" then
        if rcall("HGET", byipKey, tostring(h.i)) == leaseId and h.i == wanted then
          return { 0, wanted, "", 0, 1, -1 }
        end
        return { -8 }
      end
      if requestUid == "" or h.q ~= requestUid then return { -8 } end
      if not dryRun and attempt ~= "" and h.t ~= attempt then
        h.t = attempt
        existing = cjson.encode(h)
        rcall("HSET", leasesKey, leaseId, existing)
      end
      local r = 0
      if h.k then r = 1 end
      return { 0, h.i, "", r, 1, -1, existing }
    end
  end

  -- 0b. Nothing new is handed out on a history the pool has not been reconciled on.
  if mode ~= "restore" then
    local history = serverHistory()
    if not meta[7] then
      if not dryRun then
      rcall("HSET", metaKey, "history", history)
      meta[7] = history
    end
    elseif meta[7] ~= history then
      return { -9, history, meta[7] }
    end
  end

  -- A holder lease may be replaced: never when bound; when pending only if the caller allows it.
  local function replaceable(holderId, forKey)
    local rec = rcall("HGET", leasesKey, holderId)
    if not rec then return true, rec end
    local h = cjson.decode(rec)
    if mode ~= "lease" or h.s ~= "pending" or not replaceBefore then return false, rec end
    if (h.c or 0) > replaceBefore then return false, rec end
    if forKey then return h.k == key, rec end
    return podName ~= "" and h.ns == podNs and h.n == podName, rec
  end

  local index, replaced, reused, isHeld, movedFrom = -1, "", 0, false, -1

  -- 1. A sticky key that already has a reservation gets the same address, or moves it.
  if key ~= "" then
    local r = rcall("HGET", stickyKey, key)
    if r then
      local rIndex = tonumber(r)
      if mode == "restore" and wanted ~= rIndex then return { -2, "key", key, rIndex } end
      local holder = rcall("HGET", byipKey, r)
      if mode == "reserve" then return { 0, rIndex, "", 1, 0, -1 } end
      if holder then
        local ok, rec = replaceable(holder, true)
        if not ok then return { -2, "lease", rec, rIndex } end
        replaced = holder
      end
      if wanted < 0 or wanted == rIndex then
        index, reused, isHeld = rIndex, 1, true
      else
        -- An edited ip-list / static-ip: the reservation moves to the newly asked address.
        local w = tostring(wanted)
        local otherKey = rcall("HGET", resbyipKey, w)
        local wHolder = rcall("HGET", byipKey, w)
        if wHolder then return { -2, "lease", rcall("HGET", leasesKey, wHolder), wanted } end
        if otherKey then return { -2, "key", otherKey, wanted } end
        movedFrom = rIndex
      end
    end
  end

  -- 2. An exact address: free, or held by a replaceable pending lease of this very pod.
  if index < 0 and wanted >= 0 and movedFrom < 0 then
    index = wanted
    local i = tostring(index)
    local resKey = rcall("HGET", resbyipKey, i)
    local holder = rcall("HGET", byipKey, i)
    if resKey and resKey ~= key then
      if holder then return { -2, "lease", rcall("HGET", leasesKey, holder), index } end
      return { -2, "key", resKey, index }
    end
    if holder then
      local ok, rec = replaceable(holder, false)
      if not ok then return { -2, "lease", rec, index } end
      replaced, isHeld = holder, true
    end
  elseif movedFrom >= 0 then
    index = wanted
  end

  -- 3. Next-fit: the first never-used index after the cursor (wrapping), else the oldest released
  --    one, once it has rested for the reuse cooldown.
  if index < 0 then
    if held >= size then return { -1, held, size } end
    -- "nofresh": a full scan found every address used once; only init and relayout add fresh ones.
    if not meta[6] then
      if cursor + 1 < size then index = rcall("BITPOS", dirtyKey, 0, cursor + 1, size - 1, "BIT") end
      if index < 0 and cursor >= 0 then index = rcall("BITPOS", dirtyKey, 0, 0, cursor, "BIT") end
      if index < 0 and not dryRun then
      rcall("HSET", metaKey, "nofresh", 1)
      meta[6] = "1"
    end
    end
    if index < 0 then
      local oldest = rcall("ZRANGE", releasedKey, 0, 0, "WITHSCORES")
      if not oldest[1] then return { -1, held, size } end
      local freeAt = tonumber(oldest[2]) + cooldown
      if cooldown > 0 and freeAt > tonumber(now) then
        -- Oldest first: when the oldest still rests, every released address does.
        return { -1, held, size, rcall("ZCARD", releasedKey), freeAt }
      end
      index = tonumber(oldest[1])
    end
  end

  if dryRun then return { 0, index, replaced, reused, 0, movedFrom } end

  local i = tostring(index)
  if movedFrom >= 0 then
    -- Give the old reserved address back (its pending holder, if any, is void from now on).
    local m = tostring(movedFrom)
    rcall("HDEL", resbyipKey, m)
    rcall("HDEL", byipKey, m)
    rcall("ZADD", releasedKey, now, m)
    held = held - 1
  end
  if not isHeld then
    if rcall("SETBIT", dirtyKey, index, 1) == 1 then
      rcall("ZREM", releasedKey, i)
      rcall("HSET", metaKey, "held", held + 1)
      meta[4] = held + 1
    elseif mode == "restore" or wanted >= 0 then
      rcall("HSET", metaKey, "held", held + 1)
      meta[4] = held + 1
    else
      rcall("HSET", metaKey, "cursor", index, "held", held + 1)
      meta[3], meta[4] = index, held + 1
    end
  end
  if key ~= "" and reused == 0 then
    rcall("HSET", stickyKey, key, index)
    rcall("HSET", resbyipKey, i, key)
  end
  if mode == "reserve" then return { 0, index, "", 0, 0, -1 } end

  if replaced ~= "" then
    rcall("HDEL", leasesKey, replaced)
    rcall("ZREM", pendingKey, replaced)
  end
  rcall("HSET", leasesKey, leaseId, '{"i":' .. index .. ',' .. string.sub(record, 2))
  rcall("HSET", byipKey, i, leaseId)
  if mode == "lease" then rcall("ZADD", pendingKey, expiry, leaseId) end
  return { 0, index, replaced, reused, 0, movedFrom }
end

-- The items in order, each as if it were a call of its own. An item that raises (a Redis error,
-- a bad argument) answers its own error reply and the items after it still run: Redis does not
-- roll back the writes of the items before it, so their replies must stand.
local ARGS_PER_ITEM = 15
if #ARGV == 0 or #ARGV % ARGS_PER_ITEM ~= 0 then
  return redis.error_reply("ERR allocate: ARGV is not a list of " .. ARGS_PER_ITEM .. "-argument items")
end
local replies = {}
for base = 0, #ARGV - 1, ARGS_PER_ITEM do
  local ok, reply = pcall(allocateOne, unpack(ARGV, base + 1, base + ARGS_PER_ITEM))
  if not ok then
    -- redis.call raises its error reply (a string or, on some versions, a table); Lua raises a
    -- string. Either way the item answers an error reply with an error code in front.
    if type(reply) == "table" then reply = reply.err end
    reply = tostring(reply)
    if not string.match(reply, "^%u+ ") then reply = "ERR " .. reply end
    reply = { err = reply }
  end
  replies[#replies + 1] = reply
end
return replies
