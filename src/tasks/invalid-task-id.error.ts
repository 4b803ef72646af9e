import { DomainError } from '../common/domain-error.js';
import { TASK_ID_RULE } from '../projection/task-id.js';

/** A taskId outside the contract. The id is not echoed: it may be anything, of any length. */
export class InvalidTaskIdError extends DomainError {
  readonly code = 'INVALID_TASK_ID';
  readonly retryable = false;

  constructor() {
    super(`Invalid taskId: expected ${TASK_ID_RULE}`);
  }
}
