// What a run reads from the shared Redis besides tasks: its own keys (all under its own prefixes,
// found by SCAN and removed with UNLINK at the end; nothing else is touched), the memory the
// projection spends on them, and the store's own GET ceiling.
import { execFile } from 'node:child_process';
import type { Redis } from 'ioredis';

/** Every key under `prefix` (the prefix holds no glob characters: see runNames). */
export async function keysWithPrefix(redis: Redis, prefix: string): Promise<string[]> {
  if (/[*?[\]\\]/.test(prefix)) throw new Error(`key prefix "${prefix}" holds glob characters`);
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [nextCursor, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    keys.push(...batch);
    cursor = nextCursor;
  } while (cursor !== '0');
  return keys;
}

export async function deleteKeysWithPrefix(redis: Redis, prefix: string): Promise<number> {
  const keys = await keysWithPrefix(redis, prefix);
  for (let i = 0; i < keys.length; i += 500) await redis.unlink(...keys.slice(i, i + 500));
  return keys.length;
}

export interface ProjectionMemory {
  keys: number;
  tasks: number;
  redisBytes: number;
  jsonBytes: number;
  redisBytesPerTask: number;
  jsonBytesPerTask: number;
  ratio: number;
}

/**
 * Redis memory the projection spends per task: MEMORY USAGE (exact, SAMPLES 0) of every key under
 * the service's key prefix, whatever its layout, against the JSON bytes of the tasks it holds.
 */
export async function projectionMemory(redis: Redis, { keyPrefix, tasks, jsonBytes }: { keyPrefix: string; tasks: number; jsonBytes: number }): Promise<ProjectionMemory> {
  const keys = await keysWithPrefix(redis, keyPrefix);
  let bytes = 0;
  for (let i = 0; i < keys.length; i += 500) {
    const pipeline = redis.pipeline();
    for (const key of keys.slice(i, i + 500)) pipeline.call('MEMORY', 'USAGE', key, 'SAMPLES', '0');
    for (const [error, usage] of (await pipeline.exec()) ?? []) {
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

export type RedisCeiling =
  | { available: false; reason: string }
  | { available: true; command: string; clients: number; requests: number; requestsPerSecond: number; p50Ms: number; p99Ms: number };

const REDIS_BENCHMARK_TIMEOUT_MS = 180_000;

/**
 * The store's own ceiling: redis-benchmark GET of one key holding a task's bytes, on the same
 * Redis. It bounds what any reader of this Redis can reach on this machine.
 */
export function redisBenchmarkGet({ redisUrl, key, clients, requests }: { redisUrl: string; key: string; clients: number; requests: number }): Promise<RedisCeiling> {
  const { hostname, port } = new URL(redisUrl);
  const args = ['-h', hostname, '-p', port || '6379', '-c', String(clients), '-n', String(requests), '--csv', 'GET', key];
  return new Promise((resolve) => {
    execFile('redis-benchmark', args, { timeout: REDIS_BENCHMARK_TIMEOUT_MS }, (error, stdout, stderr) => {
      if (error) {
        const reason = error.code === 'ENOENT' ? 'redis-benchmark is not installed' : `redis-benchmark failed: ${stderr.trim() || error.message}`;
        resolve({ available: false, reason });
        return;
      }
      // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
      const rows = stdout
        .trim()
        .split('\n')
        .map((line) => line.split(',').map((cell) => cell.replace(/^"|"$/g, '')));
      const header = rows.find((row) => row[0] === 'test');
      const values = rows.find((row) => row[0] !== 'test' && row.length === header?.length);
      if (!header || !values) {
        resolve({ available: false, reason: `unexpected redis-benchmark output: ${stdout.slice(0, 200)}` });
        return;
      }
      const field = (name: string): number => Number(values[header.indexOf(name)]);
      resolve({
        available: true,
        command: `redis-benchmark ${args.join(' ')}`,
        clients,
        requests,
        requestsPerSecond: field('rps'),
        p50Ms: field('p50_latency_ms'),
        p99Ms: field('p99_latency_ms'),
      });
    });
  });
}
