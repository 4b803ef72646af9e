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
    let deleted = 0;
    for await (const { node, keys } of this.batches(generation)) {
      signal.throwIfAborted();
      // One key per UNLINK: keys of a cluster node's batch lie in different slots.
      await Promise.all(keys.map((key) => node.unlink(key)));
      deleted += keys.length;
      onBatch(deleted);
    }
    return deleted;
  }

  /** Whether `generation` holds any key; stops at the first found. */
  async hasKeys(generation: number): Promise<boolean> {
    for await (const _batch of this.batches(generation)) return true;
    return false;
  }

  /** Keys of `generation`, counted the same way. */
  async countGeneration(generation: number): Promise<number> {
    let count = 0;
    for await (const { keys } of this.batches(generation)) count += keys.length;
    return count;
  }

  /** The keys of `generation`, a SCAN call's worth at a time, from every master. */
  private async *batches(generation: number): AsyncGenerator<{ node: Redis; keys: string[] }> {
    const client = this.redis.client;
    const nodes: Redis[] = client instanceof Cluster ? client.nodes('master') : [client];
    const pattern = this.keys.generationPattern(generation);
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT);
        cursor = next;
        if (keys.length > 0) yield { node, keys };
      } while (cursor !== '0');
    }
  }
}
