import { DomainError } from '../common/domain-error.js';

/** The instance already holds WATCH_MAX_HELD watches. Retryable: another instance, or later, may take it. */
export class TooManyWatchesError extends DomainError {
  readonly code = 'TOO_MANY_WATCHES';
  readonly retryable = true;

  constructor(limit: number) {
    super(`this instance already holds its limit of ${limit} watches`);
  }
}
