// The run's keys in the shared Redis all live under its own prefixes; they are found by SCAN and
// removed with UNLINK at the end. Nothing else in Redis is touched.

/** Every key under `prefix` (the prefix holds no glob characters: see runNames). */
export async function keysWithPrefix(redis, prefix) {
  if (/[*?[\]\\]/.test(prefix)) throw new Error(`key prefix "${prefix}" holds glob characters`);
  const keys = [];
  let cursor = '0';
  do {
    const [nextCursor, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    keys.push(...batch);
    cursor = nextCursor;
  } while (cursor !== '0');
  return keys;
}

export async function deleteKeysWithPrefix(redis, prefix) {
  const keys = await keysWithPrefix(redis, prefix);
  for (let i = 0; i < keys.length; i += 500) await redis.unlink(...keys.slice(i, i + 500));
  return keys.length;
}
