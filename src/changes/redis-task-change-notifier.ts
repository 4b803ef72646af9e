import { Injectable, Logger } from '@nestjs/common';
import { LogThrottle } from '../common/log-throttle.js';
import { RedisConfig } from '../config/app-config.js';
import { TaskCacheMetrics } from '../metrics/task-cache-metrics.js';
import { RedisConnection } from '../redis/redis-connection.js';
import { byChangeChannel, changeChannels, encodeChanges } from './task-change-channels.js';
import { TaskChangeNotifier } from './task-change-notifier.js';

/** While publishing keeps failing, say so at most this often. */
const FAILURE_LOG_INTERVAL_MS = 10_000;

/**
 * Publishes changed taskIds with SPUBLISH, one message per channel touched (at most
 * CHANGE_CHANNEL_COUNT per applied slice), on the service's own connection: auto-pipelined, so a
 * slice's messages go out in one write per master. Sharded pub/sub on a standalone Redis too, so
 * that both run the same code. Not awaited by ingest: a failure is counted and logged, and costs a
 * watcher at most its wait (it re-reads when the wait ends).
 */
@Injectable()
export class RedisTaskChangeNotifier extends TaskChangeNotifier {
  private readonly logger = new Logger('TaskChanges');
  private readonly channels: string[];
  private readonly failureLog = new LogThrottle(FAILURE_LOG_INTERVAL_MS);

  constructor(
    private readonly redis: RedisConnection,
    config: RedisConfig,
    private readonly metrics: TaskCacheMetrics,
  ) {
    super();
    this.channels = changeChannels(config.keyPrefix);
  }

  notify(taskIds: readonly string[]): void {
    if (taskIds.length === 0) return;
    const client = this.redis.client;
    for (const [channel, ids] of byChangeChannel(taskIds)) {
      client.spublish(this.channels[channel], encodeChanges(ids)).then(
        () => this.metrics.taskChangesPublished.inc(ids.length),
        (error: Error) => {
          this.metrics.taskChangePublishFailures.inc(ids.length);
          if (this.failureLog.take()) this.logger.warn(`cannot publish task changes (held watchers see them when their wait ends): ${error.message}`);
        },
      );
    }
  }
}
