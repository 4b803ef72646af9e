import { INestApplication } from '@nestjs/common';
import { createApp } from '../../src/app.factory.js';
import { AppConfig } from '../../src/config/app-config.js';
import { TopicProvisioner } from '../../src/kafka/topic-provisioner.js';
import { CapturedLogs } from './captured-logs.js';

/** The app in this process, logging into `logs`, once its topics exist (so ingest is starting). */
export async function startIngestingApp(config: AppConfig, logs: CapturedLogs): Promise<INestApplication> {
  const app = await createApp(config);
  app.useLogger(logs);
  await app.init();
  await app.get(TopicProvisioner).ready;
  return app;
}
