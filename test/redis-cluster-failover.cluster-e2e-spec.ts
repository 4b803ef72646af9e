import { Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { INestApplication } from '@nestjs/common';
import { AppConfig } from '../src/config/app-config.js';
import { CapturedLogs } from './support/captured-logs.js';
import { eventually } from './support/eventually.js';
import { startIngestingApp } from './support/ingesting-app.js';
import { TEST_TOKEN, testConfig } from './support/infra.js';
import { CLUSTER_NODE_TIMEOUT_MS, PrivateRedisCluster } from './support/private-redis-cluster.js';
import { ProjectionReader } from './support/projection-reader.js';
import { ProjectionWatch } from './support/projection-watch.js';
import { sampleTaskBytes } from './support/sample-task.js';
import { TestKafka } from './support/test-kafka.js';

const TASKS = 120;
const ROUND_INTERVAL_MS = 250;
const READERS = 2;

/** What the HTTP readers saw: every status, each 503's time, and any version that went back. */
class Readers {
  readonly statuses = new Map<number, number>();
  readonly unavailableAt: number[] = [];
  readonly regressions: string[] = [];
  private readonly versions = new Map<string, [number, number]>();
  private running = true;
  private readonly loops: Promise<void>[];

  constructor(
    private readonly port: number,
    private readonly taskIds: readonly string[],
  ) {
    this.loops = Array.from({ length: READERS }, (_, reader) => this.run(reader));
  }

  get reads(): number {
    return [...this.statuses.values()].reduce((sum, count) => sum + count, 0);
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  private async run(reader: number): Promise<void> {
    for (let index = reader; this.running; index += READERS) {
      const taskId = this.taskIds[index % this.taskIds.length];
      const response = await fetch(`http://127.0.0.1:${this.port}/tasks/${taskId}`, { headers: { 'X-Authorization': TEST_TOKEN } });
      await response.arrayBuffer();
      this.statuses.set(response.status, (this.statuses.get(response.status) ?? 0) + 1);
      if (response.status === 503) this.unavailableAt.push(Date.now());
      if (response.status === 200) this.checkVersion(taskId, response.headers.get('etag') ?? '');
    }
  }

  /** Every task stays on one partition here, so its offset may only grow. */
  private checkVersion(taskId: string, etag: string): void {
    const [partition, offset] = etag.replaceAll('"', '').split('-').map(Number);
    const before = this.versions.get(taskId);
    if (before && before[0] === partition && offset < before[1]) this.regressions.push(`${taskId} read ${partition}-${offset} after ${before[0]}-${before[1]}`);
    this.versions.set(taskId, [partition, offset]);
  }
}

describe('a Redis Cluster master fails over under ingest and reads (a private cluster, a master SIGKILLed)', () => {
  let cluster: PrivateRedisCluster;
  let config: AppConfig;
  let logs: CapturedLogs;
  let app: INestApplication;
  let kafka: TestKafka;
  let reader: ProjectionReader;
  const taskIds = Array.from({ length: TASKS }, (_, index) => `failover-${index}`);
  /** Half the tasks get their last update just before the kill: nothing may lose it. */
  const stopBeforeKill = taskIds.filter((_, index) => index % 2 === 0);
  const lastUpdate = new Map<string, number>();

  const sendRound = async (ids: readonly string[], update: number) => {
    await kafka.send(config.kafka.topic, ids.map((taskId) => ({ key: taskId, value: sampleTaskBytes(taskId, update) })));
    for (const taskId of ids) lastUpdate.set(taskId, update);
  };
  const sumOf = (offsets: Map<number, number>) => [...offsets.values()].reduce((sum, offset) => sum + Math.max(offset, 0), 0);

  beforeAll(async () => {
    cluster = await PrivateRedisCluster.start();
    // The production retry bounds, so the pause measured here is the one a deployment sees.
    config = testConfig('failover', { redis: cluster.config, ingest: { retryInitialMs: 100, retryMaxMs: 2000 } });
    logs = new CapturedLogs();
    app = await startIngestingApp(config, logs);
    await app.listen(0);
    kafka = await TestKafka.connect(config.kafka.brokers);
    reader = new ProjectionReader(config.redis);
  });

  afterAll(async () => {
    await app?.close();
    await kafka?.close();
    await reader?.close();
    await cluster?.destroy();
  });

  it('reads answer 503 only while the slot has no master, ingest holds its offsets and resumes, and every task ends at its last event', async () => {
    const port = ((app.getHttpServer() as Server).address() as AddressInfo).port;
    let update = 0;
    await sendRound(taskIds, update);
    await eventually('the first round to be applied', async () => {
      const tasks = await reader.read(taskIds);
      return taskIds.every((taskId) => tasks.get(taskId)?.value?.equals(sampleTaskBytes(taskId, 0)));
    });

    const readers = new Readers(port, taskIds);
    const watch = new ProjectionWatch(reader, taskIds);
    let producing = true;
    let rounds = 0;
    const producer = (async () => {
      while (producing) {
        update += 1;
        rounds += 1;
        await sendRound(rounds <= 8 ? taskIds : taskIds.filter((taskId) => !stopBeforeKill.includes(taskId)), update);
        await sleep(ROUND_INTERVAL_MS);
      }
    })();
    let killedAt = 0;
    let promotedAt = 0;
    let victim = 0;
    let replica = 0;
    try {
      // Steady ingest and reads, then a master dies right after the last round of half the tasks.
      await eventually('eight rounds produced', () => rounds >= 8, { intervalMs: 20 });
      const [master] = await cluster.masters();
      victim = master.port;
      [replica] = master.replicas;
      expect(replica).toBeDefined();
      killedAt = Date.now();
      await cluster.killNode(victim);

      // No replica is promoted before the node timeout: until then every batch fails, and the
      // offsets must not move.
      await sleep(500);
      const committedEarly = await kafka.committedOffsets(config.kafka.groupId, config.kafka.topic);
      await sleep(Math.max(0, CLUSTER_NODE_TIMEOUT_MS - 500 - (Date.now() - killedAt)));
      const committedLate = await kafka.committedOffsets(config.kafka.groupId, config.kafka.topic);
      expect(committedLate).toEqual(committedEarly);
      expect(sumOf(await kafka.endOffsets(config.kafka.topic))).toBeGreaterThan(sumOf(committedLate));

      promotedAt = await eventually(
        `replica ${replica} to take over from master ${victim}`,
        async () => ((await cluster.masters()).some((node) => node.port === replica) ? Date.now() : undefined),
        { intervalMs: 50, timeoutMs: 60_000 },
      );
      // Ingest and reads go on on the new master for a while.
      await sleep(3000);
    } finally {
      producing = false;
      await producer;
    }

    let wrong: string[] = [];
    await eventually('every task at its last event', async () => {
      const tasks = await reader.read(taskIds);
      wrong = taskIds.filter((taskId) => !tasks.get(taskId)?.value?.equals(sampleTaskBytes(taskId, lastUpdate.get(taskId)!)));
      return wrong.length === 0;
    }).catch((error: Error) => {
      throw new Error(`${error.message}; still wrong: ${wrong.slice(0, 5).join(', ')} (${wrong.length})`);
    });
    const end = await kafka.endOffsets(config.kafka.topic);
    await eventually('every offset committed', async () => {
      const committed = await kafka.committedOffsets(config.kafka.groupId, config.kafka.topic);
      return [...end].every(([partition, offset]) => committed.get(partition) === offset);
    });
    // Reads are served again: one more full pass finds every task.
    await eventually('every task read with 200', async () => {
      const statuses = await Promise.all(
        taskIds.map(async (taskId) => (await fetch(`http://127.0.0.1:${port}/tasks/${taskId}`, { headers: { 'X-Authorization': TEST_TOKEN } })).status),
      );
      return statuses.every((status) => status === 200);
    });
    await readers.stop();
    await watch.stop();

    const unavailable = readers.statuses.get(503) ?? 0;
    const resumed = logs.matching(/^projection reachable again: .* resumes after \d+ ms and \d+ retries/);
    const pauses = resumed.map((line) => Number(/resumes after (\d+) ms/.exec(line.message)![1]));
    process.stdout.write(
      `[measure] master ${victim} SIGKILLed; replica ${replica} promoted ${promotedAt - killedAt} ms later (node timeout ${CLUSTER_NODE_TIMEOUT_MS} ms). ` +
        `Reads: ${readers.reads}, ${JSON.stringify(Object.fromEntries(readers.statuses))}; 503s from ${readers.unavailableAt.length ? readers.unavailableAt[0] - killedAt : '-'} ms ` +
        `to ${readers.unavailableAt.length ? readers.unavailableAt[readers.unavailableAt.length - 1] - killedAt : '-'} ms after the kill. ` +
        `Ingest: ${resumed.length} partitions resumed after ${Math.min(...pauses)}-${Math.max(...pauses)} ms; ${sumOf(end)} events, ${taskIds.length} tasks at their last event.\n`,
    );

    // Readers saw only 200s and brief 503s: never a 404 (an empty node), never a 500, never an older version.
    expect([...readers.statuses.keys()].filter((status) => status !== 200 && status !== 503)).toEqual([]);
    expect(unavailable).toBeGreaterThan(0);
    expect(readers.unavailableAt.every((at) => at >= killedAt)).toBe(true);
    expect(readers.regressions).toEqual([]);
    expect(watch.regressions).toEqual([]);
    // Ingest held its batches, said so, and resumed by itself; nothing was dead-lettered.
    expect(logs.matching(/^projection failing \(unreachable or refusing\); holding .* uncommitted, retrying in \d+ ms/).length).toBeGreaterThan(0);
    expect(resumed.length).toBeGreaterThan(0);
    expect(sumOf(await kafka.endOffsets(config.kafka.dlqTopic))).toBe(0);
    expect(logs.matching(/^dead-lettered/)).toEqual([]);
  });
});
