import { IsBoolean, IsIn, IsInt, IsObject, IsOptional, IsString, Matches } from 'class-validator';
import { TASK_ID_PATTERN, TASK_ID_RULE } from '../../projection/task-id.js';

export const TASK_STATUSES = [
  'SCHEDULED',
  'IN_PROGRESS',
  'COMPLETED',
  'COMPLETED_WITH_ERRORS',
  'FAILED',
  'FAILED_WITH_TERMINAL_ERROR',
  'TIMED_OUT',
  'CANCELED',
  'SKIPPED',
] as const;

export type TaskStatus = (typeof TASK_STATUSES)[number];

/**
 * The statuses after which Conductor does not run the task again: those its `Task.Status`
 * declares terminal (`isTerminal()`). SCHEDULED and IN_PROGRESS are not. Retention
 * (PROJECTION_TERMINAL_TTL_SECONDS) expires a task whose latest event has one of these.
 */
export const TERMINAL_TASK_STATUSES: ReadonlySet<TaskStatus> = new Set([
  'COMPLETED',
  'COMPLETED_WITH_ERRORS',
  'FAILED',
  'FAILED_WITH_TERMINAL_ERROR',
  'TIMED_OUT',
  'CANCELED',
  'SKIPPED',
]);

/**
 * The value of a task-update event: Conductor's Task JSON (see the event contract). taskId,
 * taskType and status are required; every other known field must have its Conductor type when it
 * is present (null counts as absent, as Jackson writes it). Fields not listed here are allowed
 * and kept: this class only checks the parsed value, the produced bytes are what gets stored.
 */
export class TaskEventDto {
  @IsString() @Matches(TASK_ID_PATTERN, { message: `taskId must be ${TASK_ID_RULE}` })
  taskId: string;

  @IsString()
  taskType: string;

  @IsIn(TASK_STATUSES)
  status: TaskStatus;

  // Conductor strings.
  @IsOptional() @IsString() referenceTaskName?: string;
  @IsOptional() @IsString() taskDefName?: string;
  @IsOptional() @IsString() workflowInstanceId?: string;
  @IsOptional() @IsString() workflowType?: string;
  @IsOptional() @IsString() correlationId?: string;
  @IsOptional() @IsString() retriedTaskId?: string;
  @IsOptional() @IsString() reasonForIncompletion?: string;
  @IsOptional() @IsString() workerId?: string;
  @IsOptional() @IsString() domain?: string;
  @IsOptional() @IsString() externalInputPayloadStoragePath?: string;
  @IsOptional() @IsString() externalOutputPayloadStoragePath?: string;
  @IsOptional() @IsString() executionNameSpace?: string;
  @IsOptional() @IsString() isolationGroupId?: string;
  @IsOptional() @IsString() subWorkflowId?: string;
  @IsOptional() @IsString() parentTaskId?: string;

  // Conductor int and long fields; the *Time fields are epoch milliseconds.
  @IsOptional() @IsInt() retryCount?: number;
  @IsOptional() @IsInt() seq?: number;
  @IsOptional() @IsInt() pollCount?: number;
  @IsOptional() @IsInt() scheduledTime?: number;
  @IsOptional() @IsInt() startTime?: number;
  @IsOptional() @IsInt() endTime?: number;
  @IsOptional() @IsInt() updateTime?: number;
  @IsOptional() @IsInt() startDelayInSeconds?: number;
  @IsOptional() @IsInt() responseTimeoutSeconds?: number;
  @IsOptional() @IsInt() callbackAfterSeconds?: number;
  @IsOptional() @IsInt() rateLimitPerFrequency?: number;
  @IsOptional() @IsInt() rateLimitFrequencyInSeconds?: number;
  @IsOptional() @IsInt() workflowPriority?: number;
  @IsOptional() @IsInt() iteration?: number;
  @IsOptional() @IsInt() firstStartTime?: number;
  @IsOptional() @IsInt() queueWaitTime?: number;

  // Conductor flags.
  @IsOptional() @IsBoolean() retried?: boolean;
  @IsOptional() @IsBoolean() executed?: boolean;
  @IsOptional() @IsBoolean() callbackFromWorker?: boolean;
  @IsOptional() @IsBoolean() subworkflowChanged?: boolean;
  @IsOptional() @IsBoolean() loopOverTask?: boolean;

  // Conductor maps and nested objects.
  @IsOptional() @IsObject() inputData?: Record<string, unknown>;
  @IsOptional() @IsObject() outputData?: Record<string, unknown>;
  @IsOptional() @IsObject() workflowTask?: Record<string, unknown>;
  @IsOptional() @IsObject() taskDefinition?: Record<string, unknown>;
  @IsOptional() @IsObject() inputMessage?: Record<string, unknown>;
  @IsOptional() @IsObject() outputMessage?: Record<string, unknown>;
}
