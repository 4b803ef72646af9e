import { Controller, HttpCode, Post, UseGuards } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { Public } from '../auth/public.decorator.js';
import { BridgeConfig } from '../config/app-config.js';
import { JsonBody } from '../http/json-body.decorator.js';
import { TaskCacheMetrics } from '../metrics/task-cache-metrics.js';
import { isValidTaskId, TASK_ID_RULE } from '../projection/task-id.js';
import { DomainError } from '../common/domain-error.js';
import { BridgeAnswerTimeoutError, BridgeBusyError, BridgeUnavailableError, InvalidNotificationError } from './bridge-errors.js';
import { TaskRereader } from './task-rereader.js';
import { WebhookTokenGuard } from './webhook-token.guard.js';
import { WorkflowReconciler } from './workflow-reconciler.js';

/**
 * A notification's body is Conductor's TaskNotification or workflow StatusChangeNotification, whose
 * input and output come as strings: read up to this much, for the ids alone.
 */
const NOTIFICATION_BODY_LIMIT_BYTES = 4 * 1024 * 1024;

/**
 * The endpoints Conductor's `task_publisher` and `workflow_publisher` call: `POST
 * /conductor/webhook/task` and `/conductor/webhook/workflow` (Conductor's notification url
 * `http://<task-cache>/conductor/webhook`, with endpoint-task `task` and endpoint-workflow
 * `workflow`). Behind the shared header, not the read API's tokens, and not in the API document:
 * Conductor is their only client.
 *
 * A notification is only a signal: the task is re-read from Conductor and produced to the source
 * topic (`TaskRereader`), and the webhook is answered 200 once the broker has acknowledged it, or
 * 503 (retryable) when that takes longer than BRIDGE_ANSWER_TIMEOUT_MS, when Conductor cannot be
 * read, or when the bridge's queue is full. A workflow notification is answered once the
 * workflow's tasks are read and their comparison scheduled (`WorkflowReconciler`).
 */
@ApiExcludeController()
@Public()
@UseGuards(WebhookTokenGuard)
@Controller('conductor/webhook')
export class ConductorWebhookController {
  constructor(
    private readonly rereader: TaskRereader,
    private readonly reconciler: WorkflowReconciler,
    private readonly config: BridgeConfig,
    private readonly metrics: TaskCacheMetrics,
  ) {}

  @Post('task')
  @HttpCode(200)
  async task(@JsonBody(NOTIFICATION_BODY_LIMIT_BYTES) body: unknown): Promise<void> {
    const { taskId, workflowId } = this.idsOf(body, 'task');
    if (taskId === undefined) throw this.invalid('task', `a task notification must name its taskId (${TASK_ID_RULE})`);
    if (workflowId !== undefined) this.reconciler.seen(workflowId);
    await this.counted('task', () => this.withinAnswerTime(`task ${taskId}`, (signal) => this.rereader.notified(taskId, signal)));
  }

  @Post('workflow')
  @HttpCode(200)
  async workflow(@JsonBody(NOTIFICATION_BODY_LIMIT_BYTES) body: unknown): Promise<void> {
    const { workflowId } = this.idsOf(body, 'workflow');
    if (workflowId === undefined) throw this.invalid('workflow', `a workflow notification must name its workflowId (${TASK_ID_RULE})`);
    await this.counted('workflow', () => this.withinAnswerTime(`workflow ${workflowId}`, () => this.reconciler.workflowNotified(workflowId)));
  }

  /** The notification's ids, where they are valid ids; a body that is not an object is refused. */
  private idsOf(body: unknown, kind: 'task' | 'workflow'): { taskId?: string; workflowId?: string } {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw this.invalid(kind, 'a notification must be a JSON object');
    const idOf = (name: string) => {
      const value: unknown = Object.hasOwn(body, name) ? (body as Record<string, unknown>)[name] : undefined;
      return typeof value === 'string' && isValidTaskId(value) ? value : undefined;
    };
    return { taskId: idOf('taskId'), workflowId: idOf('workflowId') };
  }

  private invalid(kind: 'task' | 'workflow', message: string): InvalidNotificationError {
    this.metrics.bridgeNotifications.inc({ kind, outcome: 'invalid' });
    return new InvalidNotificationError(message);
  }

  private async counted(kind: 'task' | 'workflow', work: () => Promise<void>): Promise<void> {
    const started = performance.now();
    try {
      await work();
      this.metrics.bridgeNotifications.inc({ kind, outcome: 'accepted' });
    } catch (error) {
      const outcome = error instanceof BridgeBusyError ? 'busy' : error instanceof BridgeAnswerTimeoutError ? 'timeout' : 'failed';
      this.metrics.bridgeNotifications.inc({ kind, outcome });
      // Whatever failed, Conductor may send the notification again: never a 500, which it would not.
      if (error instanceof DomainError) throw error;
      throw new BridgeUnavailableError(`the bridge failed unexpectedly: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    } finally {
      this.metrics.bridgeNotificationDuration.observe({ kind }, (performance.now() - started) / 1000);
    }
  }

  /**
   * The work, or a retryable timeout once BRIDGE_ANSWER_TIMEOUT_MS has passed: the work goes on,
   * and is told (`signal`) that nobody waits for it any more.
   */
  private async withinAnswerTime(what: string, work: (signal: AbortSignal) => Promise<void>): Promise<void> {
    const gaveUp = new AbortController();
    // First: work that refuses at once (a full queue) throws here, before any timer is set.
    const done = work(gaveUp.signal);
    done.catch(() => undefined); // answered by the race below, or past it
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        gaveUp.abort();
        reject(new BridgeAnswerTimeoutError(what, this.config.answerTimeoutMs));
      }, this.config.answerTimeoutMs);
    });
    try {
      await Promise.race([done, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
