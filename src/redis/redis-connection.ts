import { Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { Redis } from 'ioredis';
import { LogThrottle } from '../common/log-throttle.js';
import { RedisConfig } from '../config/app-config.js';

const MAX_RECONNECT_DELAY_MS = 2000;
const ERROR_LOG_INTERVAL_MS = 10_000;

/**
 * Owns the service's ioredis client. Auto-pipelining batches concurrent commands into one write;
 * the offline queue is off so that, while Redis is down, commands fail at once (reads answer 503,
 * ingest backs off) instead of queueing until a client times out.
 */
@Injectable()
export class RedisConnection implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(RedisConnection.name);
  readonly client: Redis;
  private wasReady = false;
  private readonly errorLog = new LogThrottle(ERROR_LOG_INTERVAL_MS);

  constructor(config: RedisConfig) {
    this.client = new Redis(config.url, {
      lazyConnect: true,
      enableAutoPipelining: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: config.commandTimeoutMs,
      connectTimeout: Math.max(config.commandTimeoutMs, 1000),
      retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 10), MAX_RECONNECT_DELAY_MS),
      connectionName: 'task-cache',
    });
    this.client.on('ready', () => {
      if (this.wasReady) this.logger.log('redis connection restored');
      this.wasReady = true;
    });
    this.client.on('error', (error: Error) => {
      // Reconnect attempts fail every few hundred ms during an outage: say so, but not each time.
      if (this.errorLog.take()) this.logger.warn(`redis unreachable, reconnecting: ${error.message}`);
    });
    this.client.on('end', () => this.logger.debug('redis connection closed'));
  }

  async onModuleInit(): Promise<void> {
    // Boot does not wait for Redis: the client keeps reconnecting, reads answer 503 meanwhile
    // and ingest holds its offsets until the first batch can be applied.
    await this.client.connect().catch((error: Error) => this.logger.warn(`redis not reachable at boot: ${error.message}`));
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.client.status === 'end') return;
    await this.client.quit().catch(() => this.client.disconnect());
  }
}
