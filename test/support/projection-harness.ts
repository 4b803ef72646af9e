import { ProjectionConfig, RedisConfig } from '../../src/config/app-config.js';
import { ProjectionGenerations } from '../../src/projection/projection-generations.js';
import { ProjectionKeys } from '../../src/projection/projection-keys.js';
import { RedisTaskProjection } from '../../src/projection/redis-task-projection.js';
import { RedisConnection } from '../../src/redis/redis-connection.js';
import { RedisTarget } from './test-redis.js';

/**
 * The Redis projection wired as the app wires it (connection, generation pointer, projection),
 * without Nest, on a Redis and key prefix of the caller's choosing. The one harness of the
 * projection's integration specs.
 */
export class ProjectionHarness {
  readonly keys: ProjectionKeys;

  private constructor(
    readonly config: RedisConfig,
    readonly connection: RedisConnection,
    readonly generations: ProjectionGenerations,
    readonly projection: RedisTaskProjection,
  ) {
    this.keys = new ProjectionKeys(config.keyPrefix);
  }

  /**
   * Connects to `target` (a Redis or a cluster) under `keyPrefix`; tombstone markers live
   * `tombstoneTtlSeconds`, and finished tasks `terminalTtlSeconds` (unset: forever).
   */
  static async open(
    target: RedisTarget,
    keyPrefix: string,
    { tombstoneTtlSeconds = 3600, commandTimeoutMs = 1000, terminalTtlSeconds }: { tombstoneTtlSeconds?: number; commandTimeoutMs?: number; terminalTtlSeconds?: number } = {},
  ): Promise<ProjectionHarness> {
    const redis: RedisConfig = { ...target, keyPrefix, commandTimeoutMs };
    const projection: ProjectionConfig = { tombstoneTtlSeconds, ...(terminalTtlSeconds !== undefined && { terminalTtlSeconds }) };
    const connection = new RedisConnection(redis);
    await connection.onModuleInit();
    const generations = new ProjectionGenerations(connection, redis);
    await generations.onModuleInit();
    return new ProjectionHarness(redis, connection, generations, new RedisTaskProjection(connection, generations, redis, projection));
  }

  /** Closes the connection, as the app's shutdown does. */
  async close(): Promise<void> {
    await this.generations.onApplicationShutdown();
    await this.connection.onApplicationShutdown();
  }
}
