import { Injectable, Logger } from '@nestjs/common';
import kafkajs, { type Admin, type Kafka } from 'kafkajs';
import { KafkaConfig } from '../config/app-config.js';
import { registerCompressionCodecs } from './compression-codecs.js';
import { kafkaLogCreator } from './kafka-log.js';
import { hardenKafkajsBatchDecoding, hardenKafkajsHeaderDecoding } from './kafkajs-hardening.js';

const { logLevel } = kafkajs;

// Before anything in the process can fetch: a fetch decoder kafkajs loaded before this would keep
// kafkajs's own batch decoding where the module cache cannot be changed (jest's).
hardenKafkajsBatchDecoding();

/**
 * The service's kafkajs clients, with every compression codec registered (each bounded), header
 * decoding made linear, each fetched batch read on its own, and logs routed to Nest (connection
 * errors throttled while a broker is unreachable).
 */
@Injectable()
export class KafkaClient {
  /** Retries each connection and request with kafkajs's backoff (about 24 s in all). */
  readonly kafka: Kafka;
  /**
   * Tries each connection and request once, for a caller that retries with a backoff of its own and
   * must be able to stop between attempts: kafkajs's connection retries go on after a disconnect.
   */
  readonly singleAttempt: Kafka;

  constructor(config: KafkaConfig) {
    registerCompressionCodecs();
    hardenKafkajsHeaderDecoding();
    const settings = {
      clientId: config.clientId,
      brokers: config.brokers,
      connectionTimeout: 3000,
      requestTimeout: 30000,
      logLevel: logLevel.WARN,
      logCreator: kafkaLogCreator(new Logger('Kafka')),
    };
    this.kafka = new kafkajs.Kafka({ ...settings, retry: { initialRetryTime: 300, maxRetryTime: 5000, retries: 8 } });
    this.singleAttempt = new kafkajs.Kafka({ ...settings, retry: { retries: 0 } });
  }

  /**
   * Runs `work` with a connected single-attempt admin client, and disconnects it after; `signal`
   * disconnects it at once, which ends the attempt under way.
   */
  async withAdmin<T>(signal: AbortSignal | undefined, work: (admin: Admin) => Promise<T>): Promise<T> {
    signal?.throwIfAborted();
    const admin = this.singleAttempt.admin();
    const onAbort = () => void admin.disconnect().catch(() => undefined);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await admin.connect();
      // Learns the brokers: a connected admin knows only the seed broker, and a group request
      // (fetchOffsets) on it finds "no brokers in the broker pool" when it may not retry.
      await admin.describeCluster();
      return await work(admin);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      await admin.disconnect().catch(() => undefined);
    }
  }
}
