// A quick measurement of ingest throughput on the local infrastructure; not a test, and not the
// formal benchmark (bench/). Run after `npm run build`:
//   node test/support/measure-ingest-throughput.mjs [events=20000] [tasks=2000]
// Produces seed-shaped task events (~1.3 KB) to a fresh 4-partition topic, then times, from the
// start of the first batch to the end of the last, (1) a kafkajs consumer that does nothing with
// its batches and (2) the built service's ingest (decode, validate, apply to Redis, then kafkajs
// commits). Each on its own group, reading the whole topic from the beginning.
// Plain JS on dist/: no compile step; its topic and keys are deleted at the end.
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import kafkajs from 'kafkajs';

const ROOT = join(import.meta.dirname, '..', '..');
const { createApp } = await import(join(ROOT, 'dist', 'app.factory.js'));
const { TopicProvisioner } = await import(join(ROOT, 'dist', 'kafka', 'topic-provisioner.js'));
const { IngestService } = await import(join(ROOT, 'dist', 'ingest', 'ingest.service.js'));

const EVENTS = Number(process.argv[2] ?? 20000);
const TASKS = Number(process.argv[3] ?? 2000);
const infra = Object.fromEntries(
  readFileSync(join(ROOT, '.local', 'infra.env'), 'utf8')
    .split('\n')
    .filter((line) => line.includes('='))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1).trim()]),
);
const name = `measure-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
const config = {
  http: { port: 0 },
  kafka: {
    brokers: infra.KAFKA_BROKERS.split(','),
    clientId: name,
    topic: `${name}.tasks`,
    dlqTopic: `${name}.tasks.dlq`,
    groupId: `${name}.service`,
    topicPartitions: 4,
    replicationFactor: 1,
    sessionTimeoutMs: 10000,
  },
  redis: { url: infra.REDIS_URL, keyPrefix: `${name}:`, commandTimeoutMs: 2000 },
  projection: { tombstoneTtlSeconds: 3600 },
  ingest: { retryInitialMs: 100, retryMaxMs: 2000 },
  auth: { tokens: ['measure-token'], keys: new Map(), jwtTtlSeconds: 3600 },
  lifecycle: { shutdownTimeoutMs: 15000, logLevel: 'warn' },
};

const seed = JSON.parse(readFileSync(join(ROOT, 'scripts', 'samples', 'seed-task.json'), 'utf8'));
const statuses = ['SCHEDULED', 'IN_PROGRESS', 'COMPLETED'];
const task = (taskId, update) =>
  Buffer.from(
    JSON.stringify({
      ...seed,
      taskId,
      status: statuses[update % 3],
      pollCount: update,
      updateTime: 1734697335733 + update,
      outputData: { update, note: 'x'.repeat(230) },
    }),
  );

const kafka = new kafkajs.Kafka({ clientId: name, brokers: config.kafka.brokers, logLevel: kafkajs.logLevel.NOTHING });
const admin = kafka.admin();
await admin.connect();

/** Wraps a batch handler to time it: from the start of the first batch to the end of the one that completes `total`. */
function timed(handle, total) {
  let first;
  let count = 0;
  let finish;
  const finished = new Promise((resolve) => (finish = resolve));
  const wrapped = async (payload) => {
    first ??= Date.now();
    await handle(payload);
    count += payload.batch.messages.length;
    if (count >= total) {
      const ms = Date.now() - first;
      finish({ ms, eventsPerSecond: Math.round((count / Math.max(ms, 1)) * 1000) });
    }
  };
  return { wrapped, finished };
}

// The service creates the topic; produce once it exists.
const app = await createApp(config);
await app.init();
await app.get(TopicProvisioner).ready;
// Stop its consumer before producing: it would otherwise consume while events are produced.
await app.close();

const producer = kafka.producer({ createPartitioner: kafkajs.Partitioners.DefaultPartitioner });
await producer.connect();
for (let start = 0; start < EVENTS; start += 500) {
  const messages = [];
  for (let index = start; index < Math.min(start + 500, EVENTS); index += 1) {
    const taskId = `measure-task-${index % TASKS}`;
    messages.push({ key: taskId, value: task(taskId, Math.floor(index / TASKS)) });
  }
  await producer.send({ topic: config.kafka.topic, messages });
}
await producer.disconnect();
const bytes = task('measure-task-0', 0).length;
console.log(`produced ${EVENTS} events of ~${bytes} bytes for ${TASKS} tasks to ${config.kafka.topic}`);

// (1) A kafkajs consumer that does nothing (kafkajs resolves and commits each batch itself).
const idleTimer = timed(async () => undefined, EVENTS);
const idle = kafka.consumer({ groupId: `${name}.do-nothing`, maxWaitTimeInMs: 1000 });
await idle.connect();
await idle.subscribe({ topics: [config.kafka.topic], fromBeginning: true });
await idle.run({ eachBatch: idleTimer.wrapped });
const baseline = await idleTimer.finished;
await idle.disconnect();
console.log(`do-nothing kafkajs consumer: ${baseline.eventsPerSecond} events/s (${baseline.ms} ms)`);

// (2) The service's ingest, in process, on the same topic; its batch handler timed the same way.
const service = await createApp(config);
const ingestService = service.get(IngestService);
const ingestTimer = timed(ingestService.handleBatch.bind(ingestService), EVENTS);
ingestService.handleBatch = ingestTimer.wrapped;
await service.init();
const ingest = await ingestTimer.finished;
await service.close();
console.log(`task-cache ingest: ${ingest.eventsPerSecond} events/s (${ingest.ms} ms); ratio to do-nothing ${(ingest.eventsPerSecond / baseline.eventsPerSecond).toFixed(2)}`);

// Clean up what this run created.
await admin.deleteTopics({ topics: [config.kafka.topic, config.kafka.dlqTopic] });
await admin.disconnect();
const redis = new Redis(config.redis.url);
let cursor = '0';
do {
  const [next, keys] = await redis.scan(cursor, 'MATCH', `${config.redis.keyPrefix}*`, 'COUNT', 1000);
  if (keys.length > 0) await redis.unlink(...keys);
  cursor = next;
} while (cursor !== '0');
await redis.quit();
