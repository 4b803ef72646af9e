import { DomainError } from '../common/domain-error.js';

/** No task with this id in the projection: never seen, deleted, or expired by retention. Conductor's wording. */
export class TaskNotFoundError extends DomainError {
  readonly code = 'TASK_NOT_FOUND';
  readonly retryable = false;

  constructor(readonly taskId: string) {
    super(`Task not found for taskId: ${taskId}`);
  }
}
