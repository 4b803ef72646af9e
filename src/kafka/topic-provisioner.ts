import { Injectable, Logger } from '@nestjs/common';
import type { ITopicConfig } from 'kafkajs';
import { KafkaConfig } from '../config/app-config.js';
import { KafkaClient } from './kafka-client.js';

/**
 * Room for the contract's largest value (1 MiB) with its key, headers and batch overhead; the
 * broker's default (1,048,588 bytes) would refuse an uncompressed value at the limit. The
 * dead-letter topic takes the same, so any event the source topic accepted fits there too.
 */
const MAX_MESSAGE_BYTES = String(1024 * 1024 + 64 * 1024);

/**
 * Creates the service's topics when they are missing. The source topic is compacted so that the
 * latest event of every task stays in Kafka and a full replay can always rebuild the projection.
 * Broker-side auto-creation is never relied on.
 *
 * One step, no retries of its own: it is the first step of the consumer's start (TaskEventConsumer),
 * which retries it with the rest of the start while Kafka is unreachable and stops on an error that
 * will not pass.
 */
@Injectable()
export class TopicProvisioner {
  private readonly logger = new Logger(TopicProvisioner.name);

  constructor(
    private readonly client: KafkaClient,
    private readonly config: KafkaConfig,
  ) {}

  /** Ensures both topics exist. `signal` ends the admin client's connection retries at once. */
  async ensureTopics(signal?: AbortSignal): Promise<void> {
    const { topic, dlqTopic, topicPartitions, replicationFactor } = this.config;
    // One attempt: the caller's loop retries, with its backoff, and a stop ends the attempt at once.
    await this.client.withAdmin(signal, async (admin) => {
      const existing = new Set(await admin.listTopics());
      const wanted: ITopicConfig[] = [
        {
          topic,
          numPartitions: topicPartitions,
          replicationFactor,
          configEntries: [
            { name: 'cleanup.policy', value: 'compact' },
            { name: 'max.message.bytes', value: MAX_MESSAGE_BYTES },
          ],
        },
        {
          topic: dlqTopic,
          numPartitions: 1,
          replicationFactor,
          configEntries: [
            { name: 'cleanup.policy', value: 'delete' },
            { name: 'max.message.bytes', value: MAX_MESSAGE_BYTES },
          ],
        },
      ].filter((spec) => !existing.has(spec.topic));
      if (wanted.length === 0) return;
      await admin.createTopics({ topics: wanted, waitForLeaders: true });
      this.logger.log(`created topics: ${wanted.map((spec) => `${spec.topic} (${spec.numPartitions} partitions)`).join(', ')}`);
    });
  }
}
