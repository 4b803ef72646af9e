import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { INestApplication } from '@nestjs/common';
import type { Message } from 'kafkajs';
import { createApp } from '../src/app.factory.js';
import { AppConfig } from '../src/config/app-config.js';
import { TaskCacheMetrics } from '../src/metrics/task-cache-metrics.js';
import { CapturedLogs } from './support/captured-logs.js';
import { eventually } from './support/eventually.js';
import { httpGet } from './support/http-get.js';
import { TEST_TOKEN, testConfig } from './support/infra.js';
import { startIngestingApp, untilConsuming } from './support/ingesting-app.js';
import { ProjectionReader } from './support/projection-reader.js';
import { sampleTaskBytes } from './support/sample-task.js';
import { TestKafka } from './support/test-kafka.js';

/**
 * Retention of finished tasks (PROJECTION_TERMINAL_TTL_SECONDS) through real Kafka and Redis (a
 * redis-server, or the local Redis Cluster with TC_REDIS_MODE=cluster), with a retention of
 * TTL_SECONDS: expiry counts from each event's Kafka timestamp, which the tests set themselves.
 */

const TTL_SECONDS = 3;
const TTL_MS = TTL_SECONDS * 1000;

type Status = 'SCHEDULED' | 'IN_PROGRESS' | 'COMPLETED' | 'FAILED' | 'CANCELED';
const update = (taskId: string, status: Status, timestamp: number, update = 0): Message => ({
  key: taskId,
  value: sampleTaskBytes(taskId, update, { status }),
  timestamp: String(timestamp),
});

const counted = async (metrics: TaskCacheMetrics, name: 'eventsRetained' | 'eventsExpiredOnArrival') => (await metrics[name].get()).values[0]?.value ?? 0;

describe('retention of finished tasks: PROJECTION_TERMINAL_TTL_SECONDS', () => {
  let config: AppConfig;
  let app: INestApplication;
  let base: string;
  let kafka: TestKafka;
  let reader: ProjectionReader;

  const status = async (taskId: string) => (await httpGet(`${base}/api/tasks/${taskId}`, { 'X-Authorization': TEST_TOKEN })).status;

  async function expectCommittedToEnd(groupId: string): Promise<void> {
    const end = await kafka.endOffsets(config.kafka.topic);
    await eventually(`group ${groupId} to commit every partition to its end`, async () => {
      const committed = await kafka.committedOffsets(groupId, config.kafka.topic);
      return [...end].every(([partition, offset]) => offset === 0 || committed.get(partition) === offset);
    });
  }

  beforeAll(async () => {
    config = testConfig('retention', { projection: { terminalTtlSeconds: TTL_SECONDS } });
    app = await createApp(config);
    app.useLogger(new CapturedLogs());
    await app.listen(0);
    await untilConsuming(app);
    base = `http://127.0.0.1:${((app.getHttpServer() as Server).address() as AddressInfo).port}`;
    kafka = await TestKafka.connect(config.kafka.brokers);
    reader = new ProjectionReader(config.redis);
  });

  afterAll(async () => {
    await app?.close();
    await kafka?.close();
    await reader?.close();
  });

  it('a completed task is served until its retention from the event timestamp has passed, then 404; running and re-opened tasks stay', async () => {
    const at = Date.now();
    await kafka.send(config.kafka.topic, [
      update('done', 'SCHEDULED', at - 20, 0),
      update('done', 'IN_PROGRESS', at - 10, 1),
      update('done', 'COMPLETED', at, 2),
      update('busy', 'SCHEDULED', at - 10, 0),
      update('busy', 'IN_PROGRESS', at, 1),
      update('reopened', 'FAILED', at - 10, 0),
      update('reopened', 'SCHEDULED', at, 1),
    ]);
    await eventually('the three tasks to be served', async () => (await Promise.all(['done', 'busy', 'reopened'].map(status))).every((code) => code === 200));
    // On a machine too slow to serve them within the retention there is nothing to see expire.
    if (Date.now() >= at + TTL_MS - 500) {
      console.warn(`retention e2e: the tasks were served ${Date.now() - at} ms after their events, too close to the ${TTL_MS} ms retention to watch it pass; skipped`);
      return;
    }

    // Its PTTL is at most what is left of the retention, read before the PTTL was asked for.
    const leftBefore = at + TTL_MS - Date.now();
    const ttl = await reader.ttl('done');
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(leftBefore + 50);
    const gone = await eventually('the completed task to be gone', async () => ((await status('done')) === 404 ? Date.now() : false), { timeoutMs: 10_000, intervalMs: 20 });
    // Redis expires it at the event's timestamp plus the retention, on its own clock (the same machine's).
    expect(gone).toBeGreaterThanOrEqual(at + TTL_MS - 20);
    expect(gone).toBeLessThan(at + TTL_MS + 1000);
    expect(await reader.ttl('done')).toBe(-2);

    expect(await status('busy')).toBe(200);
    expect(await status('reopened')).toBe(200);
    expect(await reader.ttl('busy')).toBe(-1);
    expect(await reader.ttl('reopened')).toBe(-1);
    expect(await counted(app.get(TaskCacheMetrics), 'eventsRetained')).toBeGreaterThanOrEqual(1);
  });

  it('events produced with a timestamp already past their retention are never readable, and keep their version as a marker', async () => {
    const taskIds = Array.from({ length: 40 }, (_, index) => `late-${index}`);
    const watched = [...taskIds, 'late-reopened'];
    const served: string[] = [];
    let watching = true;
    const watch = (async () => {
      while (watching) {
        for (const [index, code] of (await Promise.all(watched.map(status))).entries()) if (code !== 404 && watched[index] !== 'late-reopened') served.push(watched[index]);
      }
    })();
    const expiredBefore = await counted(app.get(TaskCacheMetrics), 'eventsExpiredOnArrival');
    const old = Date.now() - 2 * TTL_MS;
    await kafka.send(
      config.kafka.topic,
      taskIds.flatMap((taskId, index) => [update(taskId, 'IN_PROGRESS', old - 100, 1), update(taskId, index % 2 ? 'COMPLETED' : 'CANCELED', old, 2)]),
    );
    // An old finished task re-opened now is served again, from the later event.
    await kafka.send(config.kafka.topic, [update('late-reopened', 'COMPLETED', old, 2)]);
    await kafka.send(config.kafka.topic, [update('late-reopened', 'IN_PROGRESS', Date.now(), 3)]);
    await expectCommittedToEnd(config.kafka.groupId);
    watching = false;
    await watch;
    expect(served).toEqual([]);

    const stored = await reader.read(taskIds);
    expect(stored.size).toBe(taskIds.length);
    for (const task of stored.values()) expect(task.value).toBeNull();
    expect(await counted(app.get(TaskCacheMetrics), 'eventsExpiredOnArrival')).toBeGreaterThanOrEqual(expiredBefore + taskIds.length);
    expect(await status('late-reopened')).toBe(200);
    expect(await reader.ttl('late-reopened')).toBe(-1);
  });

  it('a replay of the topic from the earliest offset (the path a rebuild takes) holds what live ingest holds, before and after the retention passes', async () => {
    const taskIds = Array.from({ length: 60 }, (_, index) => `replay-${index}`);
    const at = Date.now();
    const messages: Message[] = [];
    taskIds.forEach((taskId, index) => {
      messages.push(update(taskId, 'SCHEDULED', at - 2 * TTL_MS - 200, 0), update(taskId, 'IN_PROGRESS', at - 2 * TTL_MS - 100, 1));
      if (index % 5 === 0) messages.push(update(taskId, 'COMPLETED', at - 2 * TTL_MS, 2)); // past its retention
      if (index % 5 === 1) messages.push(update(taskId, 'COMPLETED', at, 2)); // within it
      if (index % 5 === 2) messages.push(update(taskId, 'COMPLETED', at - 2 * TTL_MS, 2), update(taskId, 'IN_PROGRESS', at, 3)); // re-opened
      if (index % 5 === 3) messages.push({ key: taskId, value: null, timestamp: String(at) }); // deleted
    });
    await kafka.send(config.kafka.topic, messages);
    await expectCommittedToEnd(config.kafka.groupId);

    const replayConfig: AppConfig = {
      ...config,
      kafka: { ...config.kafka, groupId: `${config.kafka.groupId}.replay`, clientId: `${config.kafka.clientId}.replay` },
      redis: { ...config.redis, keyPrefix: `${config.redis.keyPrefix}replay:` },
    };
    const replay = await startIngestingApp(replayConfig, new CapturedLogs());
    const replayed = new ProjectionReader(replayConfig.redis);
    try {
      await expectCommittedToEnd(replayConfig.kafka.groupId);
      const readable = async (projection: ProjectionReader) =>
        [...(await projection.read(taskIds)).entries()].filter(([, task]) => task.value !== null).map(([taskId, task]) => `${taskId} ${task.partition}-${task.offset} ${task.value!.toString('base64')}`).sort();
      const compare = async () => {
        const [live, rebuilt] = await Promise.all([readable(reader), readable(replayed)]);
        expect(rebuilt).toEqual(live);
        return live.length;
      };
      // Both hold the running and re-opened tasks, and those finished within their retention while it lasts.
      const comparedAt = Date.now();
      const held = await compare();
      if (comparedAt < at + TTL_MS - 200) expect(held).toBe(36);
      else if (comparedAt > at + TTL_MS + 200) expect(held).toBe(24);
      const expiries = await Promise.all(taskIds.filter((_, index) => index % 5 === 1).map(async (taskId) => [await reader.ttl(taskId), await replayed.ttl(taskId)]));
      for (const [live, rebuilt] of expiries) if (live > 0) expect(Math.abs(live - rebuilt)).toBeLessThan(500);

      await eventually('the retention to pass', () => Date.now() > at + TTL_MS + 100);
      expect(await compare()).toBe(24);
      const replayMetrics = replay.get(TaskCacheMetrics);
      expect(await counted(replayMetrics, 'eventsExpiredOnArrival')).toBeGreaterThanOrEqual(12);
    } finally {
      await replay.close();
      await replayed.close();
    }
  });
});
