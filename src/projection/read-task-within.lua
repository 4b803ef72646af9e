-- Reads a task for a batch read: its value only if it fits the allowance the read gives each task.
--
-- KEYS[1]  the task's hash: { v = raw JSON bytes, p = partition, o = offset, ... }
-- ARGV[1]  the allowance: the most bytes of value this task may answer with
--
-- Returns { v, p, o } as HMGET would (v nil when the task has no value: never seen, deleted, or
-- expired) when the value is at most the allowance; otherwise { size of v, p, o }, an integer in
-- place of the value, which is left in Redis: the caller fetches it apart if the answer has room.
-- HSTRLEN is O(1), so a large value is never copied to be measured.
local size = redis.call('HSTRLEN', KEYS[1], 'v')
if size <= tonumber(ARGV[1]) then
  return redis.call('HMGET', KEYS[1], 'v', 'p', 'o')
end
local version = redis.call('HMGET', KEYS[1], 'p', 'o')
return { size, version[1], version[2] }
