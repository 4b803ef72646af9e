import { DynamicModule, Module } from '@nestjs/common';
import type { DestinationStream } from 'pino';
import { AppConfig } from '../config/app-config.js';
import { ConfigModule } from '../config/config.module.js';
import { NoTaskChangeNotifier, TaskChangeNotifier } from '../changes/task-change-notifier.js';
import { DeadLetterPublisher } from '../ingest/dead-letter-publisher.js';
import { IngestService } from '../ingest/ingest.service.js';
import { KafkaDeadLetterPublisher } from '../ingest/kafka-dead-letter-publisher.js';
import { TaskEventDecoder } from '../ingest/task-event-decoder.js';
import { KafkaModule } from '../kafka/kafka.module.js';
import { TaskCacheMetrics } from '../metrics/task-cache-metrics.js';
import { loggerModule } from '../logging/logger-module.js';
import { GenerationSource } from '../projection/generation-source.js';
import { RedisTaskProjection } from '../projection/redis-task-projection.js';
import { TaskProjection } from '../projection/task-projection.js';
import { RedisModule } from '../redis/redis.module.js';
import { GenerationCleaner } from './generation-cleaner.js';
import { InstanceRegistry } from './instance-registry.js';
import { RebuildPointer } from './rebuild-pointer.js';
import { RebuildService } from './rebuild.service.js';
import { RebuildTarget } from './rebuild-target.js';
import { RedisMemory } from './redis-memory.js';
import { ReplayConsumer } from './replay-consumer.js';

/**
 * The rebuild command's application context (src/rebuild/main.ts): the service's own Redis, Kafka,
 * ingest and projection modules, with the projection writing the generation being built
 * (RebuildTarget) instead of following the pointer as an instance does. No HTTP, no live consumer.
 */
@Module({})
export class RebuildModule {
  static forRoot(config: AppConfig, logDestination: DestinationStream): DynamicModule {
    return {
      module: RebuildModule,
      imports: [ConfigModule.forRoot(config), loggerModule(config.log, logDestination), RedisModule, KafkaModule],
      providers: [
        RebuildTarget,
        { provide: GenerationSource, useExisting: RebuildTarget },
        { provide: TaskProjection, useClass: RedisTaskProjection },
        TaskEventDecoder,
        IngestService,
        { provide: DeadLetterPublisher, useClass: KafkaDeadLetterPublisher },
        // It writes a generation no instance serves yet: its flip, not its events, is what watches see.
        { provide: TaskChangeNotifier, useClass: NoTaskChangeNotifier },
        RebuildPointer,
        InstanceRegistry,
        GenerationCleaner,
        RedisMemory,
        ReplayConsumer,
        RebuildService,
        // Counted into a registry of its own, never served: the command serves nothing.
        { provide: TaskCacheMetrics, useValue: new TaskCacheMetrics({}) },
      ],
    };
  }
}
