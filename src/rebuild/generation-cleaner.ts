import { Injectable } from '@nestjs/common';
import { Cluster, Redis } from 'ioredis';
import { RedisConfig } from '../config/app-config.js';
import { ProjectionKeys } from '../projection/projection-keys.js';
import { RedisConnection } from '../redis/redis-connection.js';

/** Keys asked for per SCAN call, and deleted per round trip. */
const SCAN_COUNT = 1000;

/**
 * Deletes one generation's keys with SCAN and UNLINK, a batch per round trip, on every master of a
 * cluster: other commands are served between batches, and UNLINK frees memory off the main thread.
 */
@Injectable()
export class GenerationCleaner {
  private readonly keys: ProjectionKeys;

  constructor(
    private readonly redis: RedisConnection,
    config: RedisConfig,
  ) {
    this.keys = new ProjectionKeys(config.keyPrefix);
  }

  /** Deletes every key of `generation`; returns how many. Safe to run again after a failure. */
  async deleteGeneration(generation: number, signal: AbortSignal, onBatch: (deleted: number) => void = () => undefined): Promise<number> {
    const client = this.redis.client;
    const nodes: Redis[] = client instanceof Cluster ? client.nodes('master') : [client];
    const pattern = this.keys.generationPattern(generation);
    let deleted = 0;
    for (const node of nodes) {
      let cursor = '0';
      do {
        signal.throwIfAborted();
        const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT);
        cursor = next;
        if (found.length === 0) continue;
        // One key per UNLINK: keys of a cluster node's batch lie in different slots.
        await Promise.all(found.map((key) => node.unlink(key)));
        deleted += found.length;
        onBatch(deleted);
      } while (cursor !== '0');
    }
    return deleted;
  }

  /** Whether `generation` holds any key; stops at the first found. */
  async hasKeys(generation: number): Promise<boolean> {
    const client = this.redis.client;
    const nodes: Redis[] = client instanceof Cluster ? client.nodes('master') : [client];
    const pattern = this.keys.generationPattern(generation);
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT);
        if (found.length > 0) return true;
        cursor = next;
      } while (cursor !== '0');
    }
    return false;
  }

  /** Keys of `generation`, counted the same way (for `status` and tests). */
  async countGeneration(generation: number): Promise<number> {
    const client = this.redis.client;
    const nodes: Redis[] = client instanceof Cluster ? client.nodes('master') : [client];
    const pattern = this.keys.generationPattern(generation);
    let count = 0;
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT);
        cursor = next;
        count += found.length;
      } while (cursor !== '0');
    }
    return count;
  }
}
