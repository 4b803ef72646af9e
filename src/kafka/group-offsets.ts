import type { Admin } from 'kafkajs';

/** Per partition, an offset of a topic. */
export type PartitionOffsets = ReadonlyMap<number, bigint>;

/** A span of a topic: from each partition's first offset to its high watermark, at one moment. */
export interface TopicRange {
  /** The first offset still in each partition (retention or DeleteRecords may have moved it past 0). */
  readonly start: PartitionOffsets;
  /** The high watermarks: the offset the next record of each partition will take. */
  readonly target: PartitionOffsets;
}

/** The topic's offsets now. */
export async function topicRange(admin: Admin, topic: string): Promise<TopicRange> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return {
    start: new Map(offsets.map(({ partition, low }) => [partition, BigInt(low)])),
    target: new Map(offsets.map(({ partition, high }) => [partition, BigInt(high)])),
  };
}

/** The group's committed offsets on the topic; a partition with none committed is absent. */
export async function committedOffsets(admin: Admin, groupId: string, topic: string): Promise<PartitionOffsets> {
  const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
  // -1: nothing committed yet.
  return new Map((committed?.partitions ?? []).filter(({ offset }) => BigInt(offset) >= 0n).map(({ partition, offset }) => [partition, BigInt(offset)]));
}

/**
 * Offsets between the group's `position` and the range's target, summed over its partitions. A
 * partition with nothing committed counts from its start: one with no records left (start equal to
 * its high watermark) is never committed to, and is caught up. Zero once every partition is.
 */
export function offsetsBehind(position: PartitionOffsets, { start, target }: TopicRange): bigint {
  let behind = 0n;
  for (const [partition, high] of target) {
    const from = position.get(partition) ?? start.get(partition) ?? 0n;
    if (from < high) behind += high - from;
  }
  return behind;
}
