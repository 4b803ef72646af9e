import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';
import kafkajs from 'kafkajs';
import { createApp } from '../src/app.factory.js';
import { AppConfig } from '../src/config/app-config.js';
import { TopicProvisioner } from '../src/kafka/topic-provisioner.js';
import { ROOT, testConfig } from './support/infra.js';

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
    await app.get(TopicProvisioner).ready;
    const kafka = new kafkajs.Kafka({ brokers: config.kafka.brokers, logLevel: kafkajs.logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    try {
      const metadata = await admin.fetchTopicMetadata({ topics: [config.kafka.topic, config.kafka.dlqTopic] });
      const partitions = Object.fromEntries(metadata.topics.map((topic) => [topic.name, topic.partitions.length]));
      expect(partitions).toEqual({ [config.kafka.topic]: 4, [config.kafka.dlqTopic]: 1 });
      const { resources } = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: 2, name: config.kafka.topic, configNames: ['cleanup.policy'] }],
      });
      expect(resources[0].configEntries[0].configValue).toBe('compact');
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

  it('serves HTTP', async () => {
    const address = app.getHttpServer().address();
    expect(typeof address === 'object' && address !== null && address.port > 0).toBe(true);
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

  it('exits non-zero with one line naming a bad variable', () => {
    const result = run({ AUTH_TOKENS: 't', PORT: 'not-a-port' });
    expect(result.status).not.toBe(0);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^task-cache: invalid configuration: PORT /);
  });

  it('refuses to start without a way to authenticate', () => {
    const result = run({});
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/no way to authenticate/);
  });
});
