import { Module } from '@nestjs/common';
import { GenerationSource } from './generation-source.js';
import { ProjectionGenerations } from './projection-generations.js';
import { RedisTaskProjection } from './redis-task-projection.js';
import { TaskProjection } from './task-projection.js';

@Module({
  providers: [
    ProjectionGenerations,
    { provide: GenerationSource, useExisting: ProjectionGenerations },
    { provide: TaskProjection, useClass: RedisTaskProjection },
  ],
  exports: [TaskProjection, ProjectionGenerations],
})
export class ProjectionModule {}
