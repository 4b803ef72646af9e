import { once } from 'node:events';
import { createServer, IncomingHttpHeaders, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConductorClient } from './support/conductor-client.js';
import { simple, SYSTEM_WF, taskDef } from './support/conductor-workflows.js';
import { eventually } from './support/eventually.js';
import { CONDUCTOR_VERSION, TestConductor } from './support/test-conductor.js';

/**
 * The test infrastructure for a real Conductor: a stock Conductor OSS server (TestConductor), driven
 * through its REST API (ConductorClient), with its webhooks pointed at a receiver that records
 * every request. Pins down what Conductor announces, and what it does not, for the transitions
 * task-cache must follow: a worker's task completed, a workflow terminated, a worker's progress
 * update then failure, and system tasks.
 */

const HEADER = 'X-Webhook-Token';
const TOKEN = 'e2e-webhook-token-0123456789';
const HOOKS_PATH = '/conductor-hooks';

interface Notification {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  json: Record<string, unknown>;
}

/** An HTTP server that records every request and answers 200, after `delayMs`. */
class WebhookReceiver {
  readonly received: Notification[] = [];
  delayMs = 0;

  private constructor(private readonly server: Server) {}

  static async start(): Promise<WebhookReceiver> {
    const server = createServer();
    const receiver = new WebhookReceiver(server);
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let json: Record<string, unknown> = {};
        try {
          json = JSON.parse(body) as Record<string, unknown>;
        } catch {
          // recorded as is; the assertions name it
        }
        receiver.received.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, json });
        setTimeout(() => res.end(), receiver.delayMs);
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Task notifications of `taskId`, in the order they came. */
  tasks(taskId: string): Notification[] {
    return this.received.filter((n) => n.path === `${HOOKS_PATH}/task` && n.json.taskId === taskId);
  }

  /** Workflow notifications of `workflowId`, in the order they came. */
  workflows(workflowId: string): Notification[] {
    return this.received.filter((n) => n.path === `${HOOKS_PATH}/workflow` && n.json.workflowId === workflowId);
  }

  taskStatuses(taskId: string): unknown[] {
    return this.tasks(taskId).map((n) => n.json.status);
  }

  workflowStatuses(workflowId: string): unknown[] {
    return this.workflows(workflowId).map((n) => n.json.status);
  }

  untilTask(taskId: string, status: string): Promise<Notification> {
    return eventually(`a task notification ${taskId} ${status}`, () => this.tasks(taskId).find((n) => n.json.status === status), { timeoutMs: 20_000, intervalMs: 20 });
  }

  untilWorkflow(workflowId: string, status: string): Promise<Notification> {
    return eventually(`a workflow notification ${workflowId} ${status}`, () => this.workflows(workflowId).find((n) => n.json.status === status), {
      timeoutMs: 20_000,
      intervalMs: 20,
    });
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, 'close');
  }
}

describe(`a stock Conductor OSS server (${CONDUCTOR_VERSION}) and its webhooks`, () => {
  let receiver: WebhookReceiver;
  let conductor: TestConductor | undefined;
  let api: ConductorClient;
  let rssAtStart: number | undefined;

  beforeAll(async () => {
    receiver = await WebhookReceiver.start();
    conductor = await TestConductor.start({ webhookUrl: `${receiver.url}${HOOKS_PATH}`, webhookHeader: HEADER, webhookToken: TOKEN, readTimeoutMs: 3000 });
    rssAtStart = conductor.rssKiB();
    api = conductor.api;
    await api.registerTaskDefs(['completed_task', 'terminated_task', 'failed_task'].map(taskDef));
    await api.registerWorkflowDefs([simple('completed_task'), simple('terminated_task'), simple('failed_task'), SYSTEM_WF]);
  }, 240_000);

  afterAll(async () => {
    if (conductor) {
      process.stderr.write(`[conductor] ${CONDUCTOR_VERSION}: API answered ${conductor.startupMs} ms after java started; RSS ${rssAtStart} KiB then, ${conductor.rssKiB()} KiB at the end\n`);
    }
    await conductor?.stop();
    await receiver?.close();
  });

  it('announces a SIMPLE task SCHEDULED, IN_PROGRESS when polled, COMPLETED, and its workflow COMPLETED, each once while the receiver answers slower than 300 ms', async () => {
    // Conductor's default read timeout is 300 ms, after which it sends a notification again: with
    // readTimeoutMs 3000 each arrives once.
    receiver.delayMs = 700;
    try {
      const workflowId = await api.startWorkflow('completed_task_wf', { orderId: 'A-1' });
      const polled = await api.pollTaskUntil('completed_task');
      expect(polled).toMatchObject({ workflowInstanceId: workflowId, status: 'IN_PROGRESS', inputData: { orderId: 'A-1' } });
      await api.complete(polled, { result: 'done', n: 42 });

      const completed = await receiver.untilTask(polled.taskId, 'COMPLETED');
      await receiver.untilWorkflow(workflowId, 'COMPLETED');
      // A retry would follow the first try within the default 300 ms, while the receiver holds it.
      await sleep(receiver.delayMs + 500);
      expect(receiver.taskStatuses(polled.taskId)).toEqual(['SCHEDULED', 'IN_PROGRESS', 'COMPLETED']);
      expect(receiver.workflowStatuses(workflowId)).toEqual(['COMPLETED']);
      expect(conductor!.log()).not.toMatch(/Retrying (TASK|WORKFLOW) notification/);
      expect(completed.json).toMatchObject({ taskId: polled.taskId, workflowId, taskType: 'completed_task', workflowTaskType: 'SIMPLE', referenceTaskName: 'work' });

      // The task as Conductor serves it, the bytes the bridge will re-read: the same bytes each time.
      const bytes = await api.taskBytes(polled.taskId);
      expect(Buffer.isBuffer(bytes)).toBe(true);
      expect(JSON.parse(bytes!.toString('utf8'))).toMatchObject({ taskId: polled.taskId, status: 'COMPLETED', outputData: { result: 'done', n: 42 } });
      expect((await api.taskBytes(polled.taskId))!.equals(bytes!)).toBe(true);
      expect(await api.taskBytes('no-such-task')).toBeUndefined();
    } finally {
      receiver.delayMs = 0;
    }
  });

  it('announces a terminated workflow TERMINATED with its reason, and its polled task CANCELED', async () => {
    const workflowId = await api.startWorkflow('terminated_task_wf', { orderId: 'B-1' });
    const polled = await api.pollTaskUntil('terminated_task');
    await api.terminateWorkflow(workflowId, 'cancelled by the customer');

    const terminated = await receiver.untilWorkflow(workflowId, 'TERMINATED');
    await receiver.untilTask(polled.taskId, 'CANCELED');
    expect(terminated.json).toMatchObject({ workflowId, workflowType: 'terminated_task_wf', reasonForIncompletion: 'cancelled by the customer' });
    expect(receiver.taskStatuses(polled.taskId)).toEqual(['SCHEDULED', 'IN_PROGRESS', 'CANCELED']);
    expect(receiver.workflowStatuses(workflowId)).toEqual(['TERMINATED']);
    expect(await api.task(polled.taskId)).toMatchObject({ status: 'CANCELED' });
  });

  it('announces no progress update (the task goes back to SCHEDULED), then FAILED and the workflow FAILED', async () => {
    const workflowId = await api.startWorkflow('failed_task_wf', { orderId: 'C-1' });
    const polled = await api.pollTaskUntil('failed_task');
    await receiver.untilTask(polled.taskId, 'IN_PROGRESS');

    await api.progress(polled, { progress: 50 }, 60);
    // Conductor stores a worker's IN_PROGRESS as SCHEDULED, to be handed out again after the callback.
    expect(await api.task(polled.taskId)).toMatchObject({ status: 'SCHEDULED', callbackAfterSeconds: 60, outputData: { progress: 50 } });

    await api.fail(polled, 'worker says boom', { progress: 50, error: 'boom' });
    const failed = await receiver.untilTask(polled.taskId, 'FAILED');
    const workflowFailed = await receiver.untilWorkflow(workflowId, 'FAILED');
    // One thread posts task notifications in order: one for the progress update would have come before FAILED.
    expect(receiver.taskStatuses(polled.taskId)).toEqual(['SCHEDULED', 'IN_PROGRESS', 'FAILED']);
    expect(failed.json).toMatchObject({ reasonForIncompletion: 'worker says boom' });
    expect(workflowFailed.json).toMatchObject({ workflowId, failedTaskNames: ['failed_task'] });
    expect(receiver.workflowStatuses(workflowId)).toEqual(['FAILED']);
    expect(await api.task(polled.taskId)).toMatchObject({ status: 'FAILED', outputData: { progress: 50, error: 'boom' } });
  });

  it('announces no INLINE or JSON_JQ_TRANSFORM task; a WAIT task IN_PROGRESS when scheduled, then COMPLETED', async () => {
    const workflowId = await api.startWorkflow('system_tasks_wf', { a: 2, b: 3 });
    const wait = await api.workflowTask(workflowId, 'wait');
    const { tasks } = await api.workflow(workflowId);
    const inline = tasks.find((task) => task.referenceTaskName === 'inline')!;
    const jq = tasks.find((task) => task.referenceTaskName === 'jq')!;
    expect(inline).toMatchObject({ taskType: 'INLINE', status: 'COMPLETED', outputData: { result: 5 } });
    expect(jq).toMatchObject({ taskType: 'JSON_JQ_TRANSFORM', status: 'COMPLETED', outputData: { result: { doubled: 10 } } });
    await receiver.untilTask(wait.taskId, 'IN_PROGRESS');

    await api.complete(wait, { approved: true });
    await receiver.untilTask(wait.taskId, 'COMPLETED');
    await receiver.untilWorkflow(workflowId, 'COMPLETED');
    expect(receiver.taskStatuses(wait.taskId)).toEqual(['IN_PROGRESS', 'COMPLETED']);
    // Posted in order, before the WAIT task's: there were none.
    expect(receiver.tasks(inline.taskId)).toEqual([]);
    expect(receiver.tasks(jq.taskId)).toEqual([]);
    expect(receiver.workflowStatuses(workflowId)).toEqual(['COMPLETED']);
  });

  it('posts every notification as JSON to the task or workflow endpoint, with the configured header', () => {
    expect(receiver.received).toHaveLength(15);
    for (const notification of receiver.received) {
      expect(notification).toMatchObject({ method: 'POST', headers: { [HEADER.toLowerCase()]: TOKEN, 'content-type': 'application/json' } });
      expect([`${HOOKS_PATH}/task`, `${HOOKS_PATH}/workflow`]).toContain(notification.path);
      expect(notification.json[notification.path.endsWith('/task') ? 'taskId' : 'workflowId']).toEqual(expect.any(String));
    }
  });
});
