// Redis memory the projection spends per task: MEMORY USAGE (exact, SAMPLES 0) of every key under the
// service's key prefix, whatever its layout, against the JSON bytes of the tasks it holds.
import { keysWithPrefix } from './redis-prefix.mjs';

export async function projectionMemory(redis, { keyPrefix, tasks, jsonBytes }) {
  const keys = await keysWithPrefix(redis, keyPrefix);
  let bytes = 0;
  for (let i = 0; i < keys.length; i += 500) {
    const pipeline = redis.pipeline();
    for (const key of keys.slice(i, i + 500)) pipeline.call('MEMORY', 'USAGE', key, 'SAMPLES', '0');
    for (const [error, usage] of await pipeline.exec()) {
      if (error) throw error;
      bytes += Number(usage ?? 0);
    }
  }
  return {
    keys: keys.length,
    tasks,
    redisBytes: bytes,
    jsonBytes,
    redisBytesPerTask: bytes / tasks,
    jsonBytesPerTask: jsonBytes / tasks,
    ratio: bytes / jsonBytes,
  };
}
