import { DomainError } from '../common/domain-error.js';

/** The projection's store cannot be reached. Retryable: nothing is wrong with the request or event. */
export class ProjectionUnavailableError extends DomainError {
  readonly code = 'PROJECTION_UNAVAILABLE';
  readonly retryable = true;

  constructor(cause: unknown) {
    super(`projection store unavailable: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}
