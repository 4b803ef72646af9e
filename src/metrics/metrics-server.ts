import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { HttpConfig, MetricsConfig } from '../config/app-config.js';
import { closeHttpServer } from '../http/close-http-server.js';
import { applyConnectionTimeouts } from '../http/connection-timeouts.js';
import { TaskCacheMetrics } from './task-cache-metrics.js';

/** A scrape in flight at shutdown gets this long to finish. */
const CLOSE_GRACE_MS = 1000;

/**
 * `GET /metrics` on METRICS_PORT: a listener of its own, apart from the public port, so that the
 * load balancer never exposes it and a read flood does not queue behind scrapes (or the other way
 * round). No auth: the port is meant for the scraper's network only. It starts with the
 * application (a port already taken stops the start) and stops with its shutdown hooks, which
 * run after the drain: a draining instance can still be scraped. Nothing else is served: other paths get 404, other methods 405.
 */
@Injectable()
export class MetricsServer implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('Metrics');
  private readonly server: Server;

  constructor(
    private readonly metrics: TaskCacheMetrics,
    private readonly config: MetricsConfig,
    http: HttpConfig,
  ) {
    this.server = createServer((req, res) => void this.answer(req, res));
    applyConnectionTimeouts(this.server, http);
  }

  async onModuleInit(): Promise<void> {
    if (this.config.port === undefined) return;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.config.port, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.logger.log(`metrics served at http://0.0.0.0:${this.port}/metrics`);
  }

  async onApplicationShutdown(): Promise<void> {
    await closeHttpServer(this.server, CLOSE_GRACE_MS);
  }

  /** The port it listens on (METRICS_PORT, or the one chosen for port 0), once listening. */
  get port(): number | undefined {
    return (this.server.address() as AddressInfo | null)?.port;
  }

  private async answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?', 1)[0];
    if (path !== '/metrics') return send(res, 404, 'Not found: metrics are served at /metrics\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'Method not allowed\n', { Allow: 'GET, HEAD' });
    try {
      const text = await this.metrics.exposition();
      send(res, 200, text, { 'Content-Type': this.metrics.contentType });
    } catch (error) {
      this.logger.error(`collecting metrics failed: ${(error as Error).message}`, (error as Error).stack);
      send(res, 500, 'Collecting metrics failed\n');
    }
  }
}

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  const bytes = Buffer.from(body);
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', ...headers, 'Content-Length': bytes.length });
  res.end(bytes);
}
