import { INestApplication } from '@nestjs/common';
import { createApp } from '../../src/app.factory.js';
import { AppConfig } from '../../src/config/app-config.js';
import { IngestState } from '../../src/kafka/ingest-state.js';
import { CapturedLogs } from './captured-logs.js';
import { eventually } from './eventually.js';

/** The app in this process, logging into `logs`, once its consumer has joined its group. */
export async function startIngestingApp(config: AppConfig, logs: CapturedLogs): Promise<INestApplication> {
  const app = await createApp(config);
  app.useLogger(logs);
  await app.init();
  await untilConsuming(app);
  return app;
}

/**
 * Resolves once the app's Kafka consumer has provisioned its topics and joined its group; fails at
 * once, with the reason, if the consumer stopped on an error that will not pass.
 */
export async function untilConsuming(app: INestApplication): Promise<void> {
  const state = app.get(IngestState);
  await eventually('the Kafka consumer to join its group', () => {
    const { phase, error } = state.snapshot();
    if (phase === 'failed') throw new Error(`the Kafka consumer failed: ${error}`);
    return phase === 'consuming';
  });
}
