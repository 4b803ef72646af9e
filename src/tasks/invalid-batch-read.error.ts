import { DomainError } from '../common/domain-error.js';

/** A batch read body outside the contract. The message names what is wrong, never a value sent. */
export class InvalidBatchReadError extends DomainError {
  readonly code = 'INVALID_BATCH_READ';
  readonly retryable = false;
}
