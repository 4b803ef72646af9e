import { setTimeout as sleep } from 'node:timers/promises';
import { AppConfig } from '../src/config/app-config.js';
import { KafkaClient } from '../src/kafka/kafka-client.js';
import { TopicProvisioner } from '../src/kafka/topic-provisioner.js';
import { freePort } from './support/server-process.js';
import { eventually } from './support/eventually.js';
import { TEST_TOKEN, testConfig } from './support/infra.js';
import { ProjectionReader } from './support/projection-reader.js';
import { ProjectionWatch } from './support/projection-watch.js';
import { sampleTaskBytes } from './support/sample-task.js';
import { serviceEnvironment, ServiceProcess } from './support/service-process.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { TestKafka } from './support/test-kafka.js';

// The built service (dist/main.js, from `npm run build`) as separate processes: killed, stopped
// and started the way an orchestrator does it.

const TASKS = 200;
const ROUNDS = 10;

const sum = (values: Iterable<number>) => [...values].reduce((total, value) => total + value, 0);

describe('the service process under SIGKILL and SIGTERM', () => {
  let config: AppConfig;
  let kafka: TestKafka;
  let reader: ProjectionReader;
  const services: ServiceProcess[] = [];

  const start = (overrides: Record<string, string> = {}) => {
    const service = new ServiceProcess(serviceEnvironment(config, overrides));
    services.push(service);
    return service;
  };

  /** Sends ROUNDS updates of every task, a round at a time with a pause between, in the background. */
  function produceStream(prefix: string, pauseMs: number): { taskIds: string[]; done: Promise<void> } {
    const taskIds = Array.from({ length: TASKS }, (_, index) => `${prefix}-${index}`);
    const done = (async () => {
      for (let update = 0; update < ROUNDS; update += 1) {
        await kafka.send(config.kafka.topic, taskIds.map((taskId) => ({ key: taskId, value: sampleTaskBytes(taskId, update) })));
        await sleep(pauseMs);
      }
    })();
    return { taskIds, done };
  }

  const allAtLastRound = async (taskIds: string[]) => {
    const tasks = await reader.read(taskIds);
    return taskIds.every((taskId) => tasks.get(taskId)?.value?.equals(sampleTaskBytes(taskId, ROUNDS - 1)));
  };

  // Each test gets a topic, group and key prefix of its own: none reads what another produced or committed.
  beforeEach(async () => {
    // A short session timeout: after a SIGKILL the group waits that long for the dead member.
    config = testConfig('ingest-process', { kafka: { sessionTimeoutMs: 6000 } });
    kafka = await TestKafka.connect(config.kafka.brokers);
    reader = new ProjectionReader(config.redis);
    // The topics as the service creates them, before any service runs: a test may produce a backlog first.
    await new TopicProvisioner(new KafkaClient(config.kafka), config.kafka).ensureTopics();
  });

  afterEach(async () => {
    for (const service of services.splice(0)) await service.stop();
    await kafka?.close();
    await reader?.close();
  });

  it('killed with SIGKILL mid-stream, twice, and started again: no task lost, none moves backwards, and the redeliveries are counted', async () => {
    // 400 tasks x 20 updates: half waiting when the first service starts, so it is busy with a
    // backlog when it is killed; the other half arriving while the services are killed and restarted.
    const taskIds = Array.from({ length: 2 * TASKS }, (_, index) => `kill-${index}`);
    const rounds = 2 * ROUNDS;
    const sendRound = (update: number) =>
      kafka.send(config.kafka.topic, taskIds.map((taskId) => ({ key: taskId, value: sampleTaskBytes(taskId, update) })));
    for (let update = 0; update < rounds / 2; update += 1) await sendRound(update);
    const watch = new ProjectionWatch(reader, taskIds);
    let done: Promise<void> = Promise.resolve();
    const redeliveries: number[] = [];
    try {
      for (const attempt of [1, 2]) {
        const before = sum((await kafka.committedOffsets(config.kafka.groupId, config.kafka.topic)).values());
        const service = start();
        if (attempt === 1) {
          done = (async () => {
            for (let update = rounds / 2; update < rounds; update += 1) {
              await sendRound(update);
              await sleep(300);
            }
          })();
        }
        // Killed shortly after it commits its first batch, while the batches fetched with it are
        // being decoded and applied.
        await eventually(`service ${attempt} to commit`, async () => sum((await kafka.committedOffsets(config.kafka.groupId, config.kafka.topic)).values()) > before, {
          intervalMs: 2,
        });
        await sleep(20);
        service.signal('SIGKILL');
        expect((await service.exited).signal).toBe('SIGKILL');

        // What the next service reads again: from each partition's committed offset up to the
        // highest offset the killed one had applied (each task's hash holds its last applied event).
        const committed = await kafka.committedOffsets(config.kafka.groupId, config.kafka.topic);
        const applied = await reader.highestAppliedOffsets(taskIds);
        let again = 0;
        for (const [partition, highest] of applied) again += Math.max(0, highest - Math.max(committed.get(partition) ?? 0, 0) + 1);
        redeliveries.push(again);
        process.stdout.write(
          `[measure] SIGKILL ${attempt}: committed ${JSON.stringify([...committed])}, applied up to ${JSON.stringify([...applied])}: ${again} events delivered again\n`,
        );
      }

      const last = start();
      await last.waitForOutput(/kafka consumer joined group/);
      await done;
      await eventually('every task at its last update after the restarts', async () => {
        const tasks = await reader.read(taskIds);
        return taskIds.every((taskId) => tasks.get(taskId)?.value?.equals(sampleTaskBytes(taskId, rounds - 1)));
      });
      const end = await kafka.endOffsets(config.kafka.topic);
      await eventually('the last service to commit everything', async () => {
        const now = await kafka.committedOffsets(config.kafka.groupId, config.kafka.topic);
        return [...end].every(([partition, offset]) => now.get(partition) === offset);
      });
    } finally {
      await done.catch(() => undefined);
      await watch.stop();
    }
    expect(watch.regressions).toEqual([]);
    expect(watch.polls).toBeGreaterThan(10);
    process.stdout.write(
      `[measure] SIGKILL: ${sum(redeliveries)} redeliveries (${redeliveries.join(' + ')}), ${watch.regressions.length} regressions over ${watch.polls} reads of ${taskIds.length} tasks\n`,
    );
  });

  it('on SIGTERM mid-stream, finishes and commits the batch in flight, then exits 0 within the shutdown bound', async () => {
    const service = start();
    await service.waitForOutput(/kafka consumer joined group/);
    const { taskIds, done } = produceStream('term', 100);
    await eventually('the first commits', async () => sum((await kafka.committedOffsets(config.kafka.groupId, config.kafka.topic)).values()) > 0, {
      intervalMs: 20,
    });
    await sleep(300);
    const signalledAt = Date.now();
    service.signal('SIGTERM');
    const exit = await service.exited;
    const tookMs = Date.now() - signalledAt;
    await done;
    process.stdout.write(`[measure] SIGTERM: exited with ${exit.code} after ${tookMs} ms\n`);

    expect(exit).toEqual({ code: 0, signal: null });
    expect(tookMs).toBeLessThan(15_000); // SHUTDOWN_TIMEOUT_MS, the bound main.ts enforces
    expect(service.lines(/kafka consumer stopped/)).toHaveLength(1);

    // Everything it applied was committed before it left: on each partition the committed offset
    // is right after the last event in Redis. Nothing applied stays uncommitted, nothing committed is missing.
    const committed = await kafka.committedOffsets(config.kafka.groupId, config.kafka.topic);
    const applied = await reader.highestAppliedOffsets(taskIds);
    for (const [partition, next] of committed) {
      // -1: the group committed nothing on that partition, which is right only if nothing was applied there.
      expect({ partition, committed: Math.max(next, 0) }).toEqual({ partition, committed: (applied.get(partition) ?? -1) + 1 });
    }
    expect(await allAtLastRound(taskIds)).toBe(false); // it stopped mid-stream

    // Started again, it carries on from there.
    const again = start();
    await again.waitForOutput(/kafka consumer joined group/);
    await eventually('every task at its last update', () => allAtLastRound(taskIds));
  });
});

describe('the service process while Kafka is unreachable', () => {
  it('serves HTTP, says Kafka is unreachable, and starts consuming by itself once Kafka answers', async () => {
    const brokerPort = await freePort();
    const config = testConfig('ingest-no-kafka', { http: { port: await freePort() }, kafka: { brokers: [`127.0.0.1:${brokerPort}`] } });
    const realBroker = testConfig('ingest-no-kafka').kafka.brokers[0];
    const service = new ServiceProcess(serviceEnvironment(config));
    const reader = new ProjectionReader(config.redis);
    let proxy: TcpProxy | undefined;
    let kafka: TestKafka | undefined;
    try {
      await service.waitForOutput(/task-cache listening on port/);
      const response = await fetch(`http://127.0.0.1:${config.http.port}/tasks/not-there`, { headers: { 'X-Authorization': TEST_TOKEN } });
      expect(response.status).toBe(404);
      // kafkajs says so on its first failed attempt (an error from Kafka: ... ECONNREFUSED); the
      // provisioner's own warning comes once kafkajs gives up its retries.
      await service.waitForLog({ level: 'error', context: 'Kafka', msg: /ECONNREFUSED 127\.0\.0\.1:\d+/ });

      // Kafka becomes reachable at the address the service was given.
      proxy = await TcpProxy.listen(brokerPort, realBroker);
      await service.waitForOutput(/kafka consumer joined group/);
      kafka = await TestKafka.connect([realBroker]);
      await kafka.send(config.kafka.topic, [{ key: 'late-task', value: sampleTaskBytes('late-task', 1) }]);
      await eventually('the event to be applied', async () => (await reader.read(['late-task'])).get('late-task')?.value?.equals(sampleTaskBytes('late-task', 1)));

      service.signal('SIGTERM');
      expect(await service.exited).toEqual({ code: 0, signal: null });
    } finally {
      await service.stop();
      await kafka?.close();
      await proxy?.close();
      await reader.close();
    }
  });
});
