import { Injectable, Logger } from '@nestjs/common';
import kafkajs, { type Kafka, type LogEntry } from 'kafkajs';
import { AppConfig } from '../config/app-config.js';
import { registerCompressionCodecs } from './compression-codecs.js';
import { hardenKafkajsHeaderDecoding } from './kafkajs-hardening.js';

const { logLevel } = kafkajs;

const toNestLevel: Record<number, 'error' | 'warn' | 'log' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'log',
  [logLevel.DEBUG]: 'debug',
};

/**
 * The service's kafkajs client, with every compression codec registered, header decoding made
 * linear, and logs routed to Nest.
 */
@Injectable()
export class KafkaClient {
  readonly kafka: Kafka;

  constructor(config: AppConfig) {
    registerCompressionCodecs();
    hardenKafkajsHeaderDecoding();
    const logger = new Logger('Kafka');
    this.kafka = new kafkajs.Kafka({
      clientId: config.kafka.clientId,
      brokers: config.kafka.brokers,
      connectionTimeout: 3000,
      requestTimeout: 30000,
      retry: { initialRetryTime: 300, maxRetryTime: 5000, retries: 8 },
      logLevel: logLevel.WARN,
      logCreator:
        () =>
        ({ namespace, level, log }: LogEntry) => {
          const { message, timestamp: _timestamp, logger: _logger, ...extra } = log;
          const detail = Object.keys(extra).length > 0 ? ` ${JSON.stringify(extra)}` : '';
          logger[toNestLevel[level] ?? 'log'](`${namespace}: ${message}${detail}`);
        },
    });
  }
}
