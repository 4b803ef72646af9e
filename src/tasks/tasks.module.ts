import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { ProjectionModule } from '../projection/projection.module.js';
import { TaskReadRoute } from './task-read.route.js';
import { TasksService } from './tasks.service.js';

/**
 * The read API. Its one route is not a Nest controller: `TaskReadRoute` is mounted in front of
 * Express by app.factory.ts, and uses the auth module's verifier and the app's error mapping.
 */
@Module({
  imports: [ProjectionModule, AuthModule],
  providers: [TasksService, TaskReadRoute],
  exports: [TaskReadRoute],
})
export class TasksModule {}
