import { DomainError, DomainErrorCode } from '../common/domain-error.js';

export type UnauthenticatedCode = Extract<DomainErrorCode, 'TOKEN_MISSING' | 'TOKEN_INVALID' | 'TOKEN_EXPIRED'>;

const MESSAGES: Record<UnauthenticatedCode, string> = {
  TOKEN_MISSING: 'Missing token: send X-Authorization: <token> or Authorization: Bearer <token>',
  TOKEN_INVALID: 'Invalid token',
  TOKEN_EXPIRED: 'Token expired',
};

/**
 * The request carries no accepted token. The code says why; the message never repeats the token.
 * Not retryable as it is: the client needs another token (an expired JWT: a fresh one).
 */
export class UnauthenticatedError extends DomainError {
  readonly retryable = false;

  constructor(readonly code: UnauthenticatedCode) {
    super(MESSAGES[code]);
  }
}
