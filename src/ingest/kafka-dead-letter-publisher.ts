import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import kafkajs from 'kafkajs';
import type { IHeaders, Message, Producer } from 'kafkajs';
import { AppConfig } from '../config/app-config.js';
import { KafkaClient } from '../kafka/kafka-client.js';
import { DeadLetter } from './dead-letter.js';
import { DeadLetterPublisher } from './dead-letter-publisher.js';

const { CompressionTypes, Partitioners } = kafkajs;

const TOO_LARGE = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE']);

/**
 * `DeadLetterPublisher` on Kafka: dead letters go to `KAFKA_DLQ_TOPIC`, keyed as the source
 * event was. Delivery is at least once, like everything else in ingest: a publish that fails
 * part-way is repeated whole.
 */
@Injectable()
export class KafkaDeadLetterPublisher extends DeadLetterPublisher implements OnApplicationShutdown {
  private readonly logger = new Logger('DeadLetters');
  private readonly producer: Producer;
  private readonly topic: string;
  private connected: Promise<void> | undefined;

  constructor(client: KafkaClient, config: AppConfig) {
    super();
    this.topic = config.kafka.dlqTopic;
    this.producer = client.kafka.producer({
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
      // Few retries here: ingest retries the whole step with its own backoff and stays stoppable.
      retry: { retries: 2 },
    });
  }

  async publish(letters: readonly DeadLetter[]): Promise<void> {
    if (letters.length === 0) return;
    await this.connect();
    const omitted = new Set<DeadLetter>();
    try {
      // Compressed: a dead letter can be as large as the source topic allows (values over the
      // 1 MiB limit are dead letters themselves), and the DLQ takes 1 MiB + 64 KiB per message.
      await this.producer.send({ topic: this.topic, compression: CompressionTypes.GZIP, messages: letters.map(toMessage) });
    } catch (error) {
      if (!isTooLarge(error)) throw error;
      for (const letter of letters) {
        if (!(await this.sendAlone(letter))) omitted.add(letter);
      }
    }
    for (const letter of letters) {
      const note = omitted.has(letter) ? ` (value of ${letter.message.value?.length} bytes omitted: too large for ${this.topic})` : '';
      this.logger.warn(
        `dead-lettered ${letter.topic} partition ${letter.partition} offset ${letter.message.offset}: ${letter.reason}${note}`,
      );
    }
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.connected) await this.producer.disconnect().catch(() => undefined);
  }

  private connect(): Promise<void> {
    this.connected ??= this.producer.connect().catch((error: unknown) => {
      this.connected = undefined;
      throw error;
    });
    return this.connected;
  }

  /**
   * Sends one dead letter; returns false if it had to go without its value. A dead letter the DLQ
   * refuses even compressed keeps its key, headers and source coordinates but not its value, and
   * says so in `x-dlq-value-omitted`: stalling the partition forever would be worse, and the
   * original stays readable in the source topic at the offset the headers give.
   */
  private async sendAlone(letter: DeadLetter): Promise<boolean> {
    const message = toMessage(letter);
    try {
      await this.producer.send({ topic: this.topic, compression: CompressionTypes.GZIP, messages: [message] });
      return true;
    } catch (error) {
      if (!isTooLarge(error)) throw error;
      const headers = { ...message.headers, 'x-dlq-value-omitted': `${letter.message.value?.length ?? 0} bytes` };
      await this.producer.send({ topic: this.topic, messages: [{ key: message.key, value: null, headers }] });
      return false;
    }
  }
}

function toMessage(letter: DeadLetter): Message {
  const { key, value, headers } = letter.message;
  const dlqHeaders: IHeaders = {
    ...headers,
    'x-dlq-reason': letter.reason,
    'x-dlq-source-topic': letter.topic,
    'x-dlq-source-partition': String(letter.partition),
    'x-dlq-source-offset': letter.message.offset,
  };
  return { key, value, headers: dlqHeaders };
}

function isTooLarge(error: unknown): boolean {
  for (let cause = error; cause instanceof Error; cause = cause.cause) {
    if (TOO_LARGE.has((cause as Error & { type?: string }).type ?? '')) return true;
  }
  return false;
}
