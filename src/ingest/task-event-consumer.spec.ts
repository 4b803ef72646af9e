import { jest } from '@jest/globals';
import { Logger, LoggerService } from '@nestjs/common';
import kafkajs, { type ConsumerRunConfig, type ConsumerSubscribeTopics, type EachBatchPayload, type PartitionAssigner } from 'kafkajs';
import { KafkaConfig, LifecycleConfig } from '../config/app-config.js';
import { IngestState } from '../kafka/ingest-state.js';
import { KafkaClient } from '../kafka/kafka-client.js';
import { StartupCatchUp } from '../kafka/startup-catch-up.js';
import { TopicProvisioner } from '../kafka/topic-provisioner.js';
import { IngestService } from './ingest.service.js';
import { TaskEventConsumer } from './task-event-consumer.js';

type Listener = (event: { payload: Record<string, unknown> }) => void;

/** Stands in for a kafkajs consumer: records calls, and lets a test fire its events. */
class FakeConsumer {
  readonly events = { CONNECT: 'consumer.connect', CRASH: 'consumer.crash', GROUP_JOIN: 'consumer.group_join' };
  readonly listeners = new Map<string, Listener>();
  subscribed: ConsumerSubscribeTopics | undefined;
  runConfig: ConsumerRunConfig | undefined;
  disconnected = false;
  readonly calls: string[] = [];
  connect = async (): Promise<void> => void this.calls.push('connect');
  disconnect = async (): Promise<void> => {
    this.calls.push('disconnect');
    this.disconnected = true;
  };

  constructor(readonly options: { retry: { restartOnFailure: (error: Error) => Promise<boolean> }; partitionAssigners?: PartitionAssigner[] }) {}

  on(event: string, listener: Listener): void {
    this.listeners.set(event, listener);
  }

  async subscribe(subscription: ConsumerSubscribeTopics): Promise<void> {
    this.subscribed = subscription;
  }

  async run(config: ConsumerRunConfig): Promise<void> {
    this.runConfig = config;
  }

  fire(event: 'CONNECT' | 'CRASH' | 'GROUP_JOIN', payload: Record<string, unknown> = {}): void {
    this.listeners.get(this.events[event])?.({ payload });
  }
}

/**
 * Stands in for a kafkajs cluster (which kafkajs hands to a consumer's assigner factories) and its
 * group coordinator: a group's members, what left, and errors to answer with first.
 */
class FakeCluster {
  members: string[] = [];
  readonly left: string[] = [];
  readonly leaveErrors: Error[] = [];
  connected = false;
  readonly coordinator = {
    describeGroups: async () => ({ groups: [{ members: this.members.map((memberId) => ({ memberId })) }] }),
    leaveGroup: async ({ memberId }: { groupId: string; memberId: string }) => {
      const error = this.leaveErrors.shift();
      if (error) throw error;
      this.left.push(memberId);
      this.members = this.members.filter((member) => member !== memberId);
    },
  };
  connect = async () => void (this.connected = true);
  refreshMetadata = async () => undefined;
  disconnect = async () => void (this.connected = false);
  findGroupCoordinator = async () => this.coordinator;
}

/** A topic check that lasts until the shutdown ends it, as the admin client's connection retries do. */
const untilAborted = (signal: AbortSignal) =>
  new Promise<void>((_, reject) => signal.addEventListener('abort', () => reject(new Error('Closed connection')), { once: true }));

/** A non-retriable protocol error as kafkajs builds it from a broker's error code (protocol/error.js). */
const brokerError = (type: string, message: string) =>
  new kafkajs.KafkaJSProtocolError(Object.assign(new Error(message), { type, retriable: false }));

/** A kafkajs protocol error as the coordinator answers it. */
const protocolError = (type: string, retriable: boolean) => Object.assign(new Error(type), { type, retriable });

const logs: string[] = [];
/** The fields of each line logged with fields first (`logger.error({ err }, text)`), in order. */
const logFields: unknown[] = [];
const keep =
  (level: string) =>
  (first: unknown, ...rest: unknown[]): void => {
    if (typeof first === 'string') return void logs.push(`${level} ${first}`);
    logFields.push(first);
    logs.push(`${level} ${rest[0] as string}`);
  };
const capture: LoggerService = { log: keep('log'), warn: keep('warn'), error: keep('error') };

/** Lets fake time pass, 10 ms at a time, until `check` holds (every test runs on fake timers). */
const eventually = async (check: () => boolean, timeoutMs = 5000) => {
  for (let waited = 0; !check(); waited += 10) {
    if (waited > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms of fake time`);
    await jest.advanceTimersByTimeAsync(10);
  }
};
/** Lets `ms` of fake time pass, running whatever timers fall due. */
const elapse = (ms: number) => jest.advanceTimersByTimeAsync(ms);

describe('TaskEventConsumer', () => {
  let consumers: FakeConsumer[];
  let cluster: FakeCluster;
  let nextConnect: (() => Promise<void>) | undefined;
  let provisioner: { ensureTopics: (signal: AbortSignal) => Promise<void>; calls: number };
  let state: IngestState;
  let catchUp: { follow: (signal: AbortSignal) => void; settled: () => Promise<void>; follows: number };
  let handled: EachBatchPayload[];
  let stoppedRetrying: boolean;
  let consumer: TaskEventConsumer;

  beforeAll(() => Logger.overrideLogger(capture));

  beforeEach(() => {
    // No real waits: retries, restarts and shutdown bounds run on fake time.
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    logs.length = 0;
    logFields.length = 0;
    consumers = [];
    cluster = new FakeCluster();
    nextConnect = undefined;
    handled = [];
    stoppedRetrying = false;
    provisioner = { ensureTopics: async () => void provisioner.calls++, calls: 0 };
    state = new IngestState();
    catchUp = { follow: () => void catchUp.follows++, settled: async () => undefined, follows: 0 };
    const client = {
      kafka: {
        consumer: (options: FakeConsumer['options']) => {
          const fake = new FakeConsumer(options);
          // Only a way to the cluster (see TaskEventConsumer.separateCluster): never connected, not counted.
          if (options.partitionAssigners) {
            for (const assigner of options.partitionAssigners) assigner({ cluster: cluster as never, groupId: 'group', logger: {} as never });
            return fake;
          }
          if (nextConnect) fake.connect = nextConnect;
          nextConnect = undefined;
          consumers.push(fake);
          return fake;
        },
      },
    } as unknown as KafkaClient;
    const ingest = {
      handleBatch: async (payload: EachBatchPayload) => void handled.push(payload),
      stopRetrying: () => void (stoppedRetrying = true),
    } as unknown as IngestService;
    const kafka: KafkaConfig = {
      brokers: ['localhost:9092'],
      clientId: 'task-cache',
      topic: 'tasks',
      dlqTopic: 'tasks.dlq',
      groupId: 'group',
      topicPartitions: 1,
      replicationFactor: 1,
      sessionTimeoutMs: 30000,
    };
    const lifecycle: LifecycleConfig = { shutdownTimeoutMs: 1500, shutdownDrainMs: 0 };
    consumer = new TaskEventConsumer(client, provisioner as unknown as TopicProvisioner, ingest, state, catchUp as unknown as StartupCatchUp, kafka, lifecycle);
  });

  afterEach(async () => {
    await consumer.beforeApplicationShutdown();
    jest.useRealTimers();
  });

  it('once the topics exist, subscribes from the earliest offset and runs with offsets resolved by ingest only', async () => {
    consumer.onApplicationBootstrap();
    await eventually(() => consumers[0]?.runConfig !== undefined);
    const [fake] = consumers;
    expect(fake.subscribed).toEqual({ topics: ['tasks'], fromBeginning: true });
    expect(fake.runConfig).toMatchObject({ eachBatchAutoResolve: false, autoCommit: true });
    const payload = {} as EachBatchPayload;
    await fake.runConfig!.eachBatch!(payload);
    expect(handled).toEqual([payload]);
  });

  it('starts in the background: boot does not wait for Kafka', async () => {
    provisioner.ensureTopics = untilAborted;
    expect(consumer.onApplicationBootstrap()).toBeUndefined();
    await elapse(20);
    expect(consumers).toHaveLength(0);
    expect(state.snapshot().phase).toBe('provisioning');
  });

  it('provisions the topics first on every start, and retries the whole start while Kafka is unreachable', async () => {
    let failures = 2;
    provisioner.ensureTopics = async () => {
      provisioner.calls += 1;
      const refused = new kafkajs.KafkaJSConnectionError('Connection error: connect ECONNREFUSED 127.0.0.1:9092');
      if (failures-- > 0) throw Reflect.construct(kafkajs.KafkaJSNumberOfRetriesExceeded, [refused, { retryCount: 8, retryTime: 5000 }]) as Error;
    };
    consumer.onApplicationBootstrap();
    await elapse(0);
    expect(consumers).toHaveLength(0);
    expect(state.snapshot()).toMatchObject({ phase: 'retrying', error: 'Connection error: connect ECONNREFUSED 127.0.0.1:9092' });
    await eventually(() => consumers[0]?.runConfig !== undefined, 10_000);
    expect(provisioner.calls).toBe(3);
    expect(logs.filter((line) => line.includes('could not check its topics'))).toEqual([
      expect.stringMatching(/^warn kafka consumer could not check its topics, retrying in \d+ ms: Connection error: connect ECONNREFUSED/),
      expect.stringMatching(/^warn kafka consumer could not check its topics, retrying in \d+ ms: Connection error: connect ECONNREFUSED/),
    ]);
    expect(state.snapshot().phase).toBe('joining');
    consumers[0].fire('GROUP_JOIN', { memberId: 'member-1', memberAssignment: { tasks: [1, 3] }, duration: 5 });
    expect(state.snapshot()).toMatchObject({ phase: 'consuming', partitions: [1, 3] });
  });

  it('stops retrying on an error that will not pass, says what is wrong and how to fix it, and reports `failed`', async () => {
    const invalid = Object.assign(brokerError('INVALID_REPLICATION_FACTOR', 'Replication-factor is invalid'), { topic: 'tasks' });
    provisioner.ensureTopics = async () => {
      provisioner.calls += 1;
      throw new kafkajs.KafkaJSAggregateError('Topic creation errors', [invalid]);
    };
    consumer.onApplicationBootstrap();
    await elapse(10 * 60_000);
    expect(provisioner.calls).toBe(1);
    expect(consumers).toHaveLength(0);
    const detail = 'topic tasks: INVALID_REPLICATION_FACTOR (Replication-factor is invalid); KAFKA_REPLICATION_FACTOR is larger than the number of brokers in the cluster';
    expect(state.snapshot()).toMatchObject({ phase: 'failed', error: detail });
    expect(logs.filter((line) => line.startsWith('error') || line.startsWith('warn'))).toEqual([
      `error kafka consumer could not check its topics and stops retrying: the error will not pass by waiting; ingest stays stopped (reads go on from Redis) until it is fixed and the service restarted: ${detail}`,
    ]);
    expect(logFields).toEqual([{ err: expect.any(kafkajs.KafkaJSAggregateError) }]);
  });

  it('retries with a new consumer when it cannot connect, and says so', async () => {
    nextConnect = async () => {
      throw new Error('Connection error: connect ECONNREFUSED 127.0.0.1:9092');
    };
    consumer.onApplicationBootstrap();
    await eventually(() => consumers[1]?.runConfig !== undefined);
    expect(consumers[0].disconnected).toBe(true);
    expect(logs).toContainEqual(expect.stringMatching(/^warn kafka consumer could not start, retrying in \d+ ms: Connection error/));
    expect(provisioner.calls).toBe(2);
  });

  it('leaves a restartable crash to kafkajs, and logs it', async () => {
    consumer.onApplicationBootstrap();
    await eventually(() => consumers[0]?.runConfig !== undefined);
    consumers[0].fire('CRASH', { error: new Error('KafkaJSNumberOfRetriesExceeded'), restart: true });
    expect(await consumers[0].options.retry.restartOnFailure(new Error('x'))).toBe(true);
    await elapse(50);
    expect(consumers).toHaveLength(1);
    expect(logs).toContainEqual(expect.stringMatching(/^warn kafka consumer crashed, kafkajs restarts it/));
  });

  it('restarts the consumer itself, topics first, after a crash kafkajs will not restart from but that may pass', async () => {
    consumer.onApplicationBootstrap();
    await eventually(() => consumers[0]?.runConfig !== undefined);
    consumers[0].fire('CRASH', { error: new Error('The coordinator is not aware of this member'), restart: false });
    expect(state.snapshot().phase).toBe('retrying');
    await eventually(() => consumers[1]?.runConfig !== undefined);
    expect(provisioner.calls).toBe(2);
    expect(consumers[0].disconnected).toBe(true);
    expect(logs).toContainEqual(expect.stringMatching(/^warn kafka consumer crashed and kafkajs will not restart it, retrying in \d+ ms: The coordinator/));
    consumers[1].fire('GROUP_JOIN', { memberId: 'member-2', memberAssignment: { tasks: [0, 2] }, duration: 12 });
    expect(logs).toContainEqual('log kafka consumer joined group group in 12 ms; consuming partitions [0, 2]');
  });

  it('does not restart after a crash on an error that will not pass, and reports `failed`', async () => {
    consumer.onApplicationBootstrap();
    await eventually(() => consumers[0]?.runConfig !== undefined);
    consumers[0].fire('GROUP_JOIN', { memberId: 'member-1', memberAssignment: { tasks: [0] }, duration: 5 });
    const denied = brokerError('GROUP_AUTHORIZATION_FAILED', 'Not authorized to access group: Group authorization failed');
    // As kafkajs's retrier hands on an error that is not retriable (retry/index.js).
    const bailed = Reflect.construct(kafkajs.KafkaJSNonRetriableError, [denied, { cause: denied }]) as Error;
    consumers[0].fire('CRASH', { error: bailed, restart: false });
    await elapse(10 * 60_000);
    expect(consumers).toHaveLength(1);
    expect(consumers[0].disconnected).toBe(true);
    expect(state.snapshot()).toMatchObject({ phase: 'failed', error: expect.stringMatching(/^GROUP_AUTHORIZATION_FAILED .*needs Read on the consumer group \(KAFKA_GROUP_ID\)$/) });
  });

  it('on shutdown, stops the retries, disconnects (kafkajs finishes and commits the batch in flight) and no longer restarts', async () => {
    consumer.onApplicationBootstrap();
    await eventually(() => consumers[0]?.runConfig !== undefined);
    await consumer.beforeApplicationShutdown();
    expect(stoppedRetrying).toBe(true);
    expect(consumers[0].disconnected).toBe(true);
    expect(await consumers[0].options.retry.restartOnFailure(new Error('x'))).toBe(false);
    consumers[0].fire('CRASH', { error: new Error('x'), restart: false });
    await elapse(1200);
    expect(consumers).toHaveLength(1);
  });

  it('disconnects a consumer that finishes connecting after the shutdown began, so no connection outlives it', async () => {
    let connected!: () => void;
    nextConnect = () => new Promise<void>((resolve) => (connected = resolve));
    consumer.onApplicationBootstrap();
    await eventually(() => connected !== undefined);
    const shutdown = consumer.beforeApplicationShutdown();
    await elapse(20);
    connected();
    consumers[0].calls.push('connected');
    await shutdown;
    expect(consumers[0].calls).toEqual(['disconnect', 'connected', 'disconnect']);
    expect(consumers[0].runConfig).toBeUndefined();
  });

  it('shuts down at once when Kafka never came up, ending the topic check under way', async () => {
    provisioner.ensureTopics = untilAborted;
    consumer.onApplicationBootstrap();
    await consumer.beforeApplicationShutdown();
    expect(consumers).toHaveLength(0);
    expect(state.snapshot().phase).toBe('stopped');
    expect(logs).not.toContainEqual(expect.stringMatching(/did not stop/));
  });

  it('bounds the shutdown when the consumer does not disconnect', async () => {
    consumer.onApplicationBootstrap();
    await eventually(() => consumers[0]?.runConfig !== undefined);
    consumers[0].disconnect = () => new Promise(() => undefined);
    const shutdown = consumer.beforeApplicationShutdown();
    await elapse(1000);
    await shutdown;
    expect(logs).toContainEqual('warn kafka consumer did not stop within 750 ms; closing anyway');
  });

  it('after a crash, removes its previous member from the group through connections of its own, and says once that the join would wait for it', async () => {
    consumer.onApplicationBootstrap();
    await eventually(() => consumers[0]?.runConfig !== undefined);
    consumers[0].fire('GROUP_JOIN', { memberId: 'member-1', memberAssignment: { tasks: [0] }, duration: 5 });
    cluster.members = ['member-1'];
    consumers[0].fire('CRASH', { error: new Error('No broker available'), restart: true });
    // kafkajs restarts it: the same consumer reaches the broker again, then joins as a new member.
    consumers[0].fire('CONNECT');
    consumers[0].fire('CONNECT');
    await eventually(() => cluster.left.length > 0 && !cluster.connected);
    expect(cluster.left).toEqual(['member-1']);
    const waits = logs.filter((line) => line.includes('previous member'));
    expect(waits).toEqual([
      'log kafka consumer rejoins group group as a new member; the group still holds its previous member member-1, which would hold the join until that member\'s session expires (up to 30000 ms): removing it',
    ]);

    // Joined as the new member: a later reconnect removes nothing.
    consumers[0].fire('GROUP_JOIN', { memberId: 'member-2', memberAssignment: { tasks: [0] }, duration: 5 });
    consumers[0].fire('CONNECT');
    await elapse(20);
    expect(cluster.left).toEqual(['member-1']);
  });

  it('a crash while a removal is under way has its own member removed once that removal ends', async () => {
    let release!: () => void;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    cluster.connect = async () => {
      await blocked;
      cluster.connected = true;
    };
    consumer.onApplicationBootstrap();
    await eventually(() => consumers[0]?.runConfig !== undefined);
    consumers[0].fire('GROUP_JOIN', { memberId: 'member-1', memberAssignment: { tasks: [0] }, duration: 5 });
    consumers[0].fire('CRASH', { error: new Error('x'), restart: true });
    consumers[0].fire('CONNECT');
    // The first removal waits on the broker; meanwhile the consumer joins as member-2 and crashes again.
    consumers[0].fire('GROUP_JOIN', { memberId: 'member-2', memberAssignment: { tasks: [0] }, duration: 5 });
    cluster.members = ['member-2'];
    consumers[0].fire('CRASH', { error: new Error('x'), restart: true });
    consumers[0].fire('CONNECT');
    release();
    await eventually(() => cluster.left.length > 0);
    expect(cluster.left).toEqual(['member-2']);
  });

  it('removes nothing, and says nothing, when the previous member already left or never was', async () => {
    consumer.onApplicationBootstrap();
    await eventually(() => consumers[0]?.runConfig !== undefined);
    consumers[0].fire('CONNECT');
    consumers[0].fire('GROUP_JOIN', { memberId: 'member-1', memberAssignment: { tasks: [0] }, duration: 5 });
    consumers[0].fire('CRASH', { error: new Error('x'), restart: true });
    consumers[0].fire('CONNECT');
    await elapse(20);
    expect(cluster.left).toEqual([]);
    expect(logs.filter((line) => line.includes('previous member'))).toEqual([]);
  });

  it('asks again while the coordinator is loading; a member whose session expired meanwhile is gone too', async () => {
    consumer.onApplicationBootstrap();
    await eventually(() => consumers[0]?.runConfig !== undefined);
    consumers[0].fire('GROUP_JOIN', { memberId: 'member-1', memberAssignment: { tasks: [0] }, duration: 5 });
    cluster.members = ['member-1'];
    cluster.leaveErrors.push(protocolError('COORDINATOR_LOAD_IN_PROGRESS', true));
    consumers[0].fire('CRASH', { error: new Error('x'), restart: true });
    consumers[0].fire('CONNECT');
    await eventually(() => cluster.left.length > 0);
    expect(cluster.left).toEqual(['member-1']);

    consumers[0].fire('GROUP_JOIN', { memberId: 'member-2', memberAssignment: { tasks: [0] }, duration: 5 });
    cluster.members = ['member-2'];
    cluster.leaveErrors.push(protocolError('UNKNOWN_MEMBER_ID', false));
    consumers[0].fire('CRASH', { error: new Error('x'), restart: true });
    consumers[0].fire('CONNECT');
    await eventually(() => !cluster.connected && cluster.leaveErrors.length === 0);
    expect(logs.filter((line) => line.startsWith('warn') && line.includes('previous member'))).toEqual([]);
  });

  it('says once that the join may wait out the session timeout when the previous member cannot be removed', async () => {
    consumer.onApplicationBootstrap();
    await eventually(() => consumers[0]?.runConfig !== undefined);
    consumers[0].fire('GROUP_JOIN', { memberId: 'member-1', memberAssignment: { tasks: [0] }, duration: 5 });
    cluster.members = ['member-1'];
    cluster.leaveErrors.push(protocolError('GROUP_AUTHORIZATION_FAILED', false));
    consumers[0].fire('CRASH', { error: new Error('x'), restart: true });
    consumers[0].fire('CONNECT');
    await eventually(() => logs.some((line) => line.startsWith('warn kafka consumer rejoins')));
    expect(logs.filter((line) => line.startsWith('warn kafka consumer rejoins'))).toEqual([
      'warn kafka consumer rejoins group group as a new member but could not remove its previous member member-1; the join may wait up to 30000 ms for that member\'s session to expire: GROUP_AUTHORIZATION_FAILED',
    ]);
  });

  describe('restart backoff after crashes kafkajs will not restart from', () => {
    const restartDelays = () => logs.flatMap((line) => /will not restart it, retrying in (\d+) ms/.exec(line)?.slice(1).map(Number) ?? []);
    /** Each restart delay against the backoff step it should come from (jitter: the upper half of the step). */
    const steps = (ceilings: number[]) =>
      restartDelays().map((delay, index) =>
        delay >= ceilings[index] / 2 && delay <= ceilings[index] ? `step ${ceilings[index]}` : `${delay} ms, not in [${ceilings[index] / 2}, ${ceilings[index]}]`,
      );
    const expected = (ceilings: number[]) => ceilings.map((ceiling) => `step ${ceiling}`);

    /** Joins, crashes right away, and lets the restart happen: the loop a crash after every join makes. */
    async function joinThenCrash(): Promise<void> {
      const current = consumers[consumers.length - 1];
      current.fire('GROUP_JOIN', { memberId: `member-${consumers.length}`, memberAssignment: { tasks: [0] }, duration: 5 });
      current.fire('CRASH', { error: new Error('The coordinator is not aware of this member'), restart: false });
      await jest.advanceTimersByTimeAsync(restartDelays().at(-1)!);
      expect(consumers[consumers.length - 1]).not.toBe(current);
      expect(consumers[consumers.length - 1].runConfig).toBeDefined();
    }

    it('keeps growing while every join is followed by a crash', async () => {
      consumer.onApplicationBootstrap();
      await jest.advanceTimersByTimeAsync(0);
      for (let crash = 0; crash < 6; crash += 1) await joinThenCrash();
      const ceilings = [1000, 2000, 4000, 8000, 16_000, 30_000];
      expect(steps(ceilings)).toEqual(expected(ceilings));
    });

    it('starts over once the consumer stayed joined for a minute; a rejoin meanwhile does not start the minute again', async () => {
      consumer.onApplicationBootstrap();
      await jest.advanceTimersByTimeAsync(0);
      for (let crash = 0; crash < 3; crash += 1) await joinThenCrash();
      const current = consumers[consumers.length - 1];
      current.fire('GROUP_JOIN', { memberId: 'member-stable', memberAssignment: { tasks: [0] }, duration: 5 });
      await jest.advanceTimersByTimeAsync(59_000);
      // A rejoin (a rebalance) while up does not start the minute again.
      current.fire('GROUP_JOIN', { memberId: 'member-stable', memberAssignment: { tasks: [0] }, duration: 5 });
      await jest.advanceTimersByTimeAsync(1_000);
      await joinThenCrash();
      const ceilings = [1000, 2000, 4000, 1000];
      expect(steps(ceilings)).toEqual(expected(ceilings));
    });
  });
});
