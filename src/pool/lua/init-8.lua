--[[
  Create a pool's state when it has none: every other key of its address state is cleared
  first, so a partly evicted pool never mixes with a fresh one. (The policy key is not part of
  the address state and is left alone.) The epoch is set unless ARGV[4] is empty
  (a rebuild sets it after restoring every lease). The pool starts reconciled on the server's
  current replication history (`master_replid`, see allocate-8.lua).

  Input:
    KEYS[1] meta  KEYS[2] dirty  KEYS[3] released  KEYS[4] leases
    KEYS[5] byip  KEYS[6] pending  KEYS[7] sticky  KEYS[8] resbyip   (see allocate-8.lua)

    ARGV[1] layout hash
    ARGV[2] size (allocatable addresses)
    ARGV[3] segments text (first+count,...)
    ARGV[4] epoch value, or "" to leave the pool uninitialised
    ARGV[5] now (ms)

  Output:
    { 0 }   created
    { 1 }   the pool already had state; nothing written
]]
local rcall = redis.call
if rcall("EXISTS", KEYS[1]) == 1 then return { 1 } end
rcall("DEL", KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8])
local history = string.match(rcall("INFO", "replication"), "master_replid:(%x+)") or ""
rcall("HSET", KEYS[1], "size", ARGV[2], "layout", ARGV[1], "segments", ARGV[3],
  "cursor", -1, "held", 0, "createdAt", ARGV[5], "history", history)
rcall("SETBIT", KEYS[2], tonumber(ARGV[2]) - 1, 0)
if ARGV[4] ~= "" then rcall("HSET", KEYS[1], "epoch", ARGV[4]) end
return { 0 }
