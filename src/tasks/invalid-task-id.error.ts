import { DomainError } from '../common/domain-error.js';

/** A taskId outside the contract. The id is not echoed: it may be anything, of any length. */
export class InvalidTaskIdError extends DomainError {
  readonly code = 'INVALID_TASK_ID';
  readonly retryable = false;

  constructor() {
    super('Invalid taskId: expected 1 to 128 characters of A-Z a-z 0-9 _ . : -');
  }
}
