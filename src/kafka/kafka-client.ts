import { Injectable, Logger } from '@nestjs/common';
import kafkajs, { type Kafka } from 'kafkajs';
import { KafkaConfig } from '../config/app-config.js';
import { registerCompressionCodecs } from './compression-codecs.js';
import { kafkaLogCreator } from './kafka-log.js';
import { hardenKafkajsHeaderDecoding } from './kafkajs-hardening.js';

const { logLevel } = kafkajs;

/**
 * The service's kafkajs client, with every compression codec registered, header decoding made
 * linear, and logs routed to Nest (connection errors throttled while a broker is unreachable).
 */
@Injectable()
export class KafkaClient {
  readonly kafka: Kafka;

  constructor(config: KafkaConfig) {
    registerCompressionCodecs();
    hardenKafkajsHeaderDecoding();
    this.kafka = new kafkajs.Kafka({
      clientId: config.clientId,
      brokers: config.brokers,
      connectionTimeout: 3000,
      requestTimeout: 30000,
      retry: { initialRetryTime: 300, maxRetryTime: 5000, retries: 8 },
      logLevel: logLevel.WARN,
      logCreator: kafkaLogCreator(new Logger('Kafka')),
    });
  }
}
