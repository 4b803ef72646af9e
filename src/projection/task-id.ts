/**
 * A taskId as the event contract allows it: 1 to 128 characters of A-Z a-z 0-9 _ . : -
 * Shared by everything that accepts a taskId from outside, so ingest and reads agree on it.
 */
export const TASK_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

export function isValidTaskId(taskId: string): boolean {
  return TASK_ID_PATTERN.test(taskId);
}
