import { MiddlewareConsumer, Module, NestModule, RequestMethod } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { TaskChangeSubscriber } from '../changes/task-change-subscriber.js';
import { ProjectionModule } from '../projection/projection.module.js';
import { BatchReadMetricsMiddleware } from './batch-read-metrics.middleware.js';
import { BatchReadController } from './batch-read.controller.js';
import { TaskReadRoute } from './task-read.route.js';
import { TaskWatchers } from './task-watchers.js';
import { TasksService } from './tasks.service.js';

/**
 * The read API. The single read is not a Nest controller but a front route, `TaskReadRoute`, which
 * app.factory.ts mounts (why: src/http/front-route.ts); the batch read, `BatchReadController`, is.
 * Watches (`Prefer: wait`) are held by `TaskWatchers`, told of changes by `TaskChangeSubscriber`.
 */
@Module({
  imports: [ProjectionModule, AuthModule],
  controllers: [BatchReadController],
  providers: [TasksService, TaskReadRoute, TaskWatchers, TaskChangeSubscriber],
  exports: [TaskReadRoute, TaskWatchers],
})
export class TasksModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(BatchReadMetricsMiddleware).forRoutes({ path: 'api/tasks/batch', method: RequestMethod.POST });
  }
}
