import { DeadLetter } from './dead-letter.js';

/**
 * Where events that break the contract go, so that they never stall the stream and are never
 * dropped silently. Ingest commits an offset only after `publish` has resolved for every invalid
 * event below it.
 */
export abstract class DeadLetterPublisher {
  /**
   * Publishes the dead letters, each with its original key, value and headers plus the
   * `x-dlq-*` headers, and logs each once. Resolves when all are stored; rejects (retryable)
   * when the dead-letter topic cannot be reached, in which case none is logged. Calls `heartbeat`
   * between requests when it needs several, so a long publish keeps the consumer in its group.
   */
  abstract publish(letters: readonly DeadLetter[], heartbeat?: () => Promise<void>): Promise<void>;
}
