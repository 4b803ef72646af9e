import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createApp } from './app.factory.js';
import { ConfigError } from './config/config-error.js';
import { loadConfig } from './config/load-config.js';

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
  const logger = new Logger('Bootstrap');
  // Not app.enableShutdownHooks(): Nest re-raises the signal after closing, so the process would
  // end by SIGTERM (143). Here app.close() runs the same shutdown hooks (ingest finishes its
  // batch and commits, connections close), within a bound, and a clean stop exits 0.
  let shuttingDown = false;
  const shutdown = (signal: NodeJS.Signals) => {
    // A second signal (Ctrl-C reaches the whole process group, then a wrapper's SIGTERM) must not
    // start a second close.
    if (shuttingDown) return;
    shuttingDown = true;
    logger.log(`${signal} received; shutting down`);
    setTimeout(() => {
      logger.error(`shutdown did not finish within ${config.lifecycle.shutdownTimeoutMs} ms; exiting`);
      process.exit(1);
    }, config.lifecycle.shutdownTimeoutMs).unref();
    app.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error(`shutdown failed: ${error instanceof Error ? error.message : String(error)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);

  await app.listen(config.http.port);
  logger.log(`task-cache listening on port ${config.http.port}`);
}

// Top level: the catch below reports a failed start and exits; nothing is left to await.
void bootstrap().catch((error: unknown) => {
  process.stderr.write(`task-cache: failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
