import 'reflect-metadata';
import { Server } from 'node:http';
import { Logger } from '@nestjs/common';
import { createApp } from './app.factory.js';
import { ConfigError } from './config/config-error.js';
import { loadConfig } from './config/load-config.js';
import { closeHttpServer } from './http/close-http-server.js';
import { DrainState } from './lifecycle/drain-state.js';
import { GracefulShutdown } from './lifecycle/graceful-shutdown.js';

/** Whether the pino logger is the application's logger yet: before that, a failure is written to stderr as plain text. */
let logging = false;

async function bootstrap(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`task-cache: ${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }

  const app = await createApp(config);
  logging = true;
  const server = app.getHttpServer() as Server;
  const drain = app.get(DrainState);
  // Not app.enableShutdownHooks(): Nest would close at once, and re-raise the signal after closing,
  // so the process would end by SIGTERM (143). GracefulShutdown drains first (for load balancers),
  // then app.close() runs the same shutdown hooks (ingest finishes its batch and commits,
  // connections close), all within a bound, and a clean stop exits 0. The log is written
  // synchronously (src/logging/pino-settings.ts), so exiting loses none of its lines.
  const shutdown = new GracefulShutdown(
    {
      beginDrain: () => drain.begin(),
      closeHttp: (graceMs) => closeHttpServer(server, graceMs),
      closeApp: () => app.close(),
    },
    config.lifecycle,
    (code) => process.exit(code),
  );
  // A second signal (Ctrl-C reaches the whole process group, then a wrapper's SIGTERM) is ignored.
  process.on('SIGTERM', (signal) => shutdown.onSignal(signal));
  process.on('SIGINT', (signal) => shutdown.onSignal(signal));

  await app.listen(config.http.port);
  new Logger('Bootstrap').log(`task-cache listening on port ${config.http.port}`);
}

// Top level: the catch below reports a failed start and exits; nothing is left to await.
void bootstrap().catch((error: unknown) => {
  const message = `failed to start: ${error instanceof Error ? error.message : String(error)}`;
  if (logging) new Logger('Bootstrap').fatal({ err: error }, message);
  else process.stderr.write(`task-cache: ${message}\n`);
  process.exit(1);
});
