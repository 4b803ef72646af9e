import { Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { Producer } from 'kafkajs';
import { KafkaConfig } from '../config/app-config.js';
import { KafkaClient } from '../kafka/kafka-client.js';
import { LinearDefaultPartitioner } from '../kafka/kafkajs-hardening.js';

/** Where the bridge writes a task it re-read: the source topic, keyed by taskId. */
export abstract class TaskRecordProducer {
  /** Resolves once the broker has acknowledged the record (every in-sync replica). */
  abstract produce(taskId: string, value: Buffer): Promise<void>;
}

/**
 * Produces to the source topic (KAFKA_TOPIC) with key = taskId, as any producer of task events
 * must: the default partitioner keeps a task on one partition, so offsets order its versions.
 */
@Injectable()
export class KafkaTaskRecordProducer extends TaskRecordProducer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly producer: Producer;
  private readonly topic: string;
  private connected: Promise<void> | undefined;

  constructor(client: KafkaClient, config: KafkaConfig) {
    super();
    this.topic = config.topic;
    this.producer = client.kafka.producer({ allowAutoTopicCreation: false, createPartitioner: LinearDefaultPartitioner, retry: { retries: 2 } });
  }

  /** Connects at start, in the background: the first webhook then does not wait for it (it took about a second). */
  onApplicationBootstrap(): void {
    this.connect().catch(() => undefined);
  }

  async produce(taskId: string, value: Buffer): Promise<void> {
    await this.connect();
    await this.producer.send({ topic: this.topic, acks: -1, messages: [{ key: taskId, value }] });
  }

  private connect(): Promise<void> {
    this.connected ??= this.producer.connect().catch((error: unknown) => {
      this.connected = undefined;
      throw error;
    });
    return this.connected;
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.connected) await this.producer.disconnect().catch(() => undefined);
  }
}
