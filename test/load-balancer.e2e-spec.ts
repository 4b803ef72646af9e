import { AppConfig } from '../src/config/app-config.js';
import { describeGroupAssignment, ownsAllPartitions } from './support/consumer-group.js';
import { eventually } from './support/eventually.js';
import { httpGet } from './support/http-get.js';
import { TEST_TOKEN, testConfig, uniqueName } from './support/infra.js';
import { ProjectionReader } from './support/projection-reader.js';
import { ReadLoad } from './support/read-load.js';
import { sampleTaskBytes, updateNumberOf } from './support/sample-task.js';
import { freePort } from './support/server-process.js';
import { serviceEnvironment, ServiceProcess } from './support/service-process.js';
import { TaskEventStream } from './support/task-event-stream.js';
import { TestHaproxy } from './support/test-haproxy.js';
import { TestKafka } from './support/test-kafka.js';

// Three built service processes (dist/main.js, from `npm run build`) behind HAProxy with the
// project's configuration (deploy/haproxy/haproxy.cfg), in one consumer group on a source topic of
// six partitions. They share the partitions and each serves every task; under steady reads through
// HAProxy and a steady stream of task updates on every partition, a rolling restart fails no read
// and loses no event, and a crash (SIGKILL) fails at most the reads it had in flight, its
// partitions move to the others and no event is lost. Each test first makes sure all three are up
// and own the partitions, so none depends on another's outcome.

const AUTH = { 'X-Authorization': TEST_TOKEN };
const INSTANCES = 3;
const PARTITIONS = 6;
/** Read clients, each with one read in flight at a time: the most reads a crash can catch in flight. */
const READ_CLIENTS = 4;
/** The service's default drain, which deploy/haproxy/haproxy.cfg's checks are set against. */
const DRAIN_MS = 5000;
/** Event stream: one update of each task per round, a round every ROUND_MS (150 events/s). */
const STREAM_TASKS = 30;
const ROUND_MS = 200;
const MAX_ROUNDS = 600;

interface Instance {
  readonly name: string;
  readonly port: number;
  process: ServiceProcess;
}

interface KafkaReadiness {
  phase: string;
  partitions: number[];
}

describe('three instances behind HAProxy, sharing the source topic', () => {
  let config: AppConfig;
  let kafka: TestKafka;
  let reader: ProjectionReader;
  let haproxy: TestHaproxy;
  const instances: Instance[] = [];

  const startProcess = async (instance: Pick<Instance, 'port'>) => {
    const service = new ServiceProcess(serviceEnvironment(config, { PORT: String(instance.port) }));
    await eventually(`the instance on port ${instance.port} to be ready`, async () => {
      const answer = await httpGet(`http://127.0.0.1:${instance.port}/health/ready`).catch(() => undefined);
      return answer?.status === 200;
    });
    return service;
  };

  /** The consumer's state as the instance's /health/ready reports it. */
  const kafkaReadiness = async (instance: Instance): Promise<KafkaReadiness> => {
    const body = JSON.parse((await httpGet(`http://127.0.0.1:${instance.port}/health/ready`)).body) as { details: { kafka: KafkaReadiness } };
    return body.details.kafka;
  };

  const group = () => describeGroupAssignment(kafka.admin, config.kafka.groupId, config.kafka.topic);

  /** Waits until the group is Stable with `members` members owning every partition; returns the wait in ms. */
  const groupOwnsAllPartitions = async (members: number, timeoutMs = 60_000): Promise<number> => {
    const started = Date.now();
    await eventually(`the group to be Stable with ${members} members owning all ${PARTITIONS} partitions`, async () => ownsAllPartitions(await group(), members, PARTITIONS), {
      timeoutMs,
      intervalMs: 100,
    });
    return Date.now() - started;
  };

  /**
   * Every test's precondition, whatever an earlier one left: all three instances running, UP in
   * HAProxy, and consuming in one Stable group that gives each some of the partitions.
   */
  const allInstancesServing = async () => {
    for (const instance of instances) if (!instance.process.running) instance.process = await startProcess(instance);
    for (const { name } of instances) await haproxy.waitForState(name, 'UP');
    await groupOwnsAllPartitions(INSTANCES);
    await eventually('every instance to consume some partitions', async () => {
      const states = await Promise.all(instances.map(kafkaReadiness));
      return states.every(({ phase, partitions }) => phase === 'consuming' && partitions.length > 0);
    });
  };

  /** Every task of the stream holds its last produced update, read from Redis. */
  const lastUpdatesApplied = (stream: TaskEventStream, timeoutMs = 60_000) =>
    eventually(
      `every task to hold update ${stream.lastRound}`,
      async () => {
        const tasks = await reader.read(stream.taskIds);
        return stream.taskIds.every((taskId) => {
          const value = tasks.get(taskId)?.value;
          return value !== null && value !== undefined && updateNumberOf(value) === stream.lastRound;
        });
      },
      { timeoutMs, intervalMs: 100 },
    );

  /** The group's committed offsets reach the end of every partition. */
  const committedToTheEnd = () =>
    eventually(
      'the group to commit up to the end of every partition',
      async () => {
        const [end, committed] = await Promise.all([kafka.endOffsets(config.kafka.topic), kafka.committedOffsets(config.kafka.groupId, config.kafka.topic)]);
        return end.size === PARTITIONS && [...end].every(([partition, offset]) => committed.get(partition) === offset) && end;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );

  /** A stream of its own for a test: its tasks are produced (round 0) and applied before it returns. */
  const seededStream = async (label: string) => {
    const stream = new TaskEventStream(kafka, config.kafka.topic, uniqueName(label), PARTITIONS, { tasks: STREAM_TASKS });
    await stream.seed();
    await lastUpdatesApplied(stream);
    return stream;
  };

  /** Reads of the stream's tasks in turn through HAProxy; a 200 must carry the task's own bytes at some update. */
  const readsThroughHaproxy = (stream: TaskEventStream) => {
    const urls = stream.taskIds.map((taskId) => `${haproxy.url}/api/tasks/${taskId}`);
    return new ReadLoad((read) => urls[read % urls.length], AUTH, {
      clients: READ_CLIENTS,
      check: (url, body) => {
        const taskId = url.slice(url.lastIndexOf('/') + 1);
        const update = updateNumberOf(Buffer.from(body));
        return update >= 0 && Buffer.from(body).equals(sampleTaskBytes(taskId, update)) ? undefined : `not the bytes of ${taskId}: ${body.slice(0, 100)}`;
      },
    });
  };

  beforeAll(async () => {
    TestHaproxy.assertInstalled();
    config = testConfig('lb', { kafka: { topicPartitions: PARTITIONS }, lifecycle: { shutdownDrainMs: DRAIN_MS, shutdownTimeoutMs: 15_000 } });
    kafka = await TestKafka.connect(config.kafka.brokers);
    // Created here, before the instances start, so that three of them do not race to create it.
    await kafka.createTaskTopics(config.kafka.topic, config.kafka.dlqTopic, PARTITIONS, 'compact');
    reader = new ProjectionReader(config.redis);
    const ports = new Set<number>();
    while (ports.size < INSTANCES) ports.add(await freePort());
    const started = await Promise.all([...ports].map((port) => startProcess({ port })));
    [...ports].forEach((port, index) => instances.push({ name: `tc${index + 1}`, port, process: started[index] }));
    haproxy = await TestHaproxy.start(instances);
  }, 120_000);

  afterAll(async () => {
    for (const instance of instances) await instance.process.stop();
    await haproxy?.stop();
    await kafka?.close();
    await reader?.close();
  });

  it('gives every instance some of the partitions, and any instance serves a task of any partition', async () => {
    await allInstancesServing();
    const owned = await Promise.all(instances.map(async (instance) => (await kafkaReadiness(instance)).partitions));
    const described = (await group()).members.map(({ partitions }) => partitions.join(',')).sort();
    process.stdout.write(`[measure] partitions per instance: ${instances.map(({ name }, index) => `${name} [${owned[index].join(', ')}]`).join(', ')}\n`);
    expect(owned.every((partitions) => partitions.length > 0)).toBe(true);
    expect(owned.flat().sort((a, b) => a - b)).toEqual([...Array(PARTITIONS).keys()]);
    // What each instance reports is what the group's coordinator assigned.
    expect(owned.map((partitions) => [...partitions].sort((a, b) => a - b).join(',')).sort()).toEqual(described);

    const stream = await seededStream('shared');
    for (const instance of instances) {
      for (const taskId of stream.taskIds) {
        const read = await httpGet(`http://127.0.0.1:${instance.port}/tasks/${taskId}`, AUTH);
        expect({ instance: instance.name, taskId, status: read.status }).toEqual({ instance: instance.name, taskId, status: 200 });
        expect(Buffer.from(read.body).equals(sampleTaskBytes(taskId, 0))).toBe(true);
      }
    }
  });

  it('spreads reads over the instances', async () => {
    await allInstancesServing();
    const pids = new Set<number>();
    for (let attempt = 0; attempt < 30 && pids.size < INSTANCES; attempt += 1) {
      const live = JSON.parse((await httpGet(`${haproxy.url}/health/live`)).body) as { details: { process: { pid: number } } };
      pids.add(live.details.process.pid);
    }
    expect(pids.size).toBe(INSTANCES);
  });

  it('holds watches (Prefer: wait) past the 5 s server timeout of HAProxy: answered on a change, or 304 when their wait ends, never a 504', async () => {
    await allInstancesServing();
    const [changing, unchanged] = [uniqueName('lb-watch-changing'), uniqueName('lb-watch-unchanged')];
    await kafka.send(config.kafka.topic, [changing, unchanged].map((taskId) => ({ key: taskId, value: sampleTaskBytes(taskId, 0) })));
    const etags = await Promise.all(
      [changing, unchanged].map((taskId) =>
        eventually(`${taskId} to be served through HAProxy`, async () => {
          const read = await httpGet(`${haproxy.url}/tasks/${taskId}`, AUTH);
          return read.status === 200 && read.headers.etag!;
        }),
      ),
    );
    const started = Date.now();
    const [onChange, onTimeout] = [changing, unchanged].map((taskId, index) =>
      httpGet(`${haproxy.url}/tasks/${taskId}`, { ...AUTH, 'If-None-Match': etags[index], Prefer: index === 0 ? 'wait=30' : 'wait=8' }).then((answer) => ({ ...answer, after: Date.now() - started })),
    );
    await new Promise((resolve) => setTimeout(resolve, 6000));
    await kafka.send(config.kafka.topic, [{ key: changing, value: sampleTaskBytes(changing, 1) }]);

    const changed = await onChange;
    expect([changed.status, changed.body]).toEqual([200, sampleTaskBytes(changing, 1).toString()]);
    expect(changed.after).toBeGreaterThanOrEqual(6000);
    expect(changed.after).toBeLessThan(16_000);
    const timedOut = await onTimeout;
    expect([timedOut.status, timedOut.headers.etag, timedOut.headers['preference-applied']]).toEqual([304, etags[1], 'wait=8']);
    expect(timedOut.after).toBeGreaterThanOrEqual(7900);
    expect(timedOut.after).toBeLessThan(12_000);
  });

  it('fails no read and loses no event during a rolling restart (SIGTERM one instance at a time, start its replacement, wait until it is up and consuming)', async () => {
    await allInstancesServing();
    const stream = await seededStream('rolling');
    const load = readsThroughHaproxy(stream);
    const timings: string[] = [];
    const retriesBefore = await haproxy.retries();
    let retries = retriesBefore;
    let roundsDuringRestart = 0;
    try {
      stream.start({ intervalMs: ROUND_MS, maxRounds: MAX_ROUNDS });
      await eventually('reads through haproxy and a few rounds of events', () => load.ok > 50 && stream.lastRound >= 3);
      const firstRound = stream.lastRound;
      for (const instance of instances) {
        const signalledAt = Date.now();
        instance.process.signal('SIGTERM');
        await haproxy.waitForState(instance.name, 'DOWN');
        const downAtMs = Date.now() - signalledAt;
        const exit = await instance.process.exited;
        const exitedAtMs = Date.now() - signalledAt;
        expect(exit).toEqual({ code: 0, signal: null });
        instance.process = await startProcess(instance);
        await haproxy.waitForState(instance.name, 'UP');
        const upAtMs = Date.now() - signalledAt;
        await groupOwnsAllPartitions(INSTANCES);
        timings.push(
          `${instance.name}: DOWN in haproxy ${downAtMs} ms after SIGTERM, exited 0 at ${exitedAtMs} ms, replacement UP at ${upAtMs} ms, group of 3 again at ${Date.now() - signalledAt} ms`,
        );
      }
      roundsDuringRestart = stream.lastRound - firstRound;
      const before = load.total;
      const roundBefore = stream.lastRound;
      await eventually('more reads and events after the restart', () => load.total > before + 50 && stream.lastRound >= roundBefore + 3);
      retries = await haproxy.retries();
    } finally {
      await load.stop();
      await stream.stop();
    }
    await lastUpdatesApplied(stream);
    const end = await committedToTheEnd();
    const retried = retries.retries - retriesBefore.retries + retries.redispatches - retriesBefore.redispatches;
    process.stdout.write(
      `[measure] rolling restart: ${load.total} reads, ${load.failed} failed ${JSON.stringify(load.failures.slice(0, 5))}, ${retried} retried by haproxy; ` +
        `${stream.produced} events produced (${stream.lastRound} rounds of ${STREAM_TASKS} tasks, ${roundsDuringRestart} during the restart), every task at its last update, ` +
        `group committed to the end offsets ${JSON.stringify(Object.fromEntries(end))}\n[measure] ${timings.join('\n[measure] ')}\n`,
    );
    expect(load.failures).toEqual([]);
    // Not even a retry: the drain took every instance out before it stopped accepting connections.
    expect(retried).toBe(0);
    expect(load.ok).toBeGreaterThan(100);
    // The stream went on through the whole restart.
    expect(roundsDuringRestart).toBeGreaterThan(10);
  }, 150_000);

  it('fails at most the reads in flight and loses no event when an instance is killed (SIGKILL): its partitions move to the others', async () => {
    await allInstancesServing();
    const stream = await seededStream('killed');
    const victim = instances[1];
    const victimPartitions = (await kafkaReadiness(victim)).partitions;
    const victimTasks = stream.tasksOn(victimPartitions);
    const load = readsThroughHaproxy(stream);
    const timings: string[] = [];
    const retriesBefore = await haproxy.retries();
    let retries = retriesBefore;
    try {
      stream.start({ intervalMs: ROUND_MS, maxRounds: MAX_ROUNDS });
      await eventually('reads through haproxy and a few rounds of events', () => load.ok > 50 && stream.lastRound >= 3);
      const killedAt = Date.now();
      victim.process.signal('SIGKILL');
      expect((await victim.process.exited).signal).toBe('SIGKILL');
      const reassigned = groupOwnsAllPartitions(INSTANCES - 1, config.kafka.sessionTimeoutMs + 30_000).then(() => Date.now() - killedAt);
      const appliedOnMovedPartitions = (async () => {
        // A round sent after the kill: on the victim's partitions, only the survivors can apply it.
        const round = await eventually('a round sent after the kill', () => stream.firstRoundSentAfter(killedAt), { intervalMs: 20 });
        await eventually(
          `update ${round} of the killed instance's tasks to be applied`,
          async () => [...(await reader.read(victimTasks)).values()].filter(({ value }) => value !== null && updateNumberOf(value) >= round).length === victimTasks.length,
          { timeoutMs: config.kafka.sessionTimeoutMs + 30_000, intervalMs: 100 },
        );
        return Date.now() - killedAt;
      })();
      const down = haproxy.waitForState(victim.name, 'DOWN').then(() => Date.now() - killedAt);
      const [downAtMs, reassignedAtMs, appliedAtMs] = await Promise.all([down, reassigned, appliedOnMovedPartitions]);
      timings.push(
        `${victim.name} (partitions [${victimPartitions.join(', ')}], ${victimTasks.length} tasks): DOWN in haproxy ${downAtMs} ms after SIGKILL; ` +
          `group of 2 owning all ${PARTITIONS} partitions at ${reassignedAtMs} ms; events sent after the kill to its partitions applied at ${appliedAtMs} ms`,
      );
      victim.process = await startProcess(victim);
      await haproxy.waitForState(victim.name, 'UP');
      await groupOwnsAllPartitions(INSTANCES);
      timings.push(`${victim.name}: replacement UP and the group of 3 again at ${Date.now() - killedAt} ms`);
      const before = load.total;
      const roundBefore = stream.lastRound;
      await eventually('more reads and events after the restart', () => load.total > before + 50 && stream.lastRound >= roundBefore + 3);
      retries = await haproxy.retries();
    } finally {
      await load.stop();
      await stream.stop();
    }
    await lastUpdatesApplied(stream);
    const end = await committedToTheEnd();
    const retried = retries.retries - retriesBefore.retries;
    const redispatched = retries.redispatches - retriesBefore.redispatches;
    process.stdout.write(
      `[measure] SIGKILL: ${load.total} reads, ${load.failed} failed ${JSON.stringify(load.failures)}, haproxy retried ${retried} and redispatched ${redispatched}; ` +
        `${stream.produced} events produced (${stream.lastRound} rounds of ${STREAM_TASKS} tasks), every task at its last update, ` +
        `group committed to the end offsets ${JSON.stringify(Object.fromEntries(end))}\n[measure] ${timings.join('\n[measure] ')}\n`,
    );
    // retry-on conn-failure/empty-response with redispatch sends each one elsewhere: none is
    // expected, and no more than the reads in flight when it died can fail.
    expect(load.failed).toBeLessThanOrEqual(READ_CLIENTS);
    expect(load.ok).toBeGreaterThan(100);
  }, 150_000);
});
