import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './infra.js';

const CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;

/** A record batch as the broker stored it. */
export interface StoredBatch {
  readonly partition: number;
  readonly baseOffset: number;
  readonly compression: (typeof CODECS)[number];
  /** -1 for a producer without idempotence (kafkajs here); the producer id otherwise (the Java client). */
  readonly producerId: bigint;
}

/**
 * The record batches of a topic as they sit in the local broker's log segments (.local/data/kafka).
 * The broker keeps a producer's compression as it was written (compression.type=producer), so this
 * shows which codec each batch really arrived with. Record batch v2 header: baseOffset int64,
 * batchLength int32, partitionLeaderEpoch int32, magic int8, crc int32, attributes int16 (codec in
 * the low 3 bits), lastOffsetDelta int32, baseTimestamp int64, maxTimestamp int64, producerId int64.
 */
export function storedBatches(topic: string): StoredBatch[] {
  const dataDir = join(ROOT, '.local', 'data', 'kafka');
  const batches: StoredBatch[] = [];
  for (const entry of readdirSync(dataDir)) {
    const match = entry.match(/^(.*)-(\d+)$/);
    if (!match || match[1] !== topic) continue;
    const partition = Number(match[2]);
    const directory = join(dataDir, entry);
    for (const file of readdirSync(directory).filter((name) => name.endsWith('.log'))) {
      const bytes = readFileSync(join(directory, file));
      for (let position = 0; position + 51 <= bytes.length; ) {
        const batchLength = bytes.readInt32BE(position + 8);
        if (batchLength <= 0 || position + 12 + batchLength > bytes.length || bytes.readInt8(position + 16) !== 2) break;
        batches.push({
          partition,
          baseOffset: Number(bytes.readBigInt64BE(position)),
          compression: CODECS[bytes.readInt16BE(position + 21) & 0x7],
          producerId: bytes.readBigInt64BE(position + 43),
        });
        position += 12 + batchLength;
      }
    }
  }
  if (batches.length === 0 && !existsSync(dataDir)) throw new Error(`no broker data under ${dataDir}`);
  return batches;
}
