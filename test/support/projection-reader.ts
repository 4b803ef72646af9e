import { Cluster, Redis } from 'ioredis';
import { RedisConfig } from '../../src/config/app-config.js';
import { ProjectionKeys } from '../../src/projection/projection-keys.js';
import { redisClient } from './test-redis.js';

/** A task as the projection's hash holds it; value null for a tombstone marker. */
export interface ProjectedTask {
  readonly value: Buffer | null;
  readonly partition: number;
  readonly offset: number;
}

/**
 * Reads the projection straight from Redis (standalone or cluster), under a suite's key prefix, in
 * the current generation. Independent of the service's own read path, so ingest tests do not
 * depend on it.
 */
export class ProjectionReader {
  private readonly keys: ProjectionKeys;
  private readonly redis: Redis | Cluster;

  constructor(config: Pick<RedisConfig, 'url' | 'cluster' | 'keyPrefix'>) {
    this.keys = new ProjectionKeys(config.keyPrefix);
    this.redis = redisClient(config);
  }

  /** Every requested task that has a hash (tasks never seen are absent from the map). */
  async read(taskIds: readonly string[]): Promise<Map<string, ProjectedTask>> {
    const generation = Number((await this.redis.hget(this.keys.generationPointer, 'current')) ?? '1');
    // Single commands issued together (not a pipeline object, which a cluster cannot split across slots).
    const replies = await Promise.all(taskIds.map((taskId) => this.redis.hmgetBuffer(this.keys.task(generation, taskId), 'v', 'p', 'o')));
    const tasks = new Map<string, ProjectedTask>();
    replies.forEach(([value, partition, offset], index) => {
      if (partition === null) return;
      tasks.set(taskIds[index], { value, partition: Number(partition), offset: Number(offset) });
    });
    return tasks;
  }

  /** The highest offset applied on each partition: a task's hash holds the last event applied to it. */
  async highestAppliedOffsets(taskIds: readonly string[]): Promise<Map<number, number>> {
    const highest = new Map<number, number>();
    for (const task of (await this.read(taskIds)).values()) {
      highest.set(task.partition, Math.max(highest.get(task.partition) ?? -1, task.offset));
    }
    return highest;
  }

  /** Milliseconds before the task's key expires; -1 when it does not expire, -2 when absent. */
  async ttl(taskId: string): Promise<number> {
    const generation = Number((await this.redis.hget(this.keys.generationPointer, 'current')) ?? '1');
    return this.redis.pttl(this.keys.task(generation, taskId));
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
