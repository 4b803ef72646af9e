import { DynamicModule, Module } from '@nestjs/common';
import type { DestinationStream } from 'pino';
import { AppConfig } from './config/app-config.js';
import { ConfigModule } from './config/config.module.js';
import { AuthModule } from './auth/auth.module.js';
import { BridgeModule } from './bridge/bridge.module.js';
import { ConductorWebhookController } from './bridge/conductor-webhook.controller.js';
import { TokenController } from './auth/token.controller.js';
import { HealthController } from './health/health.controller.js';
import { HealthModule } from './health/health.module.js';
import { IngestModule } from './ingest/ingest.module.js';
import { KafkaModule } from './kafka/kafka.module.js';
import { LifecycleModule } from './lifecycle/lifecycle.module.js';
import { MetricsServerModule } from './metrics/metrics-server.module.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { loggerModule } from './logging/logger-module.js';
import { ProjectionModule } from './projection/projection.module.js';
import { RedisModule } from './redis/redis.module.js';
import { BatchReadController } from './tasks/batch-read.controller.js';
import { TasksModule } from './tasks/tasks.module.js';

@Module({})
export class AppModule {
  static forRoot(config: AppConfig, logDestination: DestinationStream): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        // Request ids on the lines of the routes Express serves (the read route is served in front of it).
        loggerModule(config.log, logDestination, [TokenController, HealthController, BatchReadController, ConductorWebhookController]),
        LifecycleModule,
        MetricsModule,
        RedisModule,
        KafkaModule,
        ProjectionModule,
        AuthModule,
        TasksModule,
        IngestModule,
        HealthModule,
        MetricsServerModule,
        // The Conductor bridge, with CONDUCTOR_URL only.
        ...(config.bridge ? [BridgeModule] : []),
      ],
    };
  }
}
