/**
 * One validated event from the source topic, ready to be projected. `value` holds the bytes as
 * they were produced; null is a tombstone. (partition, offset) is the event's version.
 */
export interface TaskEvent {
  readonly taskId: string;
  readonly value: Buffer | null;
  readonly partition: number;
  /** Kafka offset, as kafkajs gives it (a decimal string). */
  readonly offset: string;
  /** Kafka message timestamp, epoch milliseconds. */
  readonly timestamp: number;
  /**
   * Whether the task's status is terminal (it will not run again), which retention expires; the
   * decoder always says, and absent means not terminal (a tombstone is not).
   */
  readonly terminal?: boolean;
}
