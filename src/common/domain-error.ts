/**
 * Base of every error the core raises on purpose. `code` is stable (clients and logs may match on
 * it); `retryable` says whether the same request or event may succeed later unchanged. The core
 * never throws HTTP exceptions: the HTTP edge maps these in one place.
 */
export abstract class DomainError extends Error {
  abstract readonly code: string;
  abstract readonly retryable: boolean;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}
