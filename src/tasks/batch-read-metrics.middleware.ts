import { IncomingMessage, ServerResponse } from 'node:http';
import { Injectable, NestMiddleware } from '@nestjs/common';
import { TaskCacheMetrics } from '../metrics/task-cache-metrics.js';

/**
 * Times each batch read by the status it is answered, whatever answers it: middleware runs before
 * the token guard and the body is read, so 401, 413, 415 and 400 are observed with 200 and 503. A
 * request whose client goes before its response is written is not observed.
 */
@Injectable()
export class BatchReadMetricsMiddleware implements NestMiddleware {
  constructor(private readonly metrics: TaskCacheMetrics) {}

  use(_req: IncomingMessage, res: ServerResponse, next: () => void): void {
    const started = performance.now();
    res.once('finish', () => this.metrics.batchReadDuration.observe({ status: String(res.statusCode) }, (performance.now() - started) / 1000));
    next();
  }
}
