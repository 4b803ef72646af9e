// The start both benchmarks share: infrastructure up, the service built, and a Redis client and a
// Kafka admin for the run, each closed by the cleanup stack whatever the outcome.
import { Redis } from 'ioredis';
import { onCleanup } from './cleanup-stack.mjs';
import { bringUpInfrastructure } from './infrastructure.mjs';
import { buildService } from './service-process.mjs';
import { benchKafka } from './task-topic.mjs';

export async function openBenchStack(names) {
  const infra = bringUpInfrastructure();
  buildService();
  const redis = new Redis(infra.redisUrl, { maxRetriesPerRequest: 2, connectionName: names.name });
  onCleanup('disconnect from redis', () => redis.quit());
  const kafka = benchKafka(infra.kafkaBrokers, names.name);
  const admin = kafka.admin();
  await admin.connect();
  onCleanup('disconnect the kafka admin', () => admin.disconnect());
  return { infra, redis, kafka, admin };
}
