-- Applies one task event to its projection hash, only if it is newer than what is stored.
-- This script is the single place where "newer wins" is decided.
--
-- KEYS[1]  the task's hash: { v = raw JSON bytes, p = partition, o = offset, t = event time (ms) }
-- ARGV[1]  partition     ARGV[2] offset     ARGV[3] event time (ms)
-- ARGV[4]  value bytes (ignored for a tombstone)
-- ARGV[5]  the TTL (ms) of a version marker: what stays of a task that has no value
-- ARGV[6]  -1 for a tombstone; for a write, when its value expires (epoch ms), or 0 for never
--
-- Versions: on the same partition the offset orders events. If the task moved partition, the
-- Kafka message timestamp decides: the later timestamp wins. Equal timestamps are broken by the
-- higher partition, never by arrival order: otherwise a redelivered event could take a task back
-- to the version it had before, and replays would not converge.
--
-- A tombstone leaves { p, o, t } without v and with the marker TTL, so a redelivered older write
-- cannot resurrect the task. A write whose expiry has already passed by Redis's clock (a terminal
-- task replayed, or consumed late) is applied the same way: its value is never written, and the
-- marker keeps older events out. Any other write stores its value, with its expiry (PEXPIREAT) or
-- without one (PERSIST, so a task made permanent again by a later event loses an earlier expiry).
-- Returns 0 when stale, 1 when applied, 2 when applied as a write already expired, and 3 when the
-- stored version is this very event (a redelivery, or a retried attempt Redis had carried out):
-- stale too, but the task is at this event, which its watchers may not have been told.
-- (Redis 7 replicates a script by its effects, so reading TIME before writing is allowed.)
local stored = redis.call('HMGET', KEYS[1], 'p', 'o', 't')
local partition = tonumber(ARGV[1])
local offset = tonumber(ARGV[2])
local time = tonumber(ARGV[3])

if stored[1] then
  local storedPartition = tonumber(stored[1])
  if storedPartition == partition then
    local storedOffset = tonumber(stored[2])
    if offset == storedOffset then return 3 end
    if offset < storedOffset then return 0 end
  else
    local storedTime = tonumber(stored[3])
    if time < storedTime or (time == storedTime and partition < storedPartition) then return 0 end
  end
end

local expireAt = tonumber(ARGV[6])
local applied = 1
if expireAt > 0 then
  local clock = redis.call('TIME')
  if expireAt <= tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000) then applied = 2 end
end

if expireAt < 0 or applied == 2 then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'p', ARGV[1], 'o', ARGV[2], 't', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
else
  redis.call('HSET', KEYS[1], 'v', ARGV[4], 'p', ARGV[1], 'o', ARGV[2], 't', ARGV[3])
  if expireAt > 0 then
    redis.call('PEXPIREAT', KEYS[1], ARGV[6])
  elseif stored[1] then
    redis.call('PERSIST', KEYS[1])
  end
end
return applied
