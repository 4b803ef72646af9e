import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, Redis } from 'ioredis';
import { AppConfig } from '../src/config/app-config.js';
import type { InstanceHeartbeat } from '../src/projection/instance-heartbeat.js';
import { ProjectionKeys } from '../src/projection/projection-keys.js';
import type { RebuildState } from '../src/rebuild/rebuild-state.js';
import { eventually } from './support/eventually.js';
import { compareSnapshots, generationKeys, generationSnapshot, StoredHash } from './support/generation-snapshot.js';
import { httpGet } from './support/http-get.js';
import { TEST_TOKEN, testConfig, uniqueName } from './support/infra.js';
import { MonotonicReader, ReadPlan } from './support/monotonic-reader.js';
import { RebuildCommand, runRebuildCommand } from './support/rebuild-command.js';
import { sampleTaskBytes } from './support/sample-task.js';
import { freePort } from './support/server-process.js';
import { serviceEnvironment, ServiceProcess } from './support/service-process.js';
import { TaskEventStream } from './support/task-event-stream.js';
import { TestKafka } from './support/test-kafka.js';
import { redisClient, RedisTarget, startPrivateRedis } from './support/test-redis.js';

// `npm run rebuild` (dist/rebuild/main.js, from `npm run build`) against real Kafka and Redis, with
// two built service instances (dist/main.js) sharing one consumer group on a source topic of six
// partitions seeded with TASKS tasks × SEED_UPDATES updates (and a few deleted tasks). Each test has
// a topic, group and key prefix of its own. The replay runs at --max-rate MAX_RATE, so it lasts
// several seconds and a kill, a second rebuild, an abort or a Redis restart lands in the middle of it.
//
// "The same as a projection built from scratch": a third instance with a fresh group and a fresh key
// prefix on the same topic, started once nothing more is produced, ready (caught up with the topic
// as it was at its start); its generation is compared with the rebuilt one key for key, field for
// field (v, p, o, t).
//
// Figures are printed as `[measure]` lines; TC_DEBUG_REBUILD=1 also prints every rebuild command's
// output after each test.

const AUTH = { 'X-Authorization': TEST_TOKEN };
const PARTITIONS = 6;
const TASKS = 2000;
/** Updates 0 .. SEED_UPDATES - 1 of every task, before the instances start. */
const SEED_UPDATES = 3;
/** Tasks written then deleted (a tombstone): their markers are part of the projection too. */
const DELETED_TASKS = 30;
/** Events per second the replay may apply: the seed (about 6,000 events) takes about 6 s. */
const MAX_RATE = 1000;
/** The live stream: one update of each of the first STREAM_TASKS tasks every ROUND_MS (600 events/s). */
const STREAM_TASKS = 60;
const ROUND_MS = 100;
const MAX_ROUNDS = 900;
/** Any one rebuild command's bound. */
const REBUILD_TIMEOUT_MS = 90_000;

interface Instance {
  readonly port: number;
  readonly process: ServiceProcess;
  readonly base: string;
}

interface Deployment {
  readonly config: AppConfig;
  readonly keys: ProjectionKeys;
  /** The seeded tasks; task i is on partition i % PARTITIONS, the stream's first STREAM_TASKS among them. */
  readonly taskIds: readonly string[];
  readonly taskLabel: string;
  readonly instances: readonly Instance[];
  readonly redis: Redis | Cluster;
  /** A Kafka client of the test's own (a producer that sent to a deleted topic fails its later sends). */
  readonly kafka: TestKafka;
  /** The rebuild command's environment: the service's. */
  readonly env: Record<string, string>;
}

interface Pointer {
  readonly current?: number;
  readonly building?: number;
  readonly previous?: number;
  readonly lockToken?: string;
  readonly lockOwner?: string;
  readonly rebuild?: RebuildState;
}

interface StatusJson {
  current?: number;
  building?: number;
  previous?: number;
  lock?: { owner: { pid: number; host: string; command: string } };
  abortRequested: boolean;
  rebuild?: RebuildState;
  instances: InstanceHeartbeat[];
}

/** Stream and readers under which a test runs. */
interface Load {
  readonly stream: TaskEventStream;
  readonly sticky: MonotonicReader[];
  readonly alternating: MonotonicReader[];
  stop(): Promise<void>;
}

interface ReadFigures {
  reads: number;
  failed: number;
  regressionsSticky: number;
  regressionsAlternating: number;
}

describe('npm run rebuild with two instances under live events and reads', () => {
  /** Undone after each test, last first, whatever happened. */
  let cleanups: (() => Promise<unknown>)[] = [];
  const summary: string[] = [];

  afterEach(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error: Error) => process.stderr.write(`cleanup failed: ${error.message}\n`));
    cleanups = [];
  });

  afterAll(() => {
    if (summary.length > 0) process.stdout.write(`[measure] rebuild summary:\n[measure]   ${summary.join('\n[measure]   ')}\n`);
  });

  const report = (line: string) => {
    summary.push(line);
    process.stdout.write(`[measure] ${line}\n`);
  };

  /** Whether the instance answers ready, caught up with the source topic as it was at its start. */
  const readyAndCaughtUp = (port: number, timeoutMs = 60_000) =>
    eventually(
      `the instance on port ${port} to be ready and caught up`,
      async () => {
        const answer = await httpGet(`http://127.0.0.1:${port}/health/ready`).catch(() => undefined);
        if (answer?.status !== 200) return false;
        const body = JSON.parse(answer.body) as { details: { projection?: { catchUp?: string } } };
        return body.details.projection?.catchUp === 'caught-up';
      },
      { timeoutMs, intervalMs: 100 },
    );

  const startInstance = async (config: AppConfig): Promise<Instance> => {
    const port = await freePort();
    const process = new ServiceProcess(serviceEnvironment(config, { PORT: String(port) }));
    cleanups.push(() => process.stop());
    return { port, process, base: `http://127.0.0.1:${port}` };
  };

  /** A topic of its own, seeded, and two instances in one group, both ready and caught up. */
  const deploy = async (label: string, redis?: RedisTarget): Promise<Deployment> => {
    const config = testConfig(label, { kafka: { topicPartitions: PARTITIONS }, ...(redis && { redis }) });
    const kafka = await TestKafka.connect(config.kafka.brokers);
    cleanups.push(() => kafka.close());
    await kafka.createTaskTopics(config.kafka.topic, config.kafka.dlqTopic, PARTITIONS, 'compact');
    cleanups.push(() => kafka.deleteTopics([config.kafka.topic, config.kafka.dlqTopic]));
    const taskLabel = uniqueName(label);
    const taskIds = Array.from({ length: TASKS }, (_, index) => `${taskLabel}-${index}`);
    const deleted = Array.from({ length: DELETED_TASKS }, (_, index) => `${taskLabel}-gone-${index}`);
    // One call per update: a task appears once per call, and a call is acknowledged before the next.
    for (let update = 0; update < SEED_UPDATES; update += 1) {
      await kafka.sendAll(
        config.kafka.topic,
        [...taskIds, ...(update === 0 ? deleted : [])].map((taskId, index) => ({ key: taskId, value: sampleTaskBytes(taskId, update), partition: index % PARTITIONS })),
      );
    }
    await kafka.sendAll(
      config.kafka.topic,
      deleted.map((taskId, index) => ({ key: taskId, value: null, partition: (TASKS + index) % PARTITIONS })),
    );
    const client = redisClient(config.redis);
    cleanups.push(() => client.quit().catch(() => client.disconnect()));
    const instances = [await startInstance(config), await startInstance(config)];
    await Promise.all(instances.map(({ port }) => readyAndCaughtUp(port)));
    return { config, keys: new ProjectionKeys(config.redis.keyPrefix), taskIds, taskLabel, instances, redis: client, kafka, env: serviceEnvironment(config) };
  };

  /** The live stream on the deployment's first STREAM_TASKS tasks, and sequential readers on both instances. */
  const startLoad = (deployment: Deployment, { readers = true } = {}): Load => {
    const stream = new TaskEventStream(deployment.kafka, deployment.config.kafka.topic, deployment.taskLabel, PARTITIONS, { tasks: STREAM_TASKS });
    // The seed was its rounds 0 .. SEED_UPDATES - 1.
    stream.lastRound = SEED_UPDATES - 1;
    stream.start({ intervalMs: ROUND_MS, maxRounds: MAX_ROUNDS });
    const [a, b] = deployment.instances.map(({ base }) => base);
    const streamed = deployment.taskIds.slice(0, STREAM_TASKS);
    // Reads go in pairs of the same task: a streamed task (where an update going backwards can show),
    // then any task (stride 7 is prime to TASKS: every existing task is read). A sticky reader reads
    // both of a pair from its instance; an alternating one the first from one instance and the
    // second from the other, so that it compares the two instances on the same task at once.
    const taskOf = (offset: number) => (read: number) => {
      const pair = Math.floor(read / 2);
      return pair % 2 === 0 ? streamed[(pair / 2 + offset) % STREAM_TASKS] : deployment.taskIds[(Math.floor(pair / 2) * 7 + offset) % TASKS];
    };
    const sticky = (base: string, offset: number): ReadPlan => (read) => ({ base, taskId: taskOf(offset)(read) });
    const alternating = (first: string, second: string, offset: number): ReadPlan => (read) => ({ base: read % 2 === 0 ? first : second, taskId: taskOf(offset)(read) });
    const options = { headers: AUTH, floor: SEED_UPDATES - 1 };
    const readersOf = (plans: [string, ReadPlan][]) => (readers ? plans.map(([name, plan]) => new MonotonicReader(name, plan, options)) : []);
    const stickyReaders = readersOf([
      ['sticky-a', sticky(a, 0)],
      ['sticky-b', sticky(b, 17)],
    ]);
    const alternatingReaders = readersOf([
      ['alternating-ab', alternating(a, b, 31)],
      ['alternating-ba', alternating(b, a, 47)],
    ]);
    let stopped: Promise<void> | undefined;
    const stop = () => (stopped ??= Promise.all([stream.stop(), ...[...stickyReaders, ...alternatingReaders].map((reader) => reader.stop())]).then(() => undefined));
    cleanups.push(stop);
    return { stream, sticky: stickyReaders, alternating: alternatingReaders, stop };
  };

  const readFigures = (load: Load): ReadFigures => {
    const all = [...load.sticky, ...load.alternating];
    return {
      reads: all.reduce((sum, reader) => sum + reader.total, 0),
      failed: all.reduce((sum, reader) => sum + reader.failed, 0),
      regressionsSticky: load.sticky.reduce((sum, reader) => sum + reader.regressions.length, 0),
      regressionsAlternating: load.alternating.reduce((sum, reader) => sum + reader.regressions.length, 0),
    };
  };

  /** What went wrong in the reads, for a failure message. */
  const readProblems = (load: Load) =>
    [...load.sticky, ...load.alternating].flatMap((reader) => [
      ...reader.failures.slice(0, 5).map((failure) => `${reader.name} failed at ${failure.atMs} ms: ${failure.what}`),
      ...reader.regressions.slice(0, 5).map(({ atMs, taskId, base, from, to }) => `${reader.name} regressed at ${atMs} ms on ${taskId} from ${base}: update ${from} then ${to}`),
    ]);

  const describeReads = (figures: ReadFigures) =>
    `${figures.reads} reads, ${figures.failed} failed, regressions ${figures.regressionsSticky} sticky / ${figures.regressionsAlternating} alternating`;

  const rebuild = (deployment: Deployment, args: string[] = []) => {
    const command = new RebuildCommand(deployment.env, args);
    cleanups.push(() => command.stop());
    if (process.env.TC_DEBUG_REBUILD) cleanups.push(async () => process.stdout.write(`--- rebuild ${args.join(' ')} (pid ${command.pid}):\n${command.tail(200)}\n`));
    return command;
  };

  const readPointer = async (deployment: Deployment): Promise<Pointer> => {
    const fields = await deployment.redis.hgetall(deployment.keys.generationPointer);
    const generation = (value: string | undefined) => (value === undefined ? undefined : Number(value));
    return {
      current: generation(fields.current),
      building: generation(fields.building),
      previous: generation(fields.previous),
      lockToken: fields.lockToken,
      lockOwner: fields.lockOwner,
      rebuild: fields.rebuild === undefined ? undefined : (JSON.parse(fields.rebuild) as RebuildState),
    };
  };

  /** Waits until the rebuild's state says it is replaying with between `from` and `to` percent done. */
  const replayingBetween = (deployment: Deployment, command: RebuildCommand, from = 20, to = 80) =>
    eventually(
      `the rebuild to be replaying with ${from}-${to}% done`,
      async () => {
        if (!command.running) throw new Error(`the rebuild exited before replaying ${from}-${to}%:\n${command.tail()}`);
        const state = (await readPointer(deployment)).rebuild;
        return state?.phase === 'replaying' && state.percent !== undefined && state.percent >= from && state.percent <= to && state;
      },
      { timeoutMs: 60_000, intervalMs: 50 },
    );

  const status = async (deployment: Deployment): Promise<StatusJson> => {
    const { exit, command } = await runRebuildCommand(deployment.env, ['status', '--json']);
    expect(exit).toEqual({ code: 0, signal: null });
    return JSON.parse(command.stdout.join('\n')) as StatusJson;
  };

  const heartbeats = async (deployment: Deployment): Promise<InstanceHeartbeat[]> => {
    const ids = await deployment.redis.zrange(deployment.keys.instances, '0', '-1');
    const beats = await Promise.all(ids.map((id) => deployment.redis.get(deployment.keys.instance(id))));
    return beats.filter((beat): beat is string => beat !== null).map((beat) => JSON.parse(beat) as InstanceHeartbeat);
  };

  /** Waits until the group has committed up to the end of every partition: every event is applied. */
  const committedToTheEnd = ({ kafka, config }: Deployment, groupId: string) =>
    eventually(
      `group ${groupId} to commit up to the end of every partition`,
      async () => {
        const topic = config.kafka.topic;
        const [end, committed] = await Promise.all([kafka.endOffsets(topic), kafka.committedOffsets(groupId, topic)]);
        return end.size === PARTITIONS && [...end].every(([partition, offset]) => committed.get(partition) === offset);
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );

  /**
   * The projection built from scratch: a third instance with a fresh group and key prefix on the
   * same topic, ready once caught up with the topic as it was at its start (nothing is produced any
   * more). Returns its generation's task hashes.
   */
  const freshProjection = async (deployment: Deployment): Promise<Map<string, StoredHash>> => {
    const name = uniqueName('fresh');
    const base = deployment.config;
    const config: AppConfig = { ...base, kafka: { ...base.kafka, groupId: `${name}.group`, clientId: name }, redis: { ...base.redis, keyPrefix: `${name}:` } };
    const endAtStart = await deployment.kafka.endOffsets(config.kafka.topic);
    const instance = await startInstance(config);
    try {
      await readyAndCaughtUp(instance.port);
      await committedToTheEnd(deployment, config.kafka.groupId);
      const current = Number(await deployment.redis.hget(new ProjectionKeys(config.redis.keyPrefix).generationPointer, 'current'));
      const snapshot = await generationSnapshot(deployment.redis, config.redis.keyPrefix, current);
      // Nothing was produced since it started: what it caught up with is the whole topic.
      expect(Object.fromEntries(await deployment.kafka.endOffsets(config.kafka.topic))).toEqual(Object.fromEntries(endAtStart));
      return snapshot;
    } finally {
      await instance.process.stop();
    }
  };

  /**
   * Once every event is applied: the current generation holds exactly what a projection built from
   * scratch holds, every key and every field. Returns the current generation.
   */
  const expectSameAsFresh = async (deployment: Deployment): Promise<number> => {
    await committedToTheEnd(deployment, deployment.config.kafka.groupId);
    const { current } = await readPointer(deployment);
    const actual = await generationSnapshot(deployment.redis, deployment.config.redis.keyPrefix, current!);
    const expected = await freshProjection(deployment);
    const difference = compareSnapshots(actual, expected);
    const shown = {
      onlyInRebuilt: difference.onlyInActual.length,
      onlyInFresh: difference.onlyInExpected.length,
      different: difference.different.length,
      examples: [...difference.onlyInActual.slice(0, 3), ...difference.onlyInExpected.slice(0, 3), ...difference.different.slice(0, 5).map(({ taskId, fields }) => `${taskId}: ${fields.join('; ')}`)],
    };
    expect(shown).toEqual({ onlyInRebuilt: 0, onlyInFresh: 0, different: 0, examples: [] });
    expect(expected.size).toBe(TASKS + DELETED_TASKS);
    expect(actual.size).toBe(expected.size);
    return current!;
  };

  /** After a rebuild that ended: no lock, no building or previous generation, the old one's keys gone. */
  const expectSettled = async (deployment: Deployment, current: number, gone: number) => {
    const pointer = await readPointer(deployment);
    expect({ current: pointer.current, building: pointer.building, previous: pointer.previous, lockToken: pointer.lockToken }).toEqual({
      current,
      building: undefined,
      previous: undefined,
      lockToken: undefined,
    });
    expect(await generationKeys(deployment.redis, deployment.config.redis.keyPrefix, gone)).toEqual([]);
    const beats = await heartbeats(deployment);
    expect(beats.map(({ current: reads, writes }) => ({ reads, writes }))).toEqual(deployment.instances.map(() => ({ reads: current, writes: [current] })));
    // The replay's consumer group is deleted with it.
    const { groups } = await deployment.kafka.admin.listGroups();
    expect(groups.map(({ groupId }) => groupId).filter((groupId) => groupId.startsWith(`${deployment.config.kafka.groupId}.rebuild.`))).toEqual([]);
  };

  it('rebuilds under live events and reads: no failed read, no update going backwards, the result is what a fresh projection holds, the old generation is gone', async () => {
    const started = Date.now();
    const deployment = await deploy('rb-full');
    const load = startLoad(deployment);
    await eventually('reads and a few rounds of live events', () => readFigures(load).reads > 200 && load.stream.lastRound >= SEED_UPDATES + 3);
    const command = rebuild(deployment, ['--max-rate', String(MAX_RATE)]);
    const exit = await command.exit(REBUILD_TIMEOUT_MS);
    const rebuildMs = command.exitedAt! - command.startedAt;
    // Reads and events go on a while after the flip, on the new generation.
    const afterFlip = readFigures(load).reads;
    await eventually('reads after the rebuild', () => readFigures(load).reads > afterFlip + 200);
    await load.stop();
    const figures = readFigures(load);
    expect({ exit, output: exit.code === 0 ? '' : command.tail() }).toEqual({ exit: { code: 0, signal: null }, output: '' });

    const after = await status(deployment);
    const state = after.rebuild!;
    const readsAfterFlip = [...load.sticky, ...load.alternating].map((reader) => `${reader.name} ${reader.readsSince(state.flippedAt!)}`);
    const reported = /reads moved within (\d+) ms/.exec(command.output)?.[1];
    report(
      `full rebuild: exit ${exit.code} after ${rebuildMs} ms (replayed ${state.total} events at --max-rate ${MAX_RATE}); flip propagation ${state.propagationMs} ms (command said ${reported} ms); ` +
        `${describeReads(figures)}; reads after the flip: ${readsAfterFlip.join(', ')}; ${load.stream.produced} live events produced`,
    );
    expect(readProblems(load)).toEqual([]);
    expect(figures).toMatchObject({ failed: 0, regressionsSticky: 0, regressionsAlternating: 0 });
    // Every reader read both before and after the flip.
    for (const reader of [...load.sticky, ...load.alternating]) {
      expect(reader.readsSince(state.flippedAt!)).toBeGreaterThan(50);
      expect(reader.total - reader.readsSince(state.flippedAt!)).toBeGreaterThan(50);
    }

    expect(after).toMatchObject({ current: 2, abortRequested: false, rebuild: { generation: 2, phase: 'done', left: 1 } });
    expect(after.building).toBeUndefined();
    expect(after.previous).toBeUndefined();
    expect(after.lock).toBeUndefined();
    expect(after.instances).toHaveLength(2);
    expect(state.propagationMs).toEqual(expect.any(Number));
    expect(reported).toBe(String(state.propagationMs));
    expect(command.lines(/flipped: reads moved from generation 1 to 2; all 2 running instance\(s\) read it/)).toHaveLength(1);
    await expectSettled(deployment, 2, 1);
    expect(await expectSameAsFresh(deployment)).toBe(2);
    // Seconds later, still nothing writes the generation reads left.
    expect(await generationKeys(deployment.redis, deployment.config.redis.keyPrefix, 1)).toEqual([]);
    report(`full rebuild: test took ${Date.now() - started} ms`);
  }, 150_000);

  it('resumes a rebuild killed (SIGKILL) mid-replay: the rerun takes the lock over, resumes from the committed offsets, and ends as a fresh projection', async () => {
    const started = Date.now();
    const deployment = await deploy('rb-kill');
    const load = startLoad(deployment);
    const first = rebuild(deployment, ['--max-rate', String(MAX_RATE)]);
    const atKill = await replayingBetween(deployment, first);
    first.signal('SIGKILL');
    expect(await first.exit(10_000)).toEqual({ code: null, signal: 'SIGKILL' });
    const killedAt = Date.now();
    // The killed one left its generation building and its lock held.
    const left = await readPointer(deployment);
    expect({ building: left.building, current: left.current, locked: left.lockToken !== undefined }).toEqual({ building: 2, current: 1, locked: true });

    const second = rebuild(deployment, ['--max-rate', String(MAX_RATE)]);
    const exit = await second.exit(REBUILD_TIMEOUT_MS);
    const resumed = /resuming the rebuild of generation 2 \((\d+) of (\d+) events replayed\)/.exec(second.output);
    await load.stop();
    const figures = readFigures(load);
    report(
      `SIGKILL at ${atKill.percent}% (${atKill.replayed} of ${atKill.total} events), rerun: exit ${exit.code} after ${second.exitedAt! - killedAt} ms, resumed from ${resumed?.[1]} of ${resumed?.[2]}; ${describeReads(figures)}`,
    );
    expect({ exit, output: exit.code === 0 ? '' : second.tail() }).toEqual({ exit: { code: 0, signal: null }, output: '' });
    expect(second.lines(/process \d+ on this host, is no longer running: taking the lock over/)).toHaveLength(1);
    expect(resumed).not.toBeNull();
    expect(Number(resumed![1])).toBeGreaterThan(0);
    expect(Number(resumed![2])).toBe(atKill.total);
    // The replay went on from the group's committed offsets: its first progress (read from them) is
    // where the killed one had got to, not 0.
    const firstProgress = /replaying into generation 2: [\d.]+% \(([\d,]+) of/.exec(second.lines(/replaying into generation 2: /)[0] ?? '');
    expect(Number(firstProgress?.[1].replace(/,/g, ''))).toBeGreaterThanOrEqual(atKill.replayed!);
    expect(readProblems(load)).toEqual([]);
    expect(figures).toMatchObject({ failed: 0, regressionsSticky: 0, regressionsAlternating: 0 });
    expect((await status(deployment)).rebuild).toMatchObject({ generation: 2, phase: 'done' });
    await expectSettled(deployment, 2, 1);
    expect(await expectSameAsFresh(deployment)).toBe(2);
    report(`SIGKILL and resume: test took ${Date.now() - started} ms`);
  }, 150_000);

  it('refuses a second rebuild while one runs (exit 75, naming the holder); the first goes on to completion', async () => {
    const started = Date.now();
    const deployment = await deploy('rb-twice');
    const load = startLoad(deployment);
    const first = rebuild(deployment, ['--max-rate', String(MAX_RATE)]);
    await replayingBetween(deployment, first);
    const second = rebuild(deployment);
    const refused = await second.exit(30_000);
    const message = second.stderr.join('\n');
    expect(first.running).toBe(true);
    const exit = await first.exit(REBUILD_TIMEOUT_MS);
    await load.stop();
    const figures = readFigures(load);
    report(`second rebuild: exit ${refused.code} after ${second.exitedAt! - second.startedAt} ms: "${second.stderr.at(-1)}"; first: exit ${exit.code}; ${describeReads(figures)}`);
    expect(refused).toEqual({ code: 75, signal: null });
    expect(message).toContain(`another rebuild holds the lock: rebuild start by process ${first.pid} on ${hostname()}`);
    expect({ exit, output: exit.code === 0 ? '' : first.tail() }).toEqual({ exit: { code: 0, signal: null }, output: '' });
    expect(readProblems(load)).toEqual([]);
    expect(figures).toMatchObject({ failed: 0, regressionsSticky: 0, regressionsAlternating: 0 });
    expect((await status(deployment)).rebuild).toMatchObject({ generation: 2, phase: 'done' });
    await expectSettled(deployment, 2, 1);
    expect(await expectSameAsFresh(deployment)).toBe(2);
    report(`second rebuild refused: test took ${Date.now() - started} ms`);
  }, 150_000);

  it('aborts a rebuild mid-replay: it exits 3, abort exits 0, the current generation stays, nothing of the building one is left, reads never fail', async () => {
    const started = Date.now();
    const deployment = await deploy('rb-abort');
    const load = startLoad(deployment);
    const running = rebuild(deployment, ['--max-rate', String(MAX_RATE)]);
    const atAbort = await replayingBetween(deployment, running);
    const keysAtAbort = (await generationKeys(deployment.redis, deployment.config.redis.keyPrefix, 2)).length;
    const abortStarted = Date.now();
    const abort = rebuild(deployment, ['abort']);
    const [abortExit, runningExit] = await Promise.all([abort.exit(60_000), running.exit(60_000)]);
    const abortMs = abort.exitedAt! - abortStarted;
    // Keys left now, and once more a while later: nothing writes the dropped generation any more.
    const keysAfter = (await generationKeys(deployment.redis, deployment.config.redis.keyPrefix, 2)).length;
    await sleep(2000);
    const keysLater = (await generationKeys(deployment.redis, deployment.config.redis.keyPrefix, 2)).length;
    await load.stop();
    const figures = readFigures(load);
    report(
      `abort at ${atAbort.percent}% (${keysAtAbort} keys of generation 2): running rebuild exit ${runningExit.code}, abort exit ${abortExit.code} after ${abortMs} ms; ` +
        `keys of generation 2 after: ${keysAfter}, 2 s later: ${keysLater}; ${describeReads(figures)}`,
    );
    expect({ runningExit, output: runningExit.code === 3 ? '' : running.tail() }).toEqual({ runningExit: { code: 3, signal: null }, output: '' });
    expect({ abortExit, output: abortExit.code === 0 ? '' : abort.tail() }).toEqual({ abortExit: { code: 0, signal: null }, output: '' });
    expect(keysAtAbort).toBeGreaterThan(0);
    expect(keysAfter).toBe(0);
    expect(keysLater).toBe(0);
    const after = await status(deployment);
    expect(after).toMatchObject({ current: 1, abortRequested: false, rebuild: { generation: 2, phase: 'aborted' } });
    expect(after.building).toBeUndefined();
    expect(after.lock).toBeUndefined();
    const pointer = await readPointer(deployment);
    expect({ building: pointer.building, previous: pointer.previous, lockToken: pointer.lockToken }).toEqual({ building: undefined, previous: undefined, lockToken: undefined });
    const beats = await heartbeats(deployment);
    expect(beats.map(({ current, writes }) => ({ current, writes }))).toEqual([
      { current: 1, writes: [1] },
      { current: 1, writes: [1] },
    ]);
    const { groups } = await deployment.kafka.admin.listGroups();
    expect(groups.map(({ groupId }) => groupId)).not.toContain(`${deployment.config.kafka.groupId}.rebuild.g2`);
    expect(readProblems(load)).toEqual([]);
    expect(figures).toMatchObject({ failed: 0, regressionsSticky: 0, regressionsAlternating: 0 });
    report(`abort: test took ${Date.now() - started} ms`);
  }, 150_000);

  it('completes a rebuild through a Redis restart mid-replay (durable Redis killed, back 3 s later), ending as a fresh projection', async () => {
    const started = Date.now();
    // A redis-server of its own, or a cluster of six in cluster mode, whole: every node goes down.
    const redis = await startPrivateRedis({ durable: true });
    cleanups.push(() => redis.destroy());
    const deployment = await deploy('rb-redis', redis.config);
    // Live events go on through the outage; reads cannot be served while Redis is down.
    const load = startLoad(deployment, { readers: false });
    const command = rebuild(deployment, ['--max-rate', String(MAX_RATE)]);
    const atKill = await replayingBetween(deployment, command);
    await redis.kill();
    const killedAt = Date.now();
    await sleep(3000);
    await redis.start();
    const restartedAt = Date.now();
    const exit = await command.exit(REBUILD_TIMEOUT_MS);
    await load.stop();
    report(
      `Redis killed at ${atKill.percent}% of the replay, back after ${restartedAt - killedAt} ms: rebuild exit ${exit.code} ${command.exitedAt! - restartedAt} ms after Redis came back ` +
        `(${command.exitedAt! - command.startedAt} ms in all); ${load.stream.produced} live events produced`,
    );
    expect({ exit, output: exit.code === 0 ? '' : command.tail() }).toEqual({ exit: { code: 0, signal: null }, output: '' });
    // The outage hit the rebuild mid-replay, and it went on once Redis was back.
    expect(command.lines(/redis unreachable/).length).toBeGreaterThan(0);
    expect(command.lines(/redis connection restored/).length).toBeGreaterThan(0);
    expect((await status(deployment)).rebuild).toMatchObject({ generation: 2, phase: 'done' });
    await expectSettled(deployment, 2, 1);
    expect(await expectSameAsFresh(deployment)).toBe(2);
    report(`Redis restart: test took ${Date.now() - started} ms`);
  }, 150_000);

  it('stops on SIGINT mid-replay (exit 130) keeping the replay\'s range and progress; run again, it resumes them and ends as a fresh projection', async () => {
    const started = Date.now();
    const deployment = await deploy('rb-sigint');
    const load = startLoad(deployment);
    const first = rebuild(deployment, ['--max-rate', String(MAX_RATE)]);
    const atStop = await replayingBetween(deployment, first);
    first.signal('SIGINT');
    const stoppedExit = await first.exit(30_000);
    const stopped = await status(deployment);
    const second = rebuild(deployment, ['--max-rate', String(MAX_RATE)]);
    const exit = await second.exit(REBUILD_TIMEOUT_MS);
    const resumed = /resuming the rebuild of generation 2 \((\d+) of (\d+) events replayed\)/.exec(second.output);
    await load.stop();
    const figures = readFigures(load);
    report(
      `SIGINT at ${atStop.percent}% (${atStop.replayed} of ${atStop.total} events): exit ${stoppedExit.code}, state ${stopped.rebuild?.phase} with ${stopped.rebuild?.replayed} of ${stopped.rebuild?.total}; ` +
        `rerun: exit ${exit.code} after ${second.exitedAt! - second.startedAt} ms, resumed from ${resumed?.[1]} of ${resumed?.[2]}; ${describeReads(figures)}`,
    );
    expect({ stoppedExit, output: stoppedExit.code === 130 ? '' : first.tail() }).toEqual({ stoppedExit: { code: 130, signal: null }, output: '' });
    expect(first.stderr.join('\n')).toContain('SIGINT: stopping; run it again to resume');
    // Stopped, not dropped: generation 2 is still building, the lock free, the replay's range kept.
    expect(stopped).toMatchObject({ current: 1, building: 2, rebuild: { generation: 2, phase: 'interrupted', total: atStop.total, start: atStop.start, target: atStop.target } });
    expect(stopped.lock).toBeUndefined();
    expect(stopped.rebuild!.replayed).toBeGreaterThanOrEqual(atStop.replayed!);
    expect({ exit, output: exit.code === 0 ? '' : second.tail() }).toEqual({ exit: { code: 0, signal: null }, output: '' });
    expect(resumed?.slice(1).map(Number)).toEqual([stopped.rebuild!.replayed, atStop.total]);
    expect(readProblems(load)).toEqual([]);
    expect(figures).toMatchObject({ failed: 0, regressionsSticky: 0, regressionsAlternating: 0 });
    expect((await status(deployment)).rebuild).toMatchObject({ generation: 2, phase: 'done', total: atStop.total });
    await expectSettled(deployment, 2, 1);
    expect(await expectSameAsFresh(deployment)).toBe(2);
    report(`SIGINT and resume: test took ${Date.now() - started} ms`);
  }, 150_000);

  it('finishes the cleanup when a rebuild killed (SIGKILL) after its flip, before the generation reads left was deleted, runs again: no new rebuild, nothing of the old generation left', async () => {
    const started = Date.now();
    const deployment = await deploy('rb-cleanup');
    const load = startLoad(deployment);
    const first = rebuild(deployment, ['--max-rate', String(MAX_RATE)]);
    // Flipped, generation 1 no longer written (retired from the pointer), its keys not deleted yet.
    const atKill = await eventually(
      'the rebuild to have flipped and retired generation 1',
      async () => {
        if (!first.running) throw new Error(`the rebuild exited before its cleanup:\n${first.tail()}`);
        const pointer = await readPointer(deployment);
        const phase = pointer.rebuild?.phase;
        return pointer.current === 2 && pointer.previous === undefined && pointer.rebuild?.left === 1 && (phase === 'flipped' || phase === 'cleaning') && pointer;
      },
      { timeoutMs: 60_000, intervalMs: 10 },
    );
    first.signal('SIGKILL');
    expect(await first.exit(10_000)).toEqual({ code: null, signal: 'SIGKILL' });
    const keysAtKill = (await generationKeys(deployment.redis, deployment.config.redis.keyPrefix, 1)).length;
    const second = rebuild(deployment, ['--max-rate', String(MAX_RATE)]);
    const exit = await second.exit(REBUILD_TIMEOUT_MS);
    await load.stop();
    const figures = readFigures(load);
    report(
      `SIGKILL after the flip (phase ${atKill.rebuild?.phase}, ${keysAtKill} keys of generation 1 left): rerun exit ${exit.code} after ${second.exitedAt! - second.startedAt} ms: ` +
        `"${second.stdout.at(-1)}"; ${describeReads(figures)}`,
    );
    expect({ exit, output: exit.code === 0 ? '' : second.tail() }).toEqual({ exit: { code: 0, signal: null }, output: '' });
    expect(keysAtKill).toBeGreaterThan(0);
    expect(second.lines(/flipped to generation 2 and stopped before deleting generation 1: finishing that/)).toHaveLength(1);
    expect(second.lines(/rebuilding the projection into generation/)).toEqual([]);
    expect(readProblems(load)).toEqual([]);
    expect(figures).toMatchObject({ failed: 0, regressionsSticky: 0, regressionsAlternating: 0 });
    expect((await status(deployment)).rebuild).toMatchObject({ generation: 2, phase: 'done', left: 1 });
    await expectSettled(deployment, 2, 1);
    expect(await expectSameAsFresh(deployment)).toBe(2);
    report(`SIGKILL after the flip: test took ${Date.now() - started} ms`);
  }, 150_000);
});
