import { setTimeout as sleep } from 'node:timers/promises';
import kafkajs from 'kafkajs';
import type { Admin, CompressionTypes, Kafka, IHeaders, KafkaMessage, Message, Producer, RecordMetadata } from 'kafkajs';
import { registerCompressionCodecs } from '../../src/kafka/compression-codecs.js';
import { LinearDefaultPartitioner } from '../../src/kafka/kafkajs-hardening.js';
import { uniqueName } from './infra.js';

/** A message read back from a topic, with where it was. */
export type ConsumedMessage = KafkaMessage & { readonly partition: number };

/**
 * Kafka as a test sees it: a producer for the source topic, an admin, and reading a whole topic
 * back. Every client it opens is closed by `close`.
 */
export class TestKafka {
  private readonly kafka: Kafka;
  private readonly producer: Producer;
  readonly admin: Admin;

  private constructor(brokers: string[], clientId: string) {
    registerCompressionCodecs();
    this.kafka = new kafkajs.Kafka({ clientId, brokers, logLevel: kafkajs.logLevel.NOTHING });
    this.producer = this.kafka.producer({ createPartitioner: LinearDefaultPartitioner, allowAutoTopicCreation: false });
    this.admin = this.kafka.admin();
  }

  static async connect(brokers: string[], clientId = uniqueName('test-client')): Promise<TestKafka> {
    const kafka = new TestKafka(brokers, clientId);
    await kafka.producer.connect();
    await kafka.admin.connect();
    return kafka;
  }

  /** Sends the messages in order, in one request; returns where each partition's first one landed. */
  send(topic: string, messages: Message[], compression?: CompressionTypes): Promise<RecordMetadata[]> {
    return this.producer.send({ topic, messages, compression, acks: -1 });
  }

  /**
   * Sends many messages in chunks with a few sends in flight. Callers that need per-key order
   * across calls await one call before the next (a key appears at most once per call).
   */
  async sendAll(topic: string, messages: Message[], { chunkSize = 500, inFlight = 4 } = {}): Promise<void> {
    let next = 0;
    const sender = async (): Promise<void> => {
      while (next < messages.length) {
        const chunk = messages.slice(next, next + chunkSize);
        next += chunkSize;
        await this.send(topic, chunk);
      }
    };
    await Promise.all(Array.from({ length: inFlight }, sender));
  }

  /** Sends one message and returns its partition and offset. */
  async sendOne(topic: string, message: Message): Promise<{ partition: number; offset: number }> {
    const [metadata] = await this.send(topic, [message]);
    return { partition: metadata.partition, offset: Number(metadata.baseOffset) };
  }

  /**
   * Lets the source topic take records up to `bytes`, so a suite can send events larger than the
   * dead-letter topic takes. AlterConfigs replaces a topic's whole config: compaction is restated.
   */
  async allowCompactedRecordsUpTo(topic: string, bytes: number): Promise<void> {
    await this.admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: 2,
          name: topic,
          configEntries: [
            { name: 'cleanup.policy', value: 'compact' },
            { name: 'max.message.bytes', value: String(bytes) },
          ],
        },
      ],
    });
  }

  /**
   * A source topic of `partitions` partitions and its dead-letter topic, as the service would find
   * them. `cleanupPolicy` is the service's own ("compact") unless every event must stay ("delete").
   */
  async createTaskTopics(topic: string, dlqTopic: string, partitions: number, cleanupPolicy: 'compact' | 'delete'): Promise<void> {
    await this.admin.createTopics({
      waitForLeaders: true,
      timeout: 30000,
      topics: [
        { topic, numPartitions: partitions, replicationFactor: 1, configEntries: [{ name: 'cleanup.policy', value: cleanupPolicy }] },
        { topic: dlqTopic, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: 'cleanup.policy', value: 'delete' }] },
      ],
    });
  }

  /** Deletes those of the topics that exist. */
  async deleteTopics(topics: string[]): Promise<void> {
    const existing = new Set(await this.admin.listTopics());
    const present = topics.filter((topic) => existing.has(topic));
    if (present.length > 0) await this.admin.deleteTopics({ topics: present, timeout: 30000 });
  }

  /** Deletes those of the groups that exist (a group that never committed does not). */
  async deleteGroups(groupIds: string[]): Promise<void> {
    const { groups } = await this.admin.listGroups();
    const existing = new Set(groups.map(({ groupId }) => groupId));
    const present = groupIds.filter((groupId) => existing.has(groupId));
    if (present.length > 0) await this.admin.deleteGroups(present);
  }

  /** How many events the topic holds: high minus low watermark, over its partitions. */
  async eventCount(topic: string): Promise<number> {
    const offsets = await this.admin.fetchTopicOffsets(topic);
    return offsets.reduce((sum, { high, low }) => sum + Number(high) - Number(low), 0);
  }

  /** The next offset to be written on each partition of the topic. */
  async endOffsets(topic: string): Promise<Map<number, number>> {
    const offsets = await this.admin.fetchTopicOffsets(topic);
    return new Map(offsets.map(({ partition, high }) => [partition, Number(high)]));
  }

  /** The group's committed offsets (next to read) per partition; -1 where it has committed nothing. */
  async committedOffsets(groupId: string, topic: string): Promise<Map<number, number>> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        const [entry] = await this.admin.fetchOffsets({ groupId, topics: [topic] });
        return new Map(entry.partitions.map(({ partition, offset }) => [partition, Number(offset)]));
      } catch (error) {
        // A coordinator that is loading or moving answers with a retriable error; ask again.
        if (!(error as { retriable?: boolean }).retriable || attempt >= 20) throw error;
        await sleep(100 * attempt);
      }
    }
  }

  /** Reads the topic from the beginning until `count` messages have arrived, with a throwaway group. */
  async readAll(topic: string, count: number, timeoutMs = 60_000): Promise<ConsumedMessage[]> {
    const consumer = this.kafka.consumer({ groupId: uniqueName('test-reader'), maxWaitTimeInMs: 200 });
    const messages: ConsumedMessage[] = [];
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      let done!: () => void;
      const complete = new Promise<void>((resolve) => (done = resolve));
      await consumer.run({
        eachMessage: async ({ partition, message }) => {
          messages.push({ ...message, partition });
          if (messages.length >= count) done();
        },
      });
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
      await Promise.race([complete, timedOut]);
      clearTimeout(timer);
      return messages;
    } finally {
      await consumer.disconnect();
    }
  }

  /**
   * Follows the topic from its beginning with a throwaway group: `messages` grows as they arrive,
   * until `stop`. For suites that look for particular messages among many.
   */
  async follow(topic: string): Promise<{ readonly messages: ConsumedMessage[]; stop(): Promise<void> }> {
    const consumer = this.kafka.consumer({ groupId: uniqueName('test-follower'), maxWaitTimeInMs: 200 });
    const messages: ConsumedMessage[] = [];
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({ eachMessage: async ({ partition, message }) => void messages.push({ ...message, partition }) });
    return { messages, stop: () => consumer.disconnect() };
  }

  async close(): Promise<void> {
    await this.producer.disconnect();
    await this.admin.disconnect();
  }
}

/** A header's value as text, whatever form kafkajs gives it in. */
export function headerText(headers: IHeaders | undefined, name: string): string | undefined {
  const value = headers?.[name];
  if (value === undefined) return undefined;
  return (Array.isArray(value) ? value[0] : value).toString();
}
