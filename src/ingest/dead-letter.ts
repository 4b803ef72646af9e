import type { KafkaMessage } from 'kafkajs';

/** An event of the source topic that cannot be projected, with where it came from and why. */
export interface DeadLetter {
  readonly topic: string;
  readonly partition: number;
  /** The message as it was consumed: its key, value and headers are forwarded unchanged. */
  readonly message: KafkaMessage;
  readonly reason: string;
}
