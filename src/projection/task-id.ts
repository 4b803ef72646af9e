/**
 * A taskId as the event contract allows it. Shared by everything that accepts a taskId from
 * outside, so ingest and reads agree on it; messages that state the rule use `TASK_ID_RULE`.
 */
export const TASK_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

/** `TASK_ID_PATTERN` in words, as messages state it. */
export const TASK_ID_RULE = '1 to 128 characters of A-Z a-z 0-9 _ . : -';

export function isValidTaskId(taskId: string): boolean {
  return TASK_ID_PATTERN.test(taskId);
}
