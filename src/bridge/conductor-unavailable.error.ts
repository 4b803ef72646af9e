import { DomainError } from '../common/domain-error.js';

/** Conductor could not be read (unreachable, timed out, or an unexpected answer). Retryable. */
export class ConductorUnavailableError extends DomainError {
  readonly code = 'CONDUCTOR_UNAVAILABLE';
  readonly retryable = true;
}
