import { DomainError } from '../common/domain-error.js';

/** The keyId and keySecret presented for a token do not match a configured key. */
export class InvalidCredentialsError extends DomainError {
  readonly code = 'INVALID_CREDENTIALS';
  readonly retryable = false;

  constructor() {
    super('Invalid keyId or keySecret');
  }
}
