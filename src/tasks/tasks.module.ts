import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { ProjectionModule } from '../projection/projection.module.js';
import { TaskReadRoute } from './task-read.route.js';
import { TasksService } from './tasks.service.js';

/**
 * The read API. Its one route is not a Nest controller but a front route, `TaskReadRoute`, which
 * app.factory.ts mounts (why: src/http/front-route.ts).
 */
@Module({
  imports: [ProjectionModule, AuthModule],
  providers: [TasksService, TaskReadRoute],
  exports: [TaskReadRoute],
})
export class TasksModule {}
