import { DynamicModule, Module } from '@nestjs/common';
import { AppConfig } from './config/app-config.js';
import { ConfigModule } from './config/config.module.js';
import { AuthModule } from './auth/auth.module.js';
import { HealthModule } from './health/health.module.js';
import { IngestModule } from './ingest/ingest.module.js';
import { KafkaModule } from './kafka/kafka.module.js';
import { LifecycleModule } from './lifecycle/lifecycle.module.js';
import { MetricsServerModule } from './metrics/metrics-server.module.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { ProjectionModule } from './projection/projection.module.js';
import { RedisModule } from './redis/redis.module.js';
import { TasksModule } from './tasks/tasks.module.js';

@Module({})
export class AppModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
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
      ],
    };
  }
}
