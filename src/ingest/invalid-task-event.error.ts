import { DomainError, DomainErrorCode } from '../common/domain-error.js';

/** Why an event cannot be projected. Stable: it starts the `x-dlq-reason` header of its dead letter. */
export type InvalidTaskEventCode = Extract<
  DomainErrorCode,
  | 'VALUE_TOO_LARGE'
  | 'INVALID_JSON'
  | 'NOT_AN_OBJECT'
  | 'INVALID_FIELDS'
  | 'KEY_MISMATCH'
  | 'MISSING_KEY'
  | 'INVALID_KEY'
  /** The decoder itself failed on this event: a defect, logged with its stack. */
  | 'UNDECODABLE'
  /**
   * A whole record batch could not be read (it would decompress beyond the limit, or its compressed
   * data is corrupt): one dead letter, at the batch's last offset, stands for all its records.
   */
  | 'BATCH_UNREADABLE'
>;

/**
 * An event that breaks the event contract. Not retryable: the same bytes fail the same way, so the
 * event goes to the dead-letter topic and the stream moves on. Messages name fields and rules,
 * never values, because values are task data.
 */
export class InvalidTaskEventError extends DomainError {
  readonly retryable = false;

  constructor(
    readonly code: InvalidTaskEventCode,
    detail: string,
  ) {
    super(`${code}: ${detail}`);
  }
}
