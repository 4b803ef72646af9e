import { Injectable } from '@nestjs/common';
import { TaskCacheMetrics } from '../metrics/task-cache-metrics.js';
import { StoredTask } from '../projection/stored-task.js';
import { TaskProjection } from '../projection/task-projection.js';
import { InvalidTaskIdError } from './invalid-task-id.error.js';
import { isValidTaskId } from '../projection/task-id.js';
import { batchReadBody } from './batch-read-body.js';
import { BATCH_READ_ANSWER_BUDGET_BYTES, batchReadTaskIds } from './batch-read-request.js';
import { UNPROCESSED } from '../projection/task-projection.js';
import { TaskNotFoundError } from './task-not-found.error.js';

/** Reads tasks from the projection, one or a batch per Redis round trip, the stored bytes untouched. */
@Injectable()
export class TasksService {
  constructor(
    private readonly projection: TaskProjection,
    private readonly metrics: TaskCacheMetrics,
  ) {}

  /** Throws `InvalidTaskIdError`, `TaskNotFoundError`, or `ProjectionUnavailableError` (retryable). */
  async getTask(taskId: string): Promise<StoredTask> {
    if (!isValidTaskId(taskId)) throw new InvalidTaskIdError();
    const task = await this.projection.get(taskId);
    if (task === null) throw new TaskNotFoundError(taskId);
    return task;
  }

  /**
   * The answer to a batch read body `{ "taskIds": [...] }`: the stored tasks found, the ids
   * missing, and those left for the client to ask again because the answer's budget
   * (BATCH_READ_ANSWER_BUDGET_BYTES) was spent (`batchReadBody`); one round trip, two when some
   * tasks are large. Throws `InvalidBatchReadError`, or `ProjectionUnavailableError` (retryable).
   */
  async readBatch(body: unknown): Promise<Buffer> {
    const taskIds = batchReadTaskIds(body);
    this.metrics.batchReadSize.observe(taskIds.length);
    const tasks = await this.projection.getMany(taskIds, BATCH_READ_ANSWER_BUDGET_BYTES);
    const unprocessed = tasks.filter((task) => task === UNPROCESSED).length;
    if (unprocessed > 0) this.metrics.batchReadUnprocessed.inc(unprocessed);
    return batchReadBody(taskIds, tasks);
  }
}
