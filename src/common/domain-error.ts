/**
 * Every code a DomainError may carry: the one list, which the error classes' codes must come from
 * and over which the HTTP edge's mapping is declared. Stable: clients, logs and dead letters
 * match on them.
 */
export type DomainErrorCode =
  // config
  | 'CONFIG_INVALID'
  // auth
  | 'TOKEN_MISSING'
  | 'TOKEN_INVALID'
  | 'TOKEN_EXPIRED'
  | 'INVALID_CREDENTIALS'
  // projection
  | 'PROJECTION_UNAVAILABLE'
  // tasks (reads)
  | 'TASK_NOT_FOUND'
  | 'INVALID_TASK_ID'
  | 'INVALID_BATCH_READ'
  | 'TOO_MANY_WATCHES'
  // the Conductor bridge (webhooks)
  | 'WEBHOOK_UNAUTHORIZED'
  | 'INVALID_NOTIFICATION'
  | 'BRIDGE_BUSY'
  | 'BRIDGE_TIMEOUT'
  | 'CONDUCTOR_UNAVAILABLE'
  | 'BRIDGE_UNAVAILABLE'
  // ingest (events; each starts the x-dlq-reason header of a dead letter)
  | 'VALUE_TOO_LARGE'
  | 'INVALID_JSON'
  | 'NOT_AN_OBJECT'
  | 'INVALID_FIELDS'
  | 'KEY_MISMATCH'
  | 'MISSING_KEY'
  | 'INVALID_KEY'
  | 'UNDECODABLE'
  | 'BATCH_UNREADABLE';

/**
 * Base of every error the core raises on purpose. `code` is stable (clients and logs may match on
 * it); `retryable` says whether the same request or event may succeed later unchanged. The core
 * never throws HTTP exceptions: the HTTP edge maps these in one place.
 */
export abstract class DomainError extends Error {
  abstract readonly code: DomainErrorCode;
  abstract readonly retryable: boolean;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}
