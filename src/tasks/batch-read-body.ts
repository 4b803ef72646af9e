import { BatchReadTask, UNPROCESSED } from '../projection/task-projection.js';

const TASKS_OPEN = Buffer.from('{"tasks":{');
const COMMA = Buffer.from(',');

/**
 * The body of a batch read:
 * `{"tasks":{"<taskId>":<task>,...},"missing":["<taskId>",...],"unprocessed":["<taskId>",...]}`.
 * Each found task's stored bytes are spliced in as they are (ingest stores only valid JSON
 * objects), never parsed; keys and the ids listed are JSON strings. All three keep the order of
 * `taskIds`, whose ids are each once. `tasks[i]` is the task of `taskIds[i]`, null when it is
 * missing, or UNPROCESSED.
 */
export function batchReadBody(taskIds: readonly string[], tasks: readonly BatchReadTask[]): Buffer {
  const parts: Buffer[] = [TASKS_OPEN];
  const missing: string[] = [];
  const unprocessed: string[] = [];
  for (let i = 0; i < taskIds.length; i++) {
    const task = tasks[i];
    if (task === null) {
      missing.push(taskIds[i]);
      continue;
    }
    if (task === UNPROCESSED) {
      unprocessed.push(taskIds[i]);
      continue;
    }
    if (parts.length > 1) parts.push(COMMA);
    parts.push(Buffer.from(`${JSON.stringify(taskIds[i])}:`), task.value);
  }
  parts.push(Buffer.from(`},"missing":${JSON.stringify(missing)},"unprocessed":${JSON.stringify(unprocessed)}}`));
  return Buffer.concat(parts);
}
