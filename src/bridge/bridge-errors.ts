import { DomainError } from '../common/domain-error.js';

/** A webhook without the shared header, or with another value. */
export class WebhookUnauthorizedError extends DomainError {
  readonly code = 'WEBHOOK_UNAUTHORIZED';
  readonly retryable = false;

  constructor(header: string) {
    super(`the webhook's ${header} header is missing or wrong`);
  }
}

/** A webhook body that is not a notification: not an object, or without a valid id. */
export class InvalidNotificationError extends DomainError {
  readonly code = 'INVALID_NOTIFICATION';
  readonly retryable = false;
}

/** BRIDGE_QUEUE_LIMIT tasks already wait for a re-read: the notification may be sent again later. */
export class BridgeBusyError extends DomainError {
  readonly code = 'BRIDGE_BUSY';
  readonly retryable = true;

  constructor(limit: number) {
    super(`the bridge already has ${limit} tasks to re-read`);
  }
}

/** A notification was not done within BRIDGE_ANSWER_TIMEOUT_MS; the bridge goes on with it. */
export class BridgeAnswerTimeoutError extends DomainError {
  readonly code = 'BRIDGE_TIMEOUT';
  readonly retryable = true;

  constructor(what: string, timeoutMs: number) {
    super(`${what} was not done within ${timeoutMs} ms; the bridge goes on with it`);
  }
}

/** Kafka refused or could not take the task the bridge re-read, or the bridge failed otherwise. Retryable. */
export class BridgeUnavailableError extends DomainError {
  readonly code = 'BRIDGE_UNAVAILABLE';
  readonly retryable = true;
}
