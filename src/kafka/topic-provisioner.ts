import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { Admin, ITopicConfig } from 'kafkajs';
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
 * Runs in the background after boot and retries with backoff while Kafka is unreachable, so the
 * read API serves from Redis even when Kafka is down. Ingest waits for `ready`.
 */
@Injectable()
export class TopicProvisioner implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(TopicProvisioner.name);
  private readonly stopping = new AbortController();
  /** Settles once the topics exist; rejects only if the service shuts down first. */
  ready: Promise<void> = Promise.resolve();
  /** The admin client of the check under way, so a shutdown can end its connection retries. */
  private admin: Admin | undefined;

  constructor(
    private readonly client: KafkaClient,
    private readonly config: KafkaConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.ready = this.provisionWithRetry();
    this.ready.catch(() => undefined);
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping.abort();
    await this.admin?.disconnect().catch(() => undefined);
  }

  private async provisionWithRetry(): Promise<void> {
    for (let delayMs = 500; ; delayMs = Math.min(delayMs * 2, 10_000)) {
      try {
        await this.ensureTopics();
        return;
      } catch (error) {
        if (this.stopping.signal.aborted) throw error;
        this.logger.warn(`kafka unreachable, topics not checked yet; retrying in ${delayMs} ms: ${(error as Error).message}`);
      }
      await sleep(delayMs, undefined, { signal: this.stopping.signal });
    }
  }

  async ensureTopics(): Promise<void> {
    const { topic, dlqTopic, topicPartitions, replicationFactor } = this.config;
    const admin = this.client.kafka.admin();
    this.admin = admin;
    await admin.connect();
    try {
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
    } finally {
      this.admin = undefined;
      await admin.disconnect();
    }
  }
}
