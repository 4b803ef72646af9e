-- Applies one task event to its projection hash, only if it is newer than what is stored.
-- This script is the single place where "newer wins" is decided.
--
-- KEYS[1]  the task's hash: { v = raw JSON bytes, p = partition, o = offset, t = event time (ms) }
-- ARGV[1]  partition     ARGV[2] offset     ARGV[3] event time (ms)
-- ARGV[4]  value bytes (ignored for a tombstone)
-- ARGV[5]  0 for a write; for a tombstone, the TTL (ms) of the marker that stays behind
--
-- Versions: on the same partition the offset orders events. If the task moved partition, the
-- Kafka message timestamp decides: the later timestamp wins. Equal timestamps are broken by the
-- higher partition, never by arrival order: otherwise a redelivered event could take a task back
-- to the version it had before, and replays would not converge.
-- A tombstone leaves { p, o, t } without v and with a TTL, so a redelivered older write
-- cannot resurrect the task. Returns 1 when applied, 0 when stale.
local stored = redis.call('HMGET', KEYS[1], 'p', 'o', 't')
local partition = tonumber(ARGV[1])
local offset = tonumber(ARGV[2])
local time = tonumber(ARGV[3])

if stored[1] then
  local storedPartition = tonumber(stored[1])
  if storedPartition == partition then
    if offset <= tonumber(stored[2]) then return 0 end
  else
    local storedTime = tonumber(stored[3])
    if time < storedTime or (time == storedTime and partition < storedPartition) then return 0 end
  end
end

local ttl = tonumber(ARGV[5])
if ttl > 0 then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'p', ARGV[1], 'o', ARGV[2], 't', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ttl)
else
  redis.call('HSET', KEYS[1], 'v', ARGV[4], 'p', ARGV[1], 'o', ARGV[2], 't', ARGV[3])
  if stored[1] then redis.call('PERSIST', KEYS[1]) end
end
return 1
