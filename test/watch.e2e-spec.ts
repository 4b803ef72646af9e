import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { INestApplication } from '@nestjs/common';
import { createApp } from '../src/app.factory.js';
import { AppConfig } from '../src/config/app-config.js';
import { DrainState } from '../src/lifecycle/drain-state.js';
import { TaskCacheMetrics } from '../src/metrics/task-cache-metrics.js';
import { CapturedLogs } from './support/captured-logs.js';
import { eventually } from './support/eventually.js';
import { HttpAnswer, httpGet } from './support/http-get.js';
import { TEST_TOKEN, testConfig } from './support/infra.js';
import { untilConsuming } from './support/ingesting-app.js';
import { ProjectionHarness } from './support/projection-harness.js';
import { sampleTaskBytes } from './support/sample-task.js';
import { redisClient } from './support/test-redis.js';
import { TestKafka } from './support/test-kafka.js';

/**
 * Watches (`GET /tasks/{id}` with `Prefer: wait` and If-None-Match) through real Kafka and Redis (a
 * redis-server, or the local Redis Cluster with TC_REDIS_MODE=cluster): two instances in one
 * consumer group on one Redis, so the instance applying an event is often not the one holding the
 * watch, and the change reaches it through the sharded change channels.
 */

const AUTH = { 'X-Authorization': TEST_TOKEN };

/** A request started now, and when it was answered. */
interface Timed {
  answer: Promise<HttpAnswer & { at: number }>;
  startedAt: number;
}

describe('watch a task until it changes: Prefer: wait', () => {
  let config: AppConfig;
  const apps: INestApplication[] = [];
  const bases: string[] = [];
  let kafka: TestKafka;
  let harness: ProjectionHarness;

  function watch(base: string, taskId: string, headers: Record<string, string>, path = '/tasks/'): Timed {
    const startedAt = Date.now();
    return { startedAt, answer: httpGet(`${base}${path}${taskId}`, { ...AUTH, ...headers }).then((answer) => ({ ...answer, at: Date.now() })) };
  }

  async function produce(taskId: string, update: number, overrides: Record<string, unknown> = {}): Promise<void> {
    await kafka.send(config.kafka.topic, [{ key: taskId, value: sampleTaskBytes(taskId, update, overrides) }]);
  }

  async function served(base: string, taskId: string): Promise<HttpAnswer> {
    return eventually(`${taskId} to be served`, async () => {
      const answer = await httpGet(`${base}/tasks/${taskId}`, AUTH);
      return answer.status === 200 ? answer : false;
    });
  }

  async function held(app: INestApplication, count: number): Promise<void> {
    const metrics = app.get(TaskCacheMetrics);
    await eventually(`${count} watches to be held`, async () => (await metrics.watchesHeld.get()).values[0]?.value === count);
  }

  async function outcome(app: INestApplication, name: string): Promise<number> {
    return (await app.get(TaskCacheMetrics).watches.get()).values.find(({ labels }) => labels.outcome === name)?.value ?? 0;
  }

  beforeAll(async () => {
    config = testConfig('watch', { http: { maxHeldWatches: 50 } });
    for (let i = 0; i < 2; i++) {
      const app = await createApp(config);
      app.useLogger(new CapturedLogs());
      await app.listen(0);
      apps.push(app);
      bases.push(`http://127.0.0.1:${((app.getHttpServer() as Server).address() as AddressInfo).port}`);
    }
    await Promise.all(apps.map(untilConsuming));
    kafka = await TestKafka.connect(config.kafka.brokers);
    harness = await ProjectionHarness.open(config.redis, config.redis.keyPrefix);
  });

  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
    await kafka?.close();
    await harness?.close();
  });

  it('holds a watch of an unchanged task, on every instance, and answers it with the new bytes as soon as an event changes it', async () => {
    await produce('w-1', 0);
    const first = await served(bases[0], 'w-1');
    const etag = first.headers.etag!;
    const watches = bases.flatMap((base) => [watch(base, 'w-1', { 'If-None-Match': etag, Prefer: 'wait=30' }), watch(base, 'w-1', { 'If-None-Match': etag, Prefer: 'wait=30' }, '/api/tasks/')]);
    await Promise.all(apps.map((app) => held(app, 2)));

    const producedAt = Date.now();
    await produce('w-1', 1);
    for (const { answer } of watches) {
      const { status, headers, body, at } = await answer;
      expect(status).toBe(200);
      expect(headers.etag).not.toBe(etag);
      expect(headers['preference-applied']).toBe('wait=30');
      expect(body).toBe(sampleTaskBytes('w-1', 1).toString());
      expect(at - producedAt).toBeLessThan(10_000);
    }
    for (const app of apps) expect(await outcome(app, 'changed')).toBeGreaterThanOrEqual(2);
  });

  it('answers at once when the client is already behind, the task exists and the client has none, or it is gone', async () => {
    await produce('w-2', 0);
    const { headers } = await served(bases[0], 'w-2');
    await produce('w-2', 1);
    await eventually('w-2 to change', async () => (await httpGet(`${bases[0]}/tasks/w-2`, AUTH)).headers.etag !== headers.etag);

    const behind = await watch(bases[1], 'w-2', { 'If-None-Match': headers.etag!, Prefer: 'wait=30' }).answer;
    expect([behind.status, behind.body]).toEqual([200, sampleTaskBytes('w-2', 1).toString()]);
    const without = await watch(bases[1], 'w-2', { Prefer: 'wait=30' }).answer;
    expect(without.status).toBe(200);

    await kafka.send(config.kafka.topic, [{ key: 'w-2', value: null }]);
    await eventually('w-2 to be deleted', async () => (await httpGet(`${bases[0]}/tasks/w-2`, AUTH)).status === 404);
    const gone = await watch(bases[1], 'w-2', { 'If-None-Match': behind.headers.etag!, Prefer: 'wait=30' }).answer;
    expect(gone.status).toBe(404);
    expect(JSON.parse(gone.body)).toMatchObject({ status: 404, retryable: false });
  });

  it('holds a watch of a missing task until it appears, and one of a present task until it is deleted', async () => {
    const appears = watch(bases[0], 'w-3', { Prefer: 'wait=30' });
    await produce('w-4', 0);
    const { headers } = await served(bases[1], 'w-4');
    const deleted = watch(bases[1], 'w-4', { 'If-None-Match': headers.etag!, Prefer: 'wait=30' });
    await held(apps[0], 1);
    await held(apps[1], 1);

    await produce('w-3', 0);
    await kafka.send(config.kafka.topic, [{ key: 'w-4', value: null }]);
    expect((await appears.answer).status).toBe(200);
    expect((await deleted.answer).status).toBe(404);
  });

  it('answers 304 with the ETag when the wait ends unchanged, and 404 for a task still missing', async () => {
    await produce('w-5', 0);
    const { headers } = await served(bases[0], 'w-5');
    const unchanged = watch(bases[0], 'w-5', { 'If-None-Match': headers.etag!, Prefer: 'wait=2' });
    const missing = watch(bases[1], 'w-never', { Prefer: 'wait=2' });
    const [kept, absent] = await Promise.all([unchanged.answer, missing.answer]);
    expect([kept.status, kept.headers.etag, kept.headers['preference-applied'], kept.body]).toEqual([304, headers.etag, 'wait=2', '']);
    expect(kept.at - unchanged.startedAt).toBeGreaterThanOrEqual(1900);
    expect(kept.at - unchanged.startedAt).toBeLessThan(5000);
    expect(absent.status).toBe(404);
    expect(absent.at - missing.startedAt).toBeGreaterThanOrEqual(1900);
    expect(await outcome(apps[0], 'unchanged')).toBeGreaterThanOrEqual(1);
  });

  it('finds a change whose announcement was lost once its change subscriptions are re-established', async () => {
    await produce('w-6', 0);
    const { headers } = await served(bases[0], 'w-6');
    const watches = bases.map((base) => watch(base, 'w-6', { 'If-None-Match': headers.etag!, Prefer: 'wait=60' }));
    await Promise.all(apps.map((app) => held(app, 1)));

    // Written straight to Redis, as ingest does but without announcing it: nothing tells the watches.
    await harness.projection.applyBatch([{ taskId: 'w-6', value: sampleTaskBytes('w-6', 7), partition: 99, offset: '1', timestamp: Date.now() }]);
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (const app of apps) expect((await app.get(TaskCacheMetrics).watchesHeld.get()).values[0].value).toBe(1);

    // The subscriber connections drop; on resubscribing, each instance re-reads what it holds.
    const killedAt = Date.now();
    await killChangeSubscribers(config);
    for (const { answer } of watches) {
      const { status, body, at } = await answer;
      expect([status, body]).toEqual([200, sampleTaskBytes('w-6', 7).toString()]);
      expect(at - killedAt).toBeLessThan(10_000);
    }
  });

  it('ignores a wait it cannot honour (wait=0, garbage), and checks the token and the id before holding anything', async () => {
    await produce('w-7', 0);
    const { headers } = await served(bases[0], 'w-7');
    for (const prefer of ['wait=0', 'wait=abc', 'wait=-5', 'return=minimal']) {
      const started = Date.now();
      const answer = await httpGet(`${bases[0]}/tasks/w-7`, { ...AUTH, 'If-None-Match': headers.etag!, Prefer: prefer });
      expect([prefer, answer.status, answer.headers['preference-applied']]).toEqual([prefer, 304, undefined]);
      expect(Date.now() - started).toBeLessThan(1000);
    }
    const invalid = await httpGet(`${bases[0]}/tasks/${'x'.repeat(200)}`, { ...AUTH, Prefer: 'wait=30' });
    expect(invalid.status).toBe(400);
    const unauthenticated = await httpGet(`${bases[0]}/tasks/w-7`, { Prefer: 'wait=30' });
    expect(unauthenticated.status).toBe(401);
  });

  it('refuses a watch beyond WATCH_MAX_HELD with a retryable 503, and forgets the watches of clients that went away', async () => {
    const watches = Array.from({ length: 40 }, (_, index) => watch(bases[1], `w-limit-${index}`, { Prefer: 'wait=60' }));
    const leaving = Array.from({ length: 10 }, (_, index) => {
      const controller = new AbortController();
      const answer = fetch(`${bases[1]}/tasks/w-leaving-${index}`, { headers: { ...AUTH, Prefer: 'wait=60' }, signal: controller.signal }).catch(() => 'aborted');
      return { controller, answer };
    });
    await held(apps[1], 50);
    const refused = await httpGet(`${bases[1]}/tasks/w-limit-x`, { ...AUTH, Prefer: 'wait=60' });
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body)).toMatchObject({ status: 503, retryable: true });
    expect(await outcome(apps[1], 'refused')).toBe(1);
    await produce('w-limit-0', 0);
    expect((await watches[0].answer).status).toBe(200);

    for (const { controller } of leaving) controller.abort();
    expect(await Promise.all(leaving.map(({ answer }) => answer))).toEqual(Array(10).fill('aborted'));
    await held(apps[1], 39);
    expect(await outcome(apps[1], 'abandoned')).toBe(10);
    // The rest are answered by the drain below.
    void Promise.allSettled(watches.map(({ answer }) => answer));
  });

  it('answers every held watch at once when the instance drains, from a fresh read, with Connection: close, and holds no new one', async () => {
    await produce('w-8', 0);
    const { headers } = await served(bases[1], 'w-8');
    const kept = watch(bases[1], 'w-8', { 'If-None-Match': headers.etag!, Prefer: 'wait=60' });
    const appeared = watch(bases[1], 'w-9', { Prefer: 'wait=60' });
    await eventually('the watches of w-8 and w-9 to be held', async () => (await apps[1].get(TaskCacheMetrics).watchesHeld.get()).values[0].value === 41);
    // w-9 appears unannounced: only a read finds it.
    await harness.projection.applyBatch([{ taskId: 'w-9', value: sampleTaskBytes('w-9', 0), partition: 99, offset: '2', timestamp: Date.now() }]);

    const drainedAt = Date.now();
    apps[1].get(DrainState).begin();
    const answer = await kept.answer;
    expect([answer.status, answer.headers.etag, answer.headers.connection]).toEqual([304, headers.etag, 'close']);
    expect(answer.at - drainedAt).toBeLessThan(1000);
    const found = await appeared.answer;
    expect([found.status, found.body, found.headers.connection]).toEqual([200, sampleTaskBytes('w-9', 0).toString(), 'close']);
    expect((await apps[1].get(TaskCacheMetrics).watchesHeld.get()).values[0].value).toBe(0);
    expect(await outcome(apps[1], 'drained')).toBe(40);

    const afterDrain = await httpGet(`${bases[1]}/tasks/w-8`, { ...AUTH, 'If-None-Match': headers.etag!, Prefer: 'wait=60' });
    expect([afterDrain.status, afterDrain.headers['preference-applied']]).toEqual([304, undefined]);
  });
});

/** Closes every connection subscribed to the change channels, on every master. */
async function killChangeSubscribers(config: AppConfig): Promise<void> {
  const client = redisClient(config.redis);
  try {
    if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve));
    const nodes = 'nodes' in client ? client.nodes('master') : [client];
    for (const node of nodes) {
      const list = (await node.client('LIST')) as string;
      const ids = list
        .split('\n')
        .filter((line) => line.includes(' name=task-cache-changes '))
        .map((line) => /id=(\d+)/.exec(line)![1]);
      for (const id of ids) await node.client('KILL', 'ID', id);
    }
  } finally {
    client.disconnect();
  }
}
