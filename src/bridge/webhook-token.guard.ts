import { timingSafeEqual } from 'node:crypto';
import { IncomingMessage } from 'node:http';
import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { secretDigest } from '../auth/secret-digest.js';
import { BridgeConfig } from '../config/app-config.js';
import { TaskCacheMetrics } from '../metrics/task-cache-metrics.js';
import { WebhookUnauthorizedError } from './bridge-errors.js';

/**
 * Conductor's webhooks carry one shared header (its `header-prefer` / `header-prefer-value`), not
 * a token of the read API's: a notification without it, or with another value, is refused (401)
 * before its body is read. Compared in constant time.
 */
@Injectable()
export class WebhookTokenGuard implements CanActivate {
  private readonly expected: Buffer;

  constructor(
    private readonly config: BridgeConfig,
    private readonly metrics: TaskCacheMetrics,
  ) {
    this.expected = secretDigest(config.webhookToken);
  }

  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<IncomingMessage>();
    const value = req.headers[this.config.webhookHeader];
    if (typeof value === 'string' && timingSafeEqual(secretDigest(value), this.expected)) return true;
    this.metrics.bridgeNotifications.inc({ kind: req.url?.endsWith('/workflow') ? 'workflow' : 'task', outcome: 'unauthorized' });
    throw new WebhookUnauthorizedError(this.config.webhookHeader);
  }
}
