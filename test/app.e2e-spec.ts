import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';
import kafkajs from 'kafkajs';
import { createApp } from '../src/app.factory.js';
import { AppConfig } from '../src/config/app-config.js';
import { IngestState } from '../src/kafka/ingest-state.js';
import { CapturedLogs } from './support/captured-logs.js';
import { eventually } from './support/eventually.js';
import { untilConsuming } from './support/ingesting-app.js';
import { ROOT, TEST_TOKEN, testConfig } from './support/infra.js';

describe('the application on real Kafka and Redis', () => {
  let config: AppConfig;
  let app: INestApplication;

  beforeAll(async () => {
    config = testConfig('app');
    app = await createApp(config);
    await app.listen(0);
  });

  afterAll(async () => {
    await app?.close();
  });

  it('creates its topics: the source compacted with the configured partitions, and the dead-letter topic', async () => {
    await untilConsuming(app);
    const kafka = new kafkajs.Kafka({ brokers: config.kafka.brokers, logLevel: kafkajs.logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    try {
      const metadata = await admin.fetchTopicMetadata({ topics: [config.kafka.topic, config.kafka.dlqTopic] });
      const partitions = Object.fromEntries(metadata.topics.map((topic) => [topic.name, topic.partitions.length]));
      expect(partitions).toEqual({ [config.kafka.topic]: 4, [config.kafka.dlqTopic]: 1 });
      const { resources } = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: 2, name: config.kafka.topic, configNames: ['cleanup.policy', 'max.message.bytes'] }],
      });
      const entries = Object.fromEntries(resources[0].configEntries.map((entry) => [entry.configName, entry.configValue]));
      // Room for a 1 MiB value with its overhead, which the broker's default would refuse.
      expect(entries).toEqual({ 'cleanup.policy': 'compact', 'max.message.bytes': String(1024 * 1024 + 64 * 1024) });
    } finally {
      await admin.disconnect();
    }
  });

  it('initialises the generation pointer in Redis under its key prefix', async () => {
    const redis = new Redis(config.redis.url);
    try {
      expect(await redis.hget(`${config.redis.keyPrefix}projection`, 'current')).toBe('1');
    } finally {
      redis.disconnect();
    }
  });

  it('serves HTTP: a request without a token gets a JSON 401', async () => {
    const { port } = app.getHttpServer().address();
    const response = await fetch(`http://127.0.0.1:${port}/tasks/any`);
    expect(response.status).toBe(401);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await response.json()).toMatchObject({ status: 401, retryable: false });
  });
});

describe('the application while Kafka is unreachable', () => {
  it('serves reads from Redis, and closes cleanly while its topic check is still retrying', async () => {
    const config = testConfig('no-kafka', { kafka: { brokers: ['127.0.0.1:1'] } });
    const app = await createApp(config);
    try {
      await app.listen(0);
      const { port } = app.getHttpServer().address();
      const response = await fetch(`http://127.0.0.1:${port}/tasks/never-produced`, { headers: { 'X-Authorization': TEST_TOKEN } });
      expect(response.status).toBe(404);
      await new Promise((resolve) => setTimeout(resolve, 1500));
    } finally {
      const closing = Date.now();
      await app.close();
      expect(Date.now() - closing).toBeLessThan(10_000);
    }
  });
});

describe('the application when Kafka refuses its configuration', () => {
  it('stops retrying at once, says which setting is wrong, reports `failed`, and goes on serving reads', async () => {
    // One broker: a replication factor of 3 can never be met, however long it waits.
    const config = testConfig('bad-replication', { kafka: { replicationFactor: 3 } });
    // Not echoed: the error it logs is the one expected.
    const logs = new CapturedLogs([]);
    const app = await createApp(config);
    app.useLogger(logs);
    try {
      await app.listen(0);
      const state = app.get(IngestState);
      const failed = await eventually('the consumer to give up', () => state.snapshot().phase === 'failed' && state.snapshot());
      expect(failed.error).toBe(
        `topic ${config.kafka.topic}: INVALID_REPLICATION_FACTOR (Replication-factor is invalid); KAFKA_REPLICATION_FACTOR is larger than the number of brokers in the cluster; ` +
          `topic ${config.kafka.dlqTopic}: INVALID_REPLICATION_FACTOR (Replication-factor is invalid); KAFKA_REPLICATION_FACTOR is larger than the number of brokers in the cluster`,
      );
      await new Promise((resolve) => setTimeout(resolve, 3000));
      // One line, at error level, and no retries after it.
      expect(logs.matching(/kafka consumer/)).toEqual([
        {
          level: 'error',
          context: 'IngestConsumer',
          message: `kafka consumer could not check its topics and stops retrying: the error will not pass by waiting; ingest stays stopped (reads go on from Redis) until it is fixed and the service restarted: ${failed.error}`,
          fields: { err: expect.any(Error) },
        },
      ]);
      const { port } = app.getHttpServer().address();
      const response = await fetch(`http://127.0.0.1:${port}/tasks/never-produced`, { headers: { 'X-Authorization': TEST_TOKEN } });
      expect(response.status).toBe(404);
    } finally {
      await app.close();
    }
  });
});

describe('the service process', () => {
  // The built artifact, as it is deployed: `npm test` builds before the e2e suites run.
  const main = join(ROOT, 'dist', 'main.js');
  const run = (env: Record<string, string>) =>
    spawnSync(process.execPath, [main], {
      env: { PATH: process.env.PATH ?? '', ...env },
      encoding: 'utf8',
      timeout: 60_000,
    });

  it('in Node itself, reads fetched batches with the hardened decoder even where kafkajs loaded its fetch decoders first', () => {
    // jest's module cache ignores deletions, so this runs in a plain node process, on the built code.
    const script = `
      import { createRequire } from 'node:module';
      const require = createRequire(${JSON.stringify(join(ROOT, 'package.json'))});
      const response = require.resolve('kafkajs/src/protocol/requests/fetch/v11/response.js');
      require(response);
      const { hardenKafkajsBatchDecoding } = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'dist', 'kafka', 'kafkajs-hardening.js')).href)});
      hardenKafkajsBatchDecoding();
      const decodeMessages = require('kafkajs/src/protocol/requests/fetch/v4/decodeMessages.js');
      console.log(JSON.stringify({ dropped: require.cache[response] === undefined, decoder: decodeMessages.name }));
    `;
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toEqual({ dropped: true, decoder: 'decodeMessagesOneBatchAtATime' });
  });

  it('exits non-zero with one line naming a bad variable', () => {
    const result = run({ AUTH_TOKENS: 't', PORT: 'not-a-port' });
    expect(result.status).toBe(78);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^task-cache: invalid configuration: PORT /);
  });

  it('exits 78 naming READ_MISSING_TASK_STATUS when it is neither 404 nor 204', () => {
    const result = run({ AUTH_TOKENS: 't', READ_MISSING_TASK_STATUS: '200' });
    expect(result.status).toBe(78);
    expect(result.stderr.trim()).toBe('task-cache: invalid configuration: READ_MISSING_TASK_STATUS must be 404 or 204');
  });

  it('refuses to start without a way to authenticate', () => {
    const result = run({});
    expect(result.status).toBe(78);
    expect(result.stderr).toMatch(/no way to authenticate/);
  });
});
