import { Module } from '@nestjs/common';
import { RedisTaskChangeNotifier } from '../changes/redis-task-change-notifier.js';
import { TaskChangeNotifier } from '../changes/task-change-notifier.js';
import { ProjectionModule } from '../projection/projection.module.js';
import { DeadLetterPublisher } from './dead-letter-publisher.js';
import { IngestService } from './ingest.service.js';
import { KafkaDeadLetterPublisher } from './kafka-dead-letter-publisher.js';
import { TaskEventConsumer } from './task-event-consumer.js';
import { TaskEventDecoder } from './task-event-decoder.js';

/** Task-update events from Kafka into the projection. Nothing imports this module. */
@Module({
  imports: [ProjectionModule],
  providers: [
    TaskEventDecoder,
    IngestService,
    TaskEventConsumer,
    { provide: DeadLetterPublisher, useClass: KafkaDeadLetterPublisher },
    { provide: TaskChangeNotifier, useClass: RedisTaskChangeNotifier },
  ],
})
export class IngestModule {}
