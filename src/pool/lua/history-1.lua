--[[
  Read, or confirm, the replication history a pool was last reconciled on (docs/design.md §10).
  A Redis server's `master_replid` (INFO replication) names its history: a promoted replica and
  a restarted server start a new one, so after a failover or a restart it differs from the
  pool's `history`, and allocate-8.lua hands out nothing until the controller has restored,
  from the pods' annotations, what the new history may lack, and confirmed it here. The
  confirmation is compare-and-set on the history the controller read before it listed the pods:
  if the server changed again meanwhile, nothing is written.

  Input:
    KEYS[1] meta  podlease:{pool}:meta  hash (see allocate-8.lua)

    ARGV[1] mode     "read" | "confirm"
    ARGV[2] history  (confirm) the history the caller reconciled the pool against

  Output:
    { 0, history, reconciledOn }   read, or confirmed (then reconciledOn = history); "" for none
    { -9, history, reconciledOn }  confirm refused: the server's history is no longer ARGV[2]
    { -5 }                         the pool has no state
]]
local rcall = redis.call
if rcall("EXISTS", KEYS[1]) == 0 then return { -5 } end
local confirmed = rcall("HGET", KEYS[1], "history")
local history = string.match(rcall("INFO", "replication"), "master_replid:(%x+)") or ""
if ARGV[1] ~= "confirm" then return { 0, history, confirmed or "" } end
if ARGV[2] ~= history then return { -9, history, confirmed or "" } end
rcall("HSET", KEYS[1], "history", history)
return { 0, history, history }
