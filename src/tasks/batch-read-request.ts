import { isValidTaskId, TASK_ID_RULE } from '../projection/task-id.js';
import { InvalidBatchReadError } from './invalid-batch-read.error.js';

/** The most taskIds one batch read may name, duplicates included. */
export const MAX_BATCH_READ_IDS = 1000;

/**
 * The most bytes of task values one batch read answers with (the ids and punctuation around them
 * come on top: under 140 KB for 1,000 ids of 128 characters). Tasks past it are answered as
 * `unprocessed`, to be asked for again. A value is at most 1 MiB (MAX_VALUE_BYTES), so the first
 * task found always fits; the budget bounds what one request holds in Redis's output buffer and in
 * the service, whatever the tasks' sizes.
 */
export const BATCH_READ_ANSWER_BUDGET_BYTES = 16 * 1024 * 1024;

/**
 * The largest batch read body accepted. The largest compact one (1,000 ids of 128 characters) is
 * about 131,000 bytes; twice that leaves room for whitespace.
 */
export const BATCH_READ_BODY_LIMIT_BYTES = 256 * 1024;

/**
 * The taskIds of a batch read body `{ "taskIds": [...] }`, each once, in the order of its first
 * occurrence. Other fields are ignored. An empty list is valid (and reads nothing). Throws
 * `InvalidBatchReadError` naming the first problem: a body that is not an object, `taskIds`
 * missing or not an array, more than MAX_BATCH_READ_IDS of them, or an element (by its index)
 * that is not a string or not a valid taskId.
 */
export function batchReadTaskIds(body: unknown): string[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InvalidBatchReadError('The body must be a JSON object: {"taskIds": [...]}');
  }
  // Own property only: a body's "__proto__" or "constructor" field is never mistaken for taskIds.
  const taskIds: unknown = Object.hasOwn(body, 'taskIds') ? (body as Record<string, unknown>).taskIds : undefined;
  if (!Array.isArray(taskIds)) throw new InvalidBatchReadError('taskIds must be an array of taskIds');
  if (taskIds.length > MAX_BATCH_READ_IDS) {
    throw new InvalidBatchReadError(`taskIds holds ${taskIds.length} ids; at most ${MAX_BATCH_READ_IDS} per request`);
  }
  const unique = new Set<string>();
  for (let index = 0; index < taskIds.length; index++) {
    const taskId: unknown = taskIds[index];
    if (typeof taskId !== 'string') throw new InvalidBatchReadError(`taskIds[${index}] must be a string`);
    if (!isValidTaskId(taskId)) throw new InvalidBatchReadError(`taskIds[${index}] is not a valid taskId: expected ${TASK_ID_RULE}`);
    unique.add(taskId);
  }
  return [...unique];
}
