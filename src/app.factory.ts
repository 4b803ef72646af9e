import { Server } from 'node:http';
import { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import { Logger } from 'nestjs-pino';
import type { DestinationStream } from 'pino';
import { AppModule } from './app.module.js';
import { AppConfig } from './config/app-config.js';
import { sendClientErrorResponse } from './http/client-error-response.js';
import { applyConnectionTimeouts } from './http/connection-timeouts.js';
import { ErrorResponseFilter } from './http/error-response.filter.js';
import { mountInFront } from './http/front-route.js';
import { DrainState } from './lifecycle/drain-state.js';
import { serveApiDocs } from './openapi/api-document.js';
import { logDestination } from './logging/pino-settings.js';
import { TaskReadRoute } from './tasks/task-read.route.js';

/**
 * Builds the application exactly as it runs in production. main.ts and the e2e tests both use it,
 * so the tests exercise the real wiring. No global body parser: only POST /api/token reads a body.
 * The task read route is mounted in front of Express (why: src/http/front-route.ts).
 * It logs to stdout in LOG_FORMAT; a test may give another destination.
 */
export async function createApp(config: AppConfig, { logTo = logDestination(config.log, 1) }: { logTo?: DestinationStream } = {}): Promise<INestApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config, logTo), {
    bodyParser: false,
    // A provider that refuses the config rejects createApp (main.ts reports it and exits 1)
    // instead of Nest aborting the process with a core dump.
    abortOnError: false,
    // Nest's own lines while the app is built wait for the pino logger, so they are JSON too.
    bufferLogs: true,
  });
  app.useLogger(app.get(Logger));
  app.disable('x-powered-by');
  app.useGlobalFilters(new ErrorResponseFilter());
  serveApiDocs(app);
  const server = app.getHttpServer() as Server;
  mountInFront(server, app.get(TaskReadRoute), app.get(DrainState));
  applyConnectionTimeouts(server, config.http);
  // What Node's HTTP parser refuses never reaches a route; it is answered as JSON too.
  server.on('clientError', sendClientErrorResponse);
  return app;
}
