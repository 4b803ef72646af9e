import { Global, Module } from '@nestjs/common';
import { TaskCacheMetrics } from './task-cache-metrics.js';

/**
 * The metrics registry and its counters, for every module that counts something. Global, like the
 * configuration: the service and the rebuild command both import it. Serving them is
 * `MetricsServerModule`'s, the service's alone.
 */
@Global()
@Module({
  providers: [TaskCacheMetrics],
  exports: [TaskCacheMetrics],
})
export class MetricsModule {}
