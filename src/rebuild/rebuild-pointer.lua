-- Every change the rebuild makes to the generation pointer, each checked against the rebuild lock
-- in the same step. The pointer, the lock and the rebuild's state are fields of one hash, so each
-- step is atomic on a standalone Redis and on a cluster alike, and a rebuild that lost its lock
-- (another process took it over, or `abort` did) can change nothing.
--
-- KEYS[1]  the pointer hash:
--   current, building, previous   generations: read from; also written while a rebuild runs;
--                                 still written after a flip until every instance has moved on
--   last                          the highest generation ever announced; never reused
--   lockToken, lockOwner, lockExpiresAt (ms, Redis's clock)   the rebuild lock
--   abort                         1 once `abort` asked the holder to stop
--   rebuild                       the rebuild's state, JSON (written by the rebuild, read by instances)
-- ARGV[1]  the step; ARGV[2] the caller's lock token; the rest depend on the step.
--
-- Time is Redis's own (TIME), so the lock's TTL does not depend on the clocks of the hosts.
local pointer = KEYS[1]
local step = ARGV[1]
local token = ARGV[2]

local function now()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

local function holds()
  return redis.call('HGET', pointer, 'lockToken') == token
end

-- claim TOKEN OWNER TTL_MS [TAKEOVER_TOKEN TAKEOVER_BELOW_MS]: take the lock if it is free or
-- expired, or held by TAKEOVER_TOKEN (a holder believed dead) that has not renewed it for a while:
-- with less than TAKEOVER_BELOW_MS left. A live holder renews it, so it cannot be taken over even
-- when the belief was wrong. Returns { 1 } or { 0, owner, ms left }.
if step == 'claim' then
  local held = redis.call('HMGET', pointer, 'lockToken', 'lockOwner', 'lockExpiresAt')
  local at = now()
  local left = tonumber(held[3] or 0) - at
  local takeover = held[1] == ARGV[5] and left < tonumber(ARGV[6] or 0)
  if held[1] and held[1] ~= token and left > 0 and not takeover then
    return { 0, held[2] or '', left }
  end
  redis.call('HSET', pointer, 'lockToken', token, 'lockOwner', ARGV[3], 'lockExpiresAt', at + tonumber(ARGV[4]))
  redis.call('HDEL', pointer, 'abort')
  return { 1 }
end

-- renew TOKEN TTL_MS: { 1, abort requested (0/1) } while held (an expired lock nobody else took
-- is still held); { 0, owner } once another holds it; { -1 } when the lock is gone.
if step == 'renew' then
  local held = redis.call('HMGET', pointer, 'lockToken', 'lockOwner', 'abort')
  if not held[1] then return { -1 } end
  if held[1] ~= token then return { 0, held[2] or '' } end
  redis.call('HSET', pointer, 'lockExpiresAt', now() + tonumber(ARGV[3]))
  -- An abort concerns a building generation: once flipped, the rebuild finishes its cleanup.
  return { 1, (held[3] and redis.call('HEXISTS', pointer, 'building') == 1) and 1 or 0 }
end

-- release TOKEN: frees the lock if held.
if step == 'release' then
  if holds() then redis.call('HDEL', pointer, 'lockToken', 'lockOwner', 'lockExpiresAt', 'abort') end
  return 1
end

-- request-abort: asks the holder to stop at its next renewal.
if step == 'request-abort' then
  redis.call('HSET', pointer, 'abort', '1')
  return 1
end

if not holds() then return redis.error_reply('LOCKLOST the rebuild lock is held by another process') end

-- announce TOKEN: the building generation, announced now unless it was already (a resumed rebuild).
-- A new one is above every generation ever announced, so an aborted one's keys are never reused.
if step == 'announce' then
  local fields = redis.call('HMGET', pointer, 'current', 'building', 'last')
  if fields[2] then return tonumber(fields[2]) end
  -- A Redis no instance has used yet (a new one to fill): generation 1 is current, as an
  -- instance would set it, so the building one is above it.
  if not fields[1] then
    redis.call('HSET', pointer, 'current', '1')
    fields[1] = '1'
  end
  local generation = math.max(tonumber(fields[1]), tonumber(fields[3] or 0)) + 1
  redis.call('HSET', pointer, 'building', generation, 'last', generation)
  return generation
end

-- flip TOKEN GENERATION STATE: reads move to GENERATION; the generation they leave stays written
-- (previous) until retired. Returns { the generation left, the time of the flip (ms) }.
if step == 'flip' then
  local fields = redis.call('HMGET', pointer, 'current', 'building')
  if fields[2] ~= ARGV[3] or not fields[1] or fields[1] == fields[2] then
    return redis.error_reply('NOTBUILDING generation ' .. ARGV[3] .. ' is not the building generation')
  end
  local at = now()
  redis.call('HSET', pointer, 'current', ARGV[3], 'previous', fields[1], 'rebuild', ARGV[4])
  redis.call('HDEL', pointer, 'building')
  return { tonumber(fields[1]), at }
end

-- retire TOKEN GENERATION: stop writing the previous generation.
if step == 'retire' then
  if redis.call('HGET', pointer, 'previous') == ARGV[3] then redis.call('HDEL', pointer, 'previous') end
  return 1
end

-- drop TOKEN GENERATION: stop writing the building generation (abort).
if step == 'drop' then
  if redis.call('HGET', pointer, 'building') == ARGV[3] then redis.call('HDEL', pointer, 'building') end
  return 1
end

-- state TOKEN STATE: the rebuild's state and progress.
if step == 'state' then
  redis.call('HSET', pointer, 'rebuild', ARGV[3])
  return 1
end

return redis.error_reply('unknown step ' .. tostring(step))
