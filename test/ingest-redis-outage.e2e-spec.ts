import { setTimeout as sleep } from 'node:timers/promises';
import { INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';
import { AppConfig } from '../src/config/app-config.js';
import { CapturedLogs } from './support/captured-logs.js';
import { startIngestingApp } from './support/ingesting-app.js';
import { PrivateRedis } from './support/private-redis.js';
import { eventually } from './support/eventually.js';
import { testConfig } from './support/infra.js';
import { ProjectionReader } from './support/projection-reader.js';
import { ProjectionWatch } from './support/projection-watch.js';
import { sampleTaskBytes } from './support/sample-task.js';
import { TestKafka } from './support/test-kafka.js';

const TASKS = 150;
const ROUNDS = 12;

/** Calls of the apply script since this Redis started (EVAL on a new connection, then EVALSHA). */
async function applyScriptCalls(client: Redis): Promise<number> {
  const info = await client.info('commandstats');
  return [...info.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)].reduce((sum, match) => sum + Number(match[1]), 0);
}

describe('ingest while Redis goes down and comes back (a private redis-server)', () => {
  let redis: PrivateRedis;
  let config: AppConfig;
  let logs: CapturedLogs;
  let app: INestApplication;
  let kafka: TestKafka;
  let reader: ProjectionReader;
  const taskIds = Array.from({ length: TASKS }, (_, index) => `outage-${index}`);

  const sendRound = (update: number) =>
    kafka.send(config.kafka.topic, taskIds.map((taskId) => ({ key: taskId, value: sampleTaskBytes(taskId, update) })));
  const sumOf = (offsets: Map<number, number>) => [...offsets.values()].reduce((sum, offset) => sum + Math.max(offset, 0), 0);

  beforeAll(async () => {
    redis = await PrivateRedis.start({ durable: true });
    // The production retry bounds, so the resume time measured here is the one a deployment sees.
    config = testConfig('ingest-outage', { redis: { url: redis.url }, ingest: { retryInitialMs: 100, retryMaxMs: 2000 } });
    logs = new CapturedLogs();
    app = await startIngestingApp(config, logs);
    kafka = await TestKafka.connect(config.kafka.brokers);
    reader = new ProjectionReader(config.redis);
  });

  afterAll(async () => {
    await app?.close();
    await kafka?.close();
    await reader?.close();
    await redis?.destroy();
  });

  it('holds its offsets while Redis is down, dead-letters nothing, resumes by itself, and every task ends right', async () => {
    const watch = new ProjectionWatch(reader, taskIds);
    try {
      for (let update = 0; update < 4; update += 1) await sendRound(update);
      await eventually('the first rounds to be applied', async () => {
        const tasks = await reader.read(taskIds);
        return taskIds.every((taskId) => tasks.get(taskId)?.value?.equals(sampleTaskBytes(taskId, 3)));
      });

      // Redis crashes while events keep arriving.
      await redis.kill();
      const killedAt = Date.now();
      await sleep(300); // a batch applied just before the crash may still commit
      const committedEarly = await kafka.committedOffsets(config.kafka.groupId, config.kafka.topic);
      for (let update = 4; update < 8; update += 1) {
        await sendRound(update);
        await sleep(400);
      }
      await sleep(Math.max(0, 3000 - (Date.now() - killedAt)));
      const committedLate = await kafka.committedOffsets(config.kafka.groupId, config.kafka.topic);
      const end = await kafka.endOffsets(config.kafka.topic);
      expect(committedLate).toEqual(committedEarly);
      expect(sumOf(end)).toBeGreaterThan(sumOf(committedLate));
      expect(logs.matching(/^projection failing \(unreachable or refusing\); holding .* uncommitted, retrying in \d+ ms/).length).toBeGreaterThan(0);

      // Redis comes back: measure how long until the first batch is applied again.
      await redis.start();
      const backAt = Date.now();
      const probe = new Redis(redis.url, { disconnectTimeout: 10 });
      let resumedAt: number;
      try {
        resumedAt = await eventually('the consumer to apply a batch again', async () => ((await applyScriptCalls(probe)) > 0 ? Date.now() : undefined), {
          intervalMs: 10,
          timeoutMs: 30_000,
        });
      } finally {
        await probe.quit();
      }
      process.stdout.write(`[measure] Redis down for ${backAt - killedAt} ms; first batch applied ${resumedAt - backAt} ms after Redis answered PING again\n`);

      for (let update = 8; update < ROUNDS; update += 1) await sendRound(update);
      await eventually('every task at its last update', async () => {
        const tasks = await reader.read(taskIds);
        return taskIds.every((taskId) => tasks.get(taskId)?.value?.equals(sampleTaskBytes(taskId, ROUNDS - 1)));
      });
      const finalEnd = await kafka.endOffsets(config.kafka.topic);
      await eventually('every offset committed', async () => {
        const committed = await kafka.committedOffsets(config.kafka.groupId, config.kafka.topic);
        return [...finalEnd].every(([partition, offset]) => committed.get(partition) === offset);
      });
    } finally {
      await watch.stop();
    }

    expect(watch.regressions).toEqual([]);
    // Nothing was dead-lettered because of the outage.
    expect(sumOf(await kafka.endOffsets(config.kafka.dlqTopic))).toBe(0);
    expect(logs.matching(/^dead-lettered/)).toEqual([]);
    expect(logs.matching(/^projection reachable again: .* resumes after \d+ ms and \d+ retries/).length).toBeGreaterThan(0);
  });
});
