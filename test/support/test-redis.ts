import { Cluster, Redis } from 'ioredis';
import { RedisConfig } from '../../src/config/app-config.js';
import { PrivateRedis, PrivateRedisOptions } from './private-redis.js';
import { PrivateRedisCluster } from './private-redis-cluster.js';

/**
 * Which Redis the suites run against: a standalone redis-server (the default) or a Redis Cluster,
 * with TC_REDIS_MODE=cluster (npm run test:integration:cluster, npm run test:e2e:cluster).
 */
export const REDIS_MODE: 'standalone' | 'cluster' = process.env.TC_REDIS_MODE === 'cluster' ? 'cluster' : 'standalone';

/** Where a Redis is, as the service's config names it: REDIS_URL, or REDIS_CLUSTER_NODES. */
export type RedisTarget = Pick<RedisConfig, 'url' | 'cluster'>;

/** A Redis of a suite's own, which it may take down and bring back. */
export interface PrivateRedisServer {
  readonly config: RedisTarget;
  kill(): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

/** A private redis-server, or a private cluster of six in cluster mode. */
export function startPrivateRedis(options: PrivateRedisOptions = {}): Promise<PrivateRedisServer> {
  return REDIS_MODE === 'cluster' ? PrivateRedisCluster.start(options) : PrivateRedis.start(options);
}

/**
 * A plain ioredis client on `target`, for tests that look at Redis beside the service: `Redis`, or
 * `Cluster` (single-key commands only, as the service uses). Short disconnect timeout and steady
 * reconnects: some suites take this Redis down under it.
 */
export function redisClient(target: RedisTarget): Redis | Cluster {
  const client = target.cluster
    ? new Cluster(
        target.cluster.nodes.map(({ host, port }) => ({ host, port })),
        { enableAutoPipelining: true, clusterRetryStrategy: () => 100, redisOptions: { disconnectTimeout: 10, maxRetriesPerRequest: 1 } },
      )
    : new Redis(target.url, { disconnectTimeout: 10, maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  client.on('error', () => undefined);
  return client;
}
