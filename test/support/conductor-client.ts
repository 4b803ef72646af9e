import { request } from 'node:http';
import { eventually } from './eventually.js';

/** A task's status in Conductor (TaskModel.Status). */
export type ConductorTaskStatus =
  | 'SCHEDULED'
  | 'IN_PROGRESS'
  | 'CANCELED'
  | 'FAILED'
  | 'FAILED_WITH_TERMINAL_ERROR'
  | 'COMPLETED'
  | 'COMPLETED_WITH_ERRORS'
  | 'TIMED_OUT'
  | 'SKIPPED';

/** A workflow's status in Conductor. */
export type ConductorWorkflowStatus = 'RUNNING' | 'COMPLETED' | 'FAILED' | 'TIMED_OUT' | 'TERMINATED' | 'PAUSED';

/** A task definition (POST /api/metadata/taskdefs); fields not named here pass through as given. */
export interface ConductorTaskDef {
  name: string;
  description?: string;
  retryCount?: number;
  retryLogic?: 'FIXED' | 'EXPONENTIAL_BACKOFF' | 'LINEAR_BACKOFF';
  retryDelaySeconds?: number;
  timeoutSeconds?: number;
  responseTimeoutSeconds?: number;
  timeoutPolicy?: 'RETRY' | 'TIME_OUT_WF' | 'ALERT_ONLY';
  ownerEmail?: string;
  [field: string]: unknown;
}

/** A task of a workflow definition: SIMPLE (a worker's), or a system task (INLINE, JSON_JQ_TRANSFORM, WAIT…). */
export interface ConductorWorkflowTask {
  name: string;
  taskReferenceName: string;
  type: string;
  inputParameters?: Record<string, unknown>;
  [field: string]: unknown;
}

/** A workflow definition (PUT /api/metadata/workflow). */
export interface ConductorWorkflowDef {
  name: string;
  version?: number;
  description?: string;
  schemaVersion?: number;
  ownerEmail?: string;
  timeoutSeconds?: number;
  timeoutPolicy?: 'TIME_OUT_WF' | 'ALERT_ONLY';
  tasks: ConductorWorkflowTask[];
  [field: string]: unknown;
}

/** The Task JSON of GET /api/tasks/{taskId} and of a poll (times in epoch ms, 0 when not set). */
export interface ConductorTask {
  taskId: string;
  taskType: string;
  taskDefName: string;
  referenceTaskName: string;
  status: ConductorTaskStatus;
  workflowInstanceId: string;
  workflowType: string;
  inputData: Record<string, unknown>;
  outputData: Record<string, unknown>;
  retryCount: number;
  pollCount: number;
  callbackAfterSeconds: number;
  scheduledTime: number;
  startTime: number;
  endTime: number;
  updateTime: number;
  workerId?: string;
  reasonForIncompletion?: string;
  [field: string]: unknown;
}

/** The workflow JSON of GET /api/workflow/{id}?includeTasks=true. */
export interface ConductorWorkflow {
  workflowId: string;
  workflowName: string;
  workflowVersion: number;
  status: ConductorWorkflowStatus;
  input: Record<string, unknown>;
  output: Record<string, unknown>;
  reasonForIncompletion?: string;
  tasks: ConductorTask[];
  [field: string]: unknown;
}

/** A worker's update of a task (POST /api/tasks, a TaskResult). */
export interface ConductorTaskUpdate {
  workflowInstanceId: string;
  taskId: string;
  status: 'IN_PROGRESS' | 'COMPLETED' | 'FAILED' | 'FAILED_WITH_TERMINAL_ERROR';
  workerId?: string;
  outputData?: Record<string, unknown>;
  reasonForIncompletion?: string;
  /** With IN_PROGRESS: when Conductor hands the task out to a poll again. */
  callbackAfterSeconds?: number;
  logs?: { log: string; taskId: string; createdTime: number }[];
}

/** An answer of Conductor's API that is not 2xx. */
export class ConductorApiError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly body: string,
  ) {
    super(`Conductor answered ${method} ${path} with ${status}: ${body.slice(0, 500)}`);
  }
}

interface Answer {
  status: number;
  body: Buffer;
}

/**
 * A cold server's first calls are slow (a first poll took 4.6 s, a first start 2 s, on a 2-core
 * machine): a request waits this long for its answer. A poll is never cut short by the client, as
 * a poll answered after the client gave up would leave its task handed out to nobody.
 */
const REQUEST_TIMEOUT_MS = 60_000;
/** Reads are retried after a refused or reset connection, this many times. */
const READ_ATTEMPTS = 3;
export const DEFAULT_WORKER_ID = 'task-cache-e2e-worker';

/**
 * The parts of Conductor's REST API (under /api) that the tests drive: metadata, starting and
 * terminating workflows, a worker's poll and updates, and reading tasks (as the raw bytes Conductor
 * serves) and workflows. A connection per request, so nothing stays open after a suite.
 */
export class ConductorClient {
  constructor(readonly baseUrl: string) {}

  /** Registers (or replaces) task definitions. */
  async registerTaskDefs(defs: ConductorTaskDef[]): Promise<void> {
    await this.call('POST', '/api/metadata/taskdefs', defs);
  }

  /** Creates or updates workflow definitions. */
  async registerWorkflowDefs(defs: ConductorWorkflowDef[]): Promise<void> {
    await this.call('PUT', '/api/metadata/workflow', defs);
  }

  /** Starts the latest version of workflow `name` (or `version`); resolves with its workflowId. */
  async startWorkflow(name: string, input: Record<string, unknown> = {}, options: { version?: number; correlationId?: string } = {}): Promise<string> {
    const query = new URLSearchParams();
    if (options.version !== undefined) query.set('version', String(options.version));
    if (options.correlationId !== undefined) query.set('correlationId', options.correlationId);
    const suffix = query.size > 0 ? `?${query}` : '';
    const answer = await this.call('POST', `/api/workflow/${encodeURIComponent(name)}${suffix}`, input);
    return answer.body.toString('utf8').trim();
  }

  /** Terminates a workflow; its open tasks become CANCELED. */
  async terminateWorkflow(workflowId: string, reason = 'terminated by a test'): Promise<void> {
    await this.call('DELETE', `/api/workflow/${encodeURIComponent(workflowId)}?${new URLSearchParams({ reason })}`);
  }

  /** One poll for a task of `taskType`, as a worker polls: the task (now IN_PROGRESS), or undefined when none is queued. */
  async pollTask(taskType: string, workerId = DEFAULT_WORKER_ID): Promise<ConductorTask | undefined> {
    const answer = await this.call('GET', `/api/tasks/poll/${encodeURIComponent(taskType)}?${new URLSearchParams({ workerid: workerId })}`);
    return answer.status === 204 || answer.body.length === 0 ? undefined : (JSON.parse(answer.body.toString('utf8')) as ConductorTask);
  }

  /** Polls until a task of `taskType` is handed out, optionally a given one (others handed out meanwhile are an error). */
  async pollTaskUntil(taskType: string, options: { workerId?: string; taskId?: string; timeoutMs?: number } = {}): Promise<ConductorTask> {
    return eventually(
      `a poll of ${taskType} to hand out ${options.taskId ?? 'a task'}`,
      async () => {
        const task = await this.pollTask(taskType, options.workerId);
        if (task && options.taskId !== undefined && task.taskId !== options.taskId) {
          throw new Error(`a poll of ${taskType} handed out task ${task.taskId}, not ${options.taskId}`);
        }
        return task;
      },
      { timeoutMs: options.timeoutMs ?? 30_000, intervalMs: 200 },
    );
  }

  /** A worker's update of a task (POST /api/tasks); resolves with the taskId Conductor answers. */
  async updateTask(update: ConductorTaskUpdate): Promise<string> {
    const answer = await this.call('POST', '/api/tasks', { workerId: DEFAULT_WORKER_ID, outputData: {}, ...update });
    return answer.body.toString('utf8').trim();
  }

  /** Reports progress: IN_PROGRESS with output; Conductor hands the task out again after `callbackAfterSeconds`. */
  progress(task: ConductorTask, outputData: Record<string, unknown>, callbackAfterSeconds: number): Promise<string> {
    return this.updateTask({ workflowInstanceId: task.workflowInstanceId, taskId: task.taskId, status: 'IN_PROGRESS', outputData, callbackAfterSeconds });
  }

  complete(task: ConductorTask, outputData: Record<string, unknown> = {}): Promise<string> {
    return this.updateTask({ workflowInstanceId: task.workflowInstanceId, taskId: task.taskId, status: 'COMPLETED', outputData });
  }

  fail(task: ConductorTask, reasonForIncompletion: string, outputData: Record<string, unknown> = {}): Promise<string> {
    return this.updateTask({ workflowInstanceId: task.workflowInstanceId, taskId: task.taskId, status: 'FAILED', reasonForIncompletion, outputData });
  }

  /** GET /api/tasks/{taskId}: the body exactly as Conductor serves it, or undefined when it knows no such task (204). */
  async taskBytes(taskId: string): Promise<Buffer | undefined> {
    const answer = await this.read(`/api/tasks/${encodeURIComponent(taskId)}`);
    return answer.status === 204 || answer.body.length === 0 ? undefined : answer.body;
  }

  /** GET /api/tasks/{taskId}, parsed; fails when Conductor knows no such task. */
  async task(taskId: string): Promise<ConductorTask> {
    const bytes = await this.taskBytes(taskId);
    if (!bytes) throw new Error(`Conductor knows no task ${taskId}`);
    return JSON.parse(bytes.toString('utf8')) as ConductorTask;
  }

  /** GET /api/workflow/{workflowId}?includeTasks=true, parsed. */
  async workflow(workflowId: string): Promise<ConductorWorkflow> {
    const answer = await this.read(`/api/workflow/${encodeURIComponent(workflowId)}?includeTasks=true`);
    return JSON.parse(answer.body.toString('utf8')) as ConductorWorkflow;
  }

  /** The task of workflow `workflowId` with reference name `ref` (the latest attempt), once the workflow has scheduled it. */
  workflowTask(workflowId: string, ref: string, timeoutMs = 30_000): Promise<ConductorTask> {
    return eventually(
      `workflow ${workflowId} to have a task ${ref}`,
      async () => (await this.workflow(workflowId)).tasks.filter((task) => task.referenceTaskName === ref).at(-1),
      { timeoutMs, intervalMs: 200 },
    );
  }

  /** Waits until the workflow has `status`. */
  untilWorkflowStatus(workflowId: string, status: ConductorWorkflowStatus, timeoutMs = 30_000): Promise<ConductorWorkflow> {
    return eventually(
      `workflow ${workflowId} to be ${status}`,
      async () => {
        const workflow = await this.workflow(workflowId);
        return workflow.status === status && workflow;
      },
      { timeoutMs, intervalMs: 200 },
    );
  }

  /** A GET, retried after a refused or reset connection. */
  private async read(path: string): Promise<Answer> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.call('GET', path);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (attempt >= READ_ATTEMPTS || (code !== 'ECONNREFUSED' && code !== 'ECONNRESET')) throw error;
      }
    }
  }

  /** One request; rejects on a transport failure or an answer other than 2xx. */
  private call(method: string, path: string, body?: unknown): Promise<Answer> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = request(
        new URL(path, this.baseUrl),
        {
          method,
          agent: false,
          timeout: REQUEST_TIMEOUT_MS,
          headers: {
            Accept: 'application/json, text/plain, */*',
            ...(payload && { 'Content-Type': 'application/json', 'Content-Length': String(payload.length) }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const answer = { status: res.statusCode ?? 0, body: Buffer.concat(chunks) };
            if (answer.status < 200 || answer.status > 299) reject(new ConductorApiError(method, path, answer.status, answer.body.toString('utf8')));
            else resolve(answer);
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`Conductor did not answer ${method} ${path} within ${REQUEST_TIMEOUT_MS} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }
}
