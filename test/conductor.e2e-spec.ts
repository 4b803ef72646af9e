import type { Server } from 'node:http';
import { INestApplication } from '@nestjs/common';
import { createApp } from '../src/app.factory.js';
import { AppConfig } from '../src/config/app-config.js';
import { TaskCacheMetrics } from '../src/metrics/task-cache-metrics.js';
import { CapturedLogs } from './support/captured-logs.js';
import { ConductorClient } from './support/conductor-client.js';
import { simple, SYSTEM_WF, taskDef } from './support/conductor-workflows.js';
import { eventually } from './support/eventually.js';
import { send } from './support/http-client.js';
import { TEST_TOKEN, testConfig } from './support/infra.js';
import { untilConsuming } from './support/ingesting-app.js';
import { freePort } from './support/server-process.js';
import { CONDUCTOR_VERSION, TestConductor } from './support/test-conductor.js';

/**
 * task-cache fed by a stock Conductor OSS server through the bridge: Conductor's webhooks point at
 * the bridge, which re-reads each task from Conductor and produces it to the source topic; ingest
 * applies it. For every task of every workflow driven through Conductor's API, task-cache must
 * serve the very bytes Conductor's own `GET /api/tasks/{taskId}` answers, within a bound, the
 * transitions Conductor never announces included (a progress update, INLINE and JQ tasks).
 */

const HEADER = 'X-Webhook-Token';
const TOKEN = 'e2e-webhook-token-0123456789';
const AUTH = { 'X-Authorization': TEST_TOKEN };
const RECONCILE_INTERVAL_MS = 2000;

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

describe(`task-cache fed by a stock Conductor OSS server (${CONDUCTOR_VERSION}) through the bridge`, () => {
  let conductor: TestConductor | undefined;
  let api: ConductorClient;
  let app: INestApplication;
  let server: Server;
  const workflows: string[] = [];
  /** Conductor API call to task-cache serving the new bytes, for announced transitions. */
  const latencies: number[] = [];

  const served = async (taskId: string) => {
    const answer = await send(server, 'get', `/api/tasks/${taskId}`, AUTH);
    return answer.status === 200 ? answer.body : undefined;
  };

  /** Resolves with the time at which task-cache serves what Conductor serves for `taskId` (both read each probe). */
  const sameBytes = (taskId: string, timeoutMs = 10_000) =>
    eventually(
      `task-cache to serve Conductor's bytes of ${taskId}`,
      async () => {
        const [ours, theirs] = await Promise.all([served(taskId), api.taskBytes(taskId)]);
        return ours !== undefined && theirs !== undefined && ours.equals(theirs) && Date.now();
      },
      { timeoutMs, intervalMs: 10 },
    );

  /** Runs a Conductor API call and records how long task-cache took to serve the task's new bytes. */
  async function timed(taskId: string, call: () => Promise<unknown>): Promise<void> {
    const started = Date.now();
    await call();
    latencies.push((await sameBytes(taskId)) - started);
  }

  /** Tasks of the driven workflows whose bytes task-cache does not serve as Conductor does. */
  async function staleTasks(): Promise<string[]> {
    const stale: string[] = [];
    for (const workflowId of workflows) {
      for (const { taskId } of (await api.workflow(workflowId)).tasks) {
        const [ours, theirs] = await Promise.all([served(taskId), api.taskBytes(taskId)]);
        if (ours === undefined || theirs === undefined || !ours.equals(theirs)) stale.push(taskId);
      }
    }
    return stale;
  }

  beforeAll(async () => {
    const port = await freePort();
    conductor = await TestConductor.start({ webhookUrl: `http://127.0.0.1:${port}/conductor/webhook`, webhookHeader: HEADER, webhookToken: TOKEN, readTimeoutMs: 5000 });
    api = conductor.api;
    const config: AppConfig = {
      ...testConfig('conductor'),
      bridge: {
        conductorUrl: conductor.url,
        conductorTimeoutMs: 5000,
        webhookHeader: HEADER.toLowerCase(),
        webhookToken: TOKEN,
        rereadDelayMs: 1000,
        answerTimeoutMs: 4000,
        queueLimit: 1000,
        reconcileIntervalMs: RECONCILE_INTERVAL_MS,
        reconcileWindowMs: 600_000,
        conductorRate: 100,
      },
    };
    app = await createApp(config);
    app.useLogger(new CapturedLogs());
    await app.listen(port);
    await untilConsuming(app);
    server = app.getHttpServer() as Server;
    await api.registerTaskDefs(['completed_task', 'terminated_task', 'failed_task'].map(taskDef));
    await api.registerWorkflowDefs([simple('completed_task'), simple('terminated_task'), simple('failed_task'), SYSTEM_WF]);
  }, 240_000);

  afterAll(async () => {
    await app?.close();
    await conductor?.stop();
  });

  it('serves a SIMPLE task as Conductor does at each step: scheduled, polled, completed', async () => {
    for (let run = 0; run < 12; run++) {
      const started = Date.now();
      const workflowId = await api.startWorkflow('completed_task_wf', { orderId: `A-${run}` });
      workflows.push(workflowId);
      const scheduled = await api.workflowTask(workflowId, 'work');
      latencies.push((await sameBytes(scheduled.taskId)) - started);
      let polled = scheduled;
      await timed(scheduled.taskId, async () => (polled = await api.pollTaskUntil('completed_task', { taskId: scheduled.taskId })));
      await timed(polled.taskId, () => api.complete(polled, { result: 'done', run }));
      expect(JSON.parse((await served(polled.taskId))!.toString())).toMatchObject({ status: 'COMPLETED', outputData: { result: 'done', run } });
    }
  });

  it('serves the task of a terminated workflow CANCELED', async () => {
    const workflowId = await api.startWorkflow('terminated_task_wf', { orderId: 'B-1' });
    workflows.push(workflowId);
    const polled = await api.pollTaskUntil('terminated_task');
    await sameBytes(polled.taskId);
    await timed(polled.taskId, () => api.terminateWorkflow(workflowId, 'cancelled by the customer'));
    expect(JSON.parse((await served(polled.taskId))!.toString())).toMatchObject({ status: 'CANCELED' });
  });

  it('serves a progress update Conductor never announces (within the reconciliation interval), then the failure', async () => {
    const workflowId = await api.startWorkflow('failed_task_wf', { orderId: 'C-1' });
    workflows.push(workflowId);
    const polled = await api.pollTaskUntil('failed_task');
    await sameBytes(polled.taskId);

    const updatedAt = Date.now();
    await api.progress(polled, { progress: 50 }, 60);
    const servedAt = await sameBytes(polled.taskId, RECONCILE_INTERVAL_MS * 3);
    process.stdout.write(`[measure] progress update (no webhook) served ${servedAt - updatedAt} ms after the API call (reconciliation every ${RECONCILE_INTERVAL_MS} ms)\n`);
    expect(JSON.parse((await served(polled.taskId))!.toString())).toMatchObject({ status: 'SCHEDULED', outputData: { progress: 50 } });

    await timed(polled.taskId, () => api.fail(polled, 'worker says boom', { progress: 50, error: 'boom' }));
    expect(JSON.parse((await served(polled.taskId))!.toString())).toMatchObject({ status: 'FAILED' });
  });

  it('serves system tasks Conductor never announces (INLINE, JSON_JQ_TRANSFORM) and a WAIT task completed through the API', async () => {
    const workflowId = await api.startWorkflow('system_tasks_wf', { a: 2, b: 3 });
    workflows.push(workflowId);
    const wait = await api.workflowTask(workflowId, 'wait');
    const { tasks } = await api.workflow(workflowId);
    for (const task of tasks) await sameBytes(task.taskId, RECONCILE_INTERVAL_MS * 3);
    await timed(wait.taskId, () => api.complete(wait, { approved: true }));
  });

  it('holds no stale task once the reconciliation interval has passed, and reports the time to serve announced changes', async () => {
    await new Promise((resolve) => setTimeout(resolve, RECONCILE_INTERVAL_MS * 2));
    const stale = await staleTasks();
    const taskCount = (await Promise.all(workflows.map(async (workflowId) => (await api.workflow(workflowId)).tasks.length))).reduce((a, b) => a + b, 0);
    const sorted = [...latencies].sort((a, b) => a - b);
    const durations = (await app.get(TaskCacheMetrics).bridgeNotificationDuration.get()).values.filter(({ metricName, labels }) => metricName?.endsWith('_bucket') && labels.kind === 'task') as { labels: Record<string, unknown>; value: number }[];
    const count = durations.find(({ labels }) => labels.le === '+Inf')?.value ?? 0;
    const within300 = durations.find(({ labels }) => labels.le === 0.3)?.value ?? 0;
    process.stdout.write(
      `[measure] Conductor API call to task-cache serving the new bytes: p50 ${percentile(sorted, 50)} ms, p99 ${percentile(sorted, 99)} ms, max ${sorted.at(-1)} ms over ${sorted.length} announced transitions; ` +
        `${stale.length} stale of ${taskCount} tasks ${RECONCILE_INTERVAL_MS * 2} ms after the last call; task webhooks answered within 300 ms: ${within300} of ${count}\n`,
    );
    expect(stale).toEqual([]);
    expect(sorted.length).toBeGreaterThanOrEqual(28);
    expect(percentile(sorted, 99)).toBeLessThan(5000);
  });
});
