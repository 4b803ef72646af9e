import { Injectable } from '@nestjs/common';
import { Cluster, Redis } from 'ioredis';
import { RedisConnection } from '../redis/redis-connection.js';

/** The building generation's expected size over the current one's data (see expectedPeakBytes). */
const PEAK_MARGIN = 1.1;

/** One Redis (a cluster's master) as INFO memory describes it. */
export interface NodeMemory {
  readonly node: string;
  readonly usedBytes: number;
  /** The data itself, without Redis's own overhead: about what one generation of a dedicated Redis takes. */
  readonly datasetBytes: number;
  /** 0: no limit. */
  readonly maxBytes: number;
  /**
   * used + dataset + 10%: what it holds once the building generation is as large as the current
   * one, with a margin for the allocator (the measured peak was above used + dataset: bench/RESULTS.md).
   */
  readonly expectedPeakBytes: number;
  /** maxmemory-policy: what Redis does when full. */
  readonly policy: string;
}

/**
 * Redis's memory before a rebuild. During a rebuild Redis holds two generations, so the expected
 * peak is what it uses now plus another copy of its dataset. Measured: bench/RESULTS.md.
 */
@Injectable()
export class RedisMemory {
  constructor(private readonly redis: RedisConnection) {}

  async perNode(): Promise<NodeMemory[]> {
    const client = this.redis.client;
    const nodes: Redis[] = client instanceof Cluster ? client.nodes('master') : [client];
    return Promise.all(
      nodes.map(async (node) => {
        const text = await node.info('memory');
        const info = parseInfo(text);
        const usedBytes = info.used_memory ?? 0;
        const datasetBytes = info.used_memory_dataset ?? usedBytes;
        return {
          node: `${node.options.host}:${node.options.port}`,
          usedBytes,
          datasetBytes,
          maxBytes: info.maxmemory ?? 0,
          expectedPeakBytes: Math.round(usedBytes + datasetBytes * PEAK_MARGIN),
          policy: /^maxmemory_policy:(\S+)/m.exec(text)?.[1] ?? 'noeviction',
        };
      }),
    );
  }
}

function parseInfo(text: string): Record<string, number> {
  const fields: Record<string, number> = {};
  for (const line of text.split(/\r?\n/)) {
    const at = line.indexOf(':');
    if (at > 0 && /^\d+$/.test(line.slice(at + 1))) fields[line.slice(0, at)] = Number(line.slice(at + 1));
  }
  return fields;
}

export function megabytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
