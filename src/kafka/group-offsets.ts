import type { Admin } from 'kafkajs';

/** Per partition, an offset of a topic. */
export type PartitionOffsets = ReadonlyMap<number, bigint>;

/** The topic's high watermarks: the offset the next record of each partition will take. */
export async function highWatermarks(admin: Admin, topic: string): Promise<PartitionOffsets> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return new Map(offsets.map(({ partition, high }) => [partition, BigInt(high)]));
}

/** The group's committed offsets on the topic; a partition with none committed is absent. */
export async function committedOffsets(admin: Admin, groupId: string, topic: string): Promise<PartitionOffsets> {
  const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
  // -1: nothing committed yet.
  return new Map((committed?.partitions ?? []).filter(({ offset }) => BigInt(offset) >= 0n).map(({ partition, offset }) => [partition, BigInt(offset)]));
}

/**
 * Offsets between `position` and `target`, summed over the target's partitions (a partition with
 * no position counts from 0). Zero once every partition has reached its target.
 */
export function offsetsBehind(position: PartitionOffsets, target: PartitionOffsets): bigint {
  let behind = 0n;
  for (const [partition, high] of target) {
    const from = position.get(partition) ?? 0n;
    if (from < high) behind += high - from;
  }
  return behind;
}
