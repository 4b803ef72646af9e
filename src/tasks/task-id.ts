/** The taskId contract: 1 to 128 characters of A-Z a-z 0-9 _ . : - (as the event contract has it). */
export const TASK_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

export function isValidTaskId(taskId: string): boolean {
  return TASK_ID_PATTERN.test(taskId);
}
