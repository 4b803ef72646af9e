import { Module } from '@nestjs/common';
import { ProjectionModule } from '../projection/projection.module.js';
import { ConductorClient } from './conductor-client.js';
import { ConductorWebhookController } from './conductor-webhook.controller.js';
import { KafkaTaskRecordProducer, TaskRecordProducer } from './task-record-producer.js';
import { TaskRereader } from './task-rereader.js';
import { WebhookTokenGuard } from './webhook-token.guard.js';
import { WorkflowReconciler } from './workflow-reconciler.js';

/**
 * The bridge from a stock Conductor server (on with CONDUCTOR_URL; app.module.ts leaves it out
 * otherwise): Conductor's webhooks in, its own task JSON re-read and produced to the source topic,
 * which ingest then applies like any other producer's events.
 */
@Module({
  imports: [ProjectionModule],
  controllers: [ConductorWebhookController],
  providers: [ConductorClient, TaskRereader, WorkflowReconciler, WebhookTokenGuard, { provide: TaskRecordProducer, useClass: KafkaTaskRecordProducer }],
})
export class BridgeModule {}
