import { Injectable } from '@nestjs/common';
import { StoredTask } from '../projection/stored-task.js';
import { TaskProjection } from '../projection/task-projection.js';
import { InvalidTaskIdError } from './invalid-task-id.error.js';
import { isValidTaskId } from '../projection/task-id.js';
import { TaskNotFoundError } from './task-not-found.error.js';

/** Reads one task from the projection: one Redis round trip, the stored bytes untouched. */
@Injectable()
export class TasksService {
  constructor(private readonly projection: TaskProjection) {}

  /** Throws `InvalidTaskIdError`, `TaskNotFoundError`, or `ProjectionUnavailableError` (retryable). */
  async getTask(taskId: string): Promise<StoredTask> {
    if (!isValidTaskId(taskId)) throw new InvalidTaskIdError();
    const task = await this.projection.get(taskId);
    if (task === null) throw new TaskNotFoundError(taskId);
    return task;
  }
}
