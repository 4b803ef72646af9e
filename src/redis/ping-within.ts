import { RedisClient } from './redis-connection.js';

/**
 * Resolves with Redis's answer time (ms) to a PING, or rejects when it fails or takes longer than
 * `timeoutMs`: a Redis that stalls counts as unreachable rather than holding the caller. Readiness
 * and the reachability metric both ask so.
 */
export async function pingWithin(client: Pick<RedisClient, 'ping'>, timeoutMs: number): Promise<number> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer to PING within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([client.ping(), timedOut]);
    return performance.now() - started;
  } finally {
    clearTimeout(timer);
  }
}
