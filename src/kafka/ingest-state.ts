import { Injectable } from '@nestjs/common';

/**
 * Where the Kafka consumer is in its start-up and retry path:
 *  - `starting`:  not yet tried;
 *  - `provisioning`: checking (and creating) the topics;
 *  - `joining`:   connected, joining the consumer group;
 *  - `consuming`: a member of the group, fetching;
 *  - `retrying`:  the last attempt failed with an error that may pass (Kafka unreachable, a
 *                 coordinator moving); the next attempt comes after a backoff;
 *  - `failed`:    the last attempt failed with an error that will not pass by waiting (a
 *                 replication factor above the broker count, an authorization failure); the
 *                 consumer has stopped retrying and `error` says why. It takes a restart with a
 *                 changed configuration or cluster.
 *  - `stopped`:   the service is shutting down.
 */
export type IngestPhase = 'starting' | 'provisioning' | 'joining' | 'consuming' | 'retrying' | 'failed' | 'stopped';

export interface IngestStateSnapshot {
  readonly phase: IngestPhase;
  /** When the consumer entered this phase (ISO 8601). */
  readonly since: string;
  /** The error that put it in `retrying` or `failed`. */
  readonly error?: string;
  /** The source topic's partitions this instance consumes, while `consuming`. */
  readonly partitions: readonly number[];
}

/**
 * The Kafka consumer's state, for whoever reports on the instance (health, metrics). Written only
 * by the consumer. Kafka being down or misconfigured does not stop reads: this is reported, not a
 * reason to refuse traffic.
 */
@Injectable()
export class IngestState {
  private state: IngestStateSnapshot = { phase: 'starting', since: new Date().toISOString(), partitions: [] };

  snapshot(): IngestStateSnapshot {
    return this.state;
  }

  enter(phase: IngestPhase, detail: { error?: string; partitions?: readonly number[] } = {}): void {
    const since = phase === this.state.phase ? this.state.since : new Date().toISOString();
    this.state = { phase, since, ...(detail.error !== undefined && { error: detail.error }), partitions: detail.partitions ?? [] };
  }
}
