import { StoredTask } from '../projection/stored-task.js';

const TASKS_OPEN = Buffer.from('{"tasks":{');
const COMMA = Buffer.from(',');

/**
 * The body of a batch read: `{"tasks":{"<taskId>":<task>,...},"missing":["<taskId>",...]}`.
 * Each found task's stored bytes are spliced in as they are (ingest stores only valid JSON
 * objects), never parsed; keys and the missing ids are JSON strings. Both keep the order of
 * `taskIds`, whose ids are each once. `tasks[i]` is the task of `taskIds[i]`, or null.
 */
export function batchReadBody(taskIds: readonly string[], tasks: readonly (StoredTask | null)[]): Buffer {
  const parts: Buffer[] = [TASKS_OPEN];
  const missing: string[] = [];
  for (let i = 0; i < taskIds.length; i++) {
    const task = tasks[i];
    if (task === null) {
      missing.push(taskIds[i]);
      continue;
    }
    if (parts.length > 1) parts.push(COMMA);
    parts.push(Buffer.from(`${JSON.stringify(taskIds[i])}:`), task.value);
  }
  parts.push(Buffer.from(`},"missing":${JSON.stringify(missing)}}`));
  return Buffer.concat(parts);
}
