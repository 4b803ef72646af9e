import type { Server } from 'node:http';
import { INestApplication } from '@nestjs/common';
import { createApp } from '../src/app.factory.js';
import { AppConfig, BridgeConfig } from '../src/config/app-config.js';
import { TaskCacheMetrics } from '../src/metrics/task-cache-metrics.js';
import { CapturedLogs } from './support/captured-logs.js';
import { eventually } from './support/eventually.js';
import { FakeConductor } from './support/fake-conductor.js';
import { send } from './support/http-client.js';
import { TEST_TOKEN, testConfig } from './support/infra.js';
import { untilConsuming } from './support/ingesting-app.js';
import { sampleTaskBytes, updateNumberOf } from './support/sample-task.js';

/**
 * The Conductor bridge (CONDUCTOR_URL) through real Kafka and Redis, against Conductor's read API
 * played in process (test/support/fake-conductor.ts), so that its answers, failures and delays are
 * the test's to choose. test/conductor.e2e-spec.ts runs it against a stock Conductor server.
 */

const WEBHOOK = { header: 'X-Webhook-Token', token: 'e2e-webhook-token-0123456789' };
const NOTIFY = { 'Content-Type': 'application/json', [WEBHOOK.header]: WEBHOOK.token };
const AUTH = { 'X-Authorization': TEST_TOKEN };

function bridged(label: string, conductor: FakeConductor, bridge: Partial<BridgeConfig> = {}, base?: AppConfig): AppConfig {
  return {
    ...(base ?? testConfig(label)),
    bridge: {
      conductorUrl: conductor.url,
      conductorTimeoutMs: 1000,
      webhookHeader: WEBHOOK.header.toLowerCase(),
      webhookToken: WEBHOOK.token,
      rereadDelayMs: 1000,
      answerTimeoutMs: 4000,
      queueLimit: 1000,
      reconcileIntervalMs: 60_000,
      reconcileWindowMs: 600_000,
      conductorRate: 200,
      ...bridge,
    },
  };
}

async function start(config: AppConfig): Promise<{ app: INestApplication; server: Server }> {
  const app = await createApp(config);
  app.useLogger(new CapturedLogs());
  await app.listen(0);
  await untilConsuming(app);
  return { app, server: app.getHttpServer() as Server };
}

const notifyTask = (server: Server, body: unknown, headers: Record<string, string> = NOTIFY) =>
  send(server, 'post', '/conductor/webhook/task', headers, typeof body === 'string' ? body : JSON.stringify(body));
const notifyWorkflow = (server: Server, body: unknown) => send(server, 'post', '/conductor/webhook/workflow', NOTIFY, JSON.stringify(body));
const served = async (server: Server, taskId: string) => (await send(server, 'get', `/api/tasks/${taskId}`, AUTH)).body;

async function counted(app: INestApplication, name: 'bridgeNotifications' | 'bridgeRereads', labels: Record<string, string>): Promise<number> {
  const { values } = await app.get(TaskCacheMetrics)[name].get();
  return values.filter((value) => Object.entries(labels).every(([key, wanted]) => (value.labels as Record<string, unknown>)[key] === wanted)).reduce((sum, { value }) => sum + value, 0);
}

describe('the Conductor bridge: webhooks in, Conductor task JSON out to the source topic', () => {
  let conductor: FakeConductor;
  let app: INestApplication;
  let server: Server;
  let config: AppConfig;

  beforeAll(async () => {
    conductor = await FakeConductor.start();
    config = bridged('bridge', conductor, { reconcileIntervalMs: 1000 });
    ({ app, server } = await start(config));
  });

  afterAll(async () => {
    await app?.close();
    await conductor?.stop();
  });

  it('produces the bytes Conductor answers for a notified task, answering 200 once the broker has them; task-cache then serves those very bytes', async () => {
    const bytes = sampleTaskBytes('b-1', 3);
    conductor.tasks.set('b-1', bytes);
    const answer = await notifyTask(server, { taskId: 'b-1', workflowId: 'wf-1', status: 'COMPLETED', input: '{a=1}' });
    expect(answer.status).toBe(200);
    await eventually('b-1 to be served', async () => (await served(server, 'b-1')).equals(bytes));
    expect(conductor.requests).toContain('GET /api/tasks/b-1');
    expect(await counted(app, 'bridgeNotifications', { kind: 'task', outcome: 'accepted' })).toBe(1);
  });

  it('refuses a notification without the shared header, or with another value (401), before reading it', async () => {
    for (const headers of [{ 'Content-Type': 'application/json' }, { ...NOTIFY, [WEBHOOK.header]: 'wrong' }, { ...NOTIFY, [WEBHOOK.header]: `${WEBHOOK.token}x` }]) {
      const answer = await notifyTask(server, { taskId: 'b-unauthorized' }, headers);
      expect([answer.status, (answer.json as { retryable: boolean }).retryable]).toEqual([401, false]);
    }
    // The read API's token is not the webhook's.
    expect((await notifyTask(server, { taskId: 'b-unauthorized' }, { 'Content-Type': 'application/json', ...AUTH })).status).toBe(401);
    expect(conductor.requests).not.toContain('GET /api/tasks/b-unauthorized');
    expect(await counted(app, 'bridgeNotifications', { outcome: 'unauthorized' })).toBe(4);
  });

  it('answers a malformed notification 400 with an ErrorResponse, and one that is not JSON 415', async () => {
    for (const body of ['{not json', '[]', '"b-1"', 'null', { status: 'COMPLETED' }, { taskId: 42 }, { taskId: 'x'.repeat(200) }, { taskId: 'bad id' }, { ['__proto__']: { taskId: 'b-1' } }]) {
      const answer = await notifyTask(server, body);
      expect([JSON.stringify(body), answer.status]).toEqual([JSON.stringify(body), 400]);
      expect(answer.json).toMatchObject({ status: 400, retryable: false });
    }
    expect((await notifyTask(server, 'taskId=b-1', { ...NOTIFY, 'Content-Type': 'text/plain' })).status).toBe(415);
    // Refused before it is parsed: deep nesting costs JSON.parse most of a second per few megabytes.
    expect((await notifyTask(server, '['.repeat(1_000_000))).json).toMatchObject({ status: 400, message: expect.stringContaining('nested deeper') });
    expect((await send(server, 'post', '/conductor/webhook/workflow', NOTIFY, JSON.stringify({ status: 'COMPLETED' }))).status).toBe(400);
  });

  it('answers 200 and produces nothing for a task Conductor does not have, counting it', async () => {
    const answer = await notifyTask(server, { taskId: 'b-never' });
    expect(answer.status).toBe(200);
    expect(conductor.requests.filter((request) => request === 'GET /api/tasks/b-never')).toHaveLength(3);
    expect(await counted(app, 'bridgeRereads', { reason: 'notification', outcome: 'missing' })).toBe(1);
    expect((await send(server, 'get', '/api/tasks/b-never', AUTH)).status).toBe(404);
  });

  it('produces nothing Conductor answers for another task, or as something that is not a task, and answers 200: no retry would change it', async () => {
    conductor.tasks.set('b-wrong', sampleTaskBytes('b-other', 0));
    conductor.tasks.set('b-garbage', Buffer.from('{"taskId":"b-garbage",'));
    for (const taskId of ['b-wrong', 'b-garbage']) expect((await notifyTask(server, { taskId })).status).toBe(200);
    expect(await counted(app, 'bridgeRereads', { reason: 'notification', outcome: 'refused' })).toBe(2);
    for (const taskId of ['b-wrong', 'b-garbage', 'b-other']) expect((await send(server, 'get', `/api/tasks/${taskId}`, AUTH)).status).toBe(404);
  });

  it('answers 503, retryable, while Conductor fails, and never crashes; the next notification goes through', async () => {
    conductor.tasks.set('b-2', sampleTaskBytes('b-2', 0));
    conductor.failing = true;
    try {
      const answer = await notifyTask(server, { taskId: 'b-2' });
      expect([answer.status, (answer.json as { retryable: boolean }).retryable]).toEqual([503, true]);
    } finally {
      conductor.failing = false;
    }
    expect((await notifyTask(server, { taskId: 'b-2' })).status).toBe(200);
    await eventually('b-2 to be served', async () => (await served(server, 'b-2')).equals(sampleTaskBytes('b-2', 0)));
    expect(await counted(app, 'bridgeNotifications', { kind: 'task', outcome: 'failed' })).toBe(1);
  });

  it('on a workflow notification, produces the tasks of the workflow whose bytes differ from what task-cache serves', async () => {
    conductor.tasks.set('b-3', sampleTaskBytes('b-3', 0));
    conductor.tasks.set('b-4', sampleTaskBytes('b-4', 0));
    expect((await notifyTask(server, { taskId: 'b-3' })).status).toBe(200);
    expect((await notifyTask(server, { taskId: 'b-4' })).status).toBe(200);
    await eventually('b-3 and b-4 to be served', async () => (await served(server, 'b-3')).equals(sampleTaskBytes('b-3', 0)) && (await served(server, 'b-4')).equals(sampleTaskBytes('b-4', 0)));
    await new Promise((resolve) => setTimeout(resolve, 1500)); // past the re-reads that follow the notifications
    const producedBefore = await counted(app, 'bridgeRereads', { reason: 'workflow', outcome: 'produced' });

    // Conductor changes b-4 without a task notification (as the decider does after a task ends).
    conductor.tasks.set('b-4', sampleTaskBytes('b-4', 1));
    conductor.workflows.set('wf-3', ['b-3', 'b-4', 'b-5']);
    expect((await notifyWorkflow(server, { workflowId: 'wf-3', status: 'COMPLETED' })).status).toBe(200);
    await eventually('b-4 to be served at its new bytes', async () => (await served(server, 'b-4')).equals(sampleTaskBytes('b-4', 1)));
    expect(await counted(app, 'bridgeRereads', { reason: 'workflow', outcome: 'produced' })).toBe(producedBefore + 1);
    expect(await counted(app, 'bridgeRereads', { reason: 'workflow', outcome: 'unchanged' })).toBeGreaterThanOrEqual(1);
  });

  it('reconciles the tasks of recently active workflows: a change Conductor never announced is served within the interval', async () => {
    conductor.tasks.set('b-6', sampleTaskBytes('b-6', 0));
    conductor.workflows.set('wf-6', ['b-6']);
    expect((await notifyTask(server, { taskId: 'b-6', workflowId: 'wf-6' })).status).toBe(200);
    await eventually('b-6 to be served', async () => (await served(server, 'b-6')).equals(sampleTaskBytes('b-6', 0)));

    const changedAt = Date.now();
    conductor.tasks.set('b-6', sampleTaskBytes('b-6', 1, { status: 'COMPLETED' }));
    const servedAt = await eventually('the silent change of b-6 to be served', async () => (await served(server, 'b-6')).equals(sampleTaskBytes('b-6', 1, { status: 'COMPLETED' })) && Date.now(), { timeoutMs: 10_000 });
    // One interval (1 s here) and the re-read, on a loaded machine: within five.
    expect(servedAt - changedAt).toBeLessThan(5000);
    expect(await counted(app, 'bridgeRereads', { reason: 'reconcile', outcome: 'produced' })).toBeGreaterThanOrEqual(1);
  });
});

describe('the Conductor bridge under load and across instances', () => {
  let conductor: FakeConductor;
  const apps: INestApplication[] = [];

  beforeAll(async () => {
    conductor = await FakeConductor.start();
  });

  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
    await conductor?.stop();
  });

  it('answers 503, retryable, to notifications past BRIDGE_QUEUE_LIMIT while Conductor is slow, and serves them all once asked again', async () => {
    const { app, server } = await start(bridged('bridge-busy', conductor, { queueLimit: 5, answerTimeoutMs: 10_000, conductorTimeoutMs: 5000, rereadDelayMs: 0 }));
    apps.push(app);
    conductor.delayMs = () => 1500; // well within CONDUCTOR_TIMEOUT_MS (5 s here), on a loaded machine too
    try {
      const taskIds = Array.from({ length: 12 }, (_, index) => `busy-${index}`);
      for (const taskId of taskIds) conductor.tasks.set(taskId, sampleTaskBytes(taskId, 0));
      const answers = await Promise.all(taskIds.map((taskId) => notifyTask(server, { taskId })));
      const statuses = answers.map(({ status }) => status);
      expect(statuses.filter((status) => status === 200)).toHaveLength(5);
      expect(statuses.filter((status) => status === 503)).toHaveLength(7);
      for (const { json, status } of answers) if (status === 503) expect(json).toMatchObject({ retryable: true });
      expect(await counted(app, 'bridgeNotifications', { outcome: 'busy' })).toBe(7);

      // Conductor sends them again (it retries a 503): each is produced and served.
      const refused = taskIds.filter((_, index) => statuses[index] === 503);
      const again = await Promise.all(refused.slice(0, 5).map((taskId) => notifyTask(server, { taskId })));
      expect(again.map(({ status }) => status)).toEqual(Array(5).fill(200));
      for (const taskId of taskIds.filter((_, index) => statuses[index] === 200).concat(refused.slice(0, 5))) {
        await eventually(`${taskId} to be served`, async () => (await served(server, taskId)).equals(sampleTaskBytes(taskId, 0)));
      }
    } finally {
      conductor.delayMs = () => 0;
    }
  });

  it('converges across instances: a slow read on one instance produces an older task after the other produced the newer; its re-read puts the newer back within BRIDGE_REREAD_DELAY_MS', async () => {
    const base = testConfig('bridge-race');
    const pair = await Promise.all([0, 1].map(() => start(bridged('bridge-race', conductor, { rereadDelayMs: 1000 }, base))));
    apps.push(...pair.map(({ app }) => app));
    const taskIds = Array.from({ length: 20 }, (_, index) => `race-${index}`);
    // Each task's first read is slow (it answers the task as it was when asked): the read of the
    // first instance, notified first, answers after the second's, notified of a later update.
    const reads = new Map<string, number>();
    conductor.delayMs = (taskId) => {
      reads.set(taskId, (reads.get(taskId) ?? 0) + 1);
      return reads.get(taskId) === 1 ? 600 : 0;
    };
    try {
      await Promise.all(
        taskIds.map(async (taskId) => {
          conductor.tasks.set(taskId, sampleTaskBytes(taskId, 0));
          const first = notifyTask(pair[0].server, { taskId });
          // The task changes once the first instance's read has reached Conductor.
          await eventually(`the first read of ${taskId}`, () => reads.get(taskId) === 1, { intervalMs: 5 });
          conductor.tasks.set(taskId, sampleTaskBytes(taskId, 1));
          expect((await notifyTask(pair[1].server, { taskId })).status).toBe(200);
          expect((await first).status).toBe(200);
        }),
      );
      const answeredAt = Date.now();
      // One batch read a sample: the window in which the older record is served is under a second.
      const stale = async () => {
        const { body } = await send(pair[0].server, 'post', '/api/tasks/batch', { ...AUTH, 'Content-Type': 'application/json' }, JSON.stringify({ taskIds }));
        return taskIds.filter((taskId) => updateNumberOf(body.subarray(body.indexOf(`"${taskId}":{`))) !== 1).length;
      };
      // Sampled until every task is served at its latest: the older record, produced last, is served
      // for a while, until the first instance's re-read produces the task again.
      let mostStale = 0;
      const convergedAt = await eventually(
        'every task to be served at its latest bytes',
        async () => {
          const count = await stale();
          mostStale = Math.max(mostStale, count);
          return count === 0 && Date.now();
        },
        { timeoutMs: 10_000, intervalMs: 50 },
      );
      process.stdout.write(
        `[measure] bridge race: ${taskIds.length} tasks, each notified to instance A (slow read of an older update) then B (the newer): up to ${mostStale} served stale after both answered, 0 after ${convergedAt - answeredAt} ms (re-read delay 1000 ms)\n`,
      );
      expect(mostStale).toBeGreaterThan(0);
      expect(convergedAt - answeredAt).toBeLessThan(1000 + 2000);
    } finally {
      conductor.delayMs = () => 0;
    }
  });
});
