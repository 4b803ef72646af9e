import { StoredTask } from './stored-task.js';
import { TaskEvent } from './task-event.js';

export interface ApplyResult {
  /** Events that changed the projection (per generation written). */
  readonly applied: number;
  /** Events that were older than what was stored, or superseded within the batch. */
  readonly stale: number;
  /** Applied events of finished tasks, written with an expiry (retention on). */
  readonly retained: number;
  /** Applied events of finished tasks already past their retention: not written, only their version kept. */
  readonly expiredOnArrival: number;
}

/**
 * The read model: "the latest event of every task". Ingest writes it, the read API reads it.
 * Implementations throw `ProjectionUnavailableError` when their store cannot be reached.
 */
export abstract class TaskProjection {
  /**
   * Applies a batch of events in one round trip. Idempotent and order-insensitive per task:
   * each event is applied only if it is newer than the stored version.
   */
  abstract applyBatch(events: readonly TaskEvent[]): Promise<ApplyResult>;

  /** The stored task, or null when it was never seen or was deleted. */
  abstract get(taskId: string): Promise<StoredTask | null>;

  /**
   * The stored tasks of `taskIds`, in their order (null where one was never seen or was deleted),
   * in one round trip, all read from the same generation.
   */
  abstract getMany(taskIds: readonly string[]): Promise<(StoredTask | null)[]>;
}
