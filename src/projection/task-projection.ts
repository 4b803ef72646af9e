import { StoredTask } from './stored-task.js';
import { TaskEvent } from './task-event.js';

/** A task of a batch read left out because the answer's byte budget was spent: to be asked for again. */
export const UNPROCESSED = Symbol('unprocessed');

/** A task of a batch read: the stored task, null when it is not there, or `UNPROCESSED`. */
export type BatchReadTask = StoredTask | null | typeof UNPROCESSED;

export interface ApplyResult {
  /** Events that changed the projection (per generation written). */
  readonly applied: number;
  /** Events that were older than what was stored, or superseded within the batch. */
  readonly stale: number;
  /** Applied events of finished tasks, written with an expiry (retention on). */
  readonly retained: number;
  /** Applied events of finished tasks already past their retention: not written, only their version kept. */
  readonly expiredOnArrival: number;
  /**
   * The tasks now at a version of this batch, each once (any generation written): those it changed,
   * and those an earlier attempt at it (or an earlier delivery of it) had changed, whose change may
   * not have been announced.
   */
  readonly changed: readonly string[];
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
   * The stored tasks of `taskIds` (each once), in their order, all read from the same generation:
   * null where one was never seen, was deleted or expired, and `UNPROCESSED` where its value did
   * not fit the answer's budget. The values answered add up to at most `budgetBytes`, except that
   * the first task found is always answered (so that asking again for the unprocessed ids always
   * makes progress). One round trip when every value is at most its share of the budget
   * (`budgetBytes / taskIds.length`), two otherwise.
   */
  abstract getMany(taskIds: readonly string[], budgetBytes: number): Promise<BatchReadTask[]>;
}
