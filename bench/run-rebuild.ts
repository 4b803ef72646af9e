// npm run bench:rebuild: `npm run rebuild` measured while live instances serve reads and ingest,
// beside the consume-only floor on the same topic, in one run.
//
// 1. Produces tasks × updates seed-shaped events (one full round of updates after another) to a
//    4-partition compacted topic of the run's own (the service's own cleanup policy; with Kafka's
//    1 GiB segments nothing is compacted during the run, so every event is replayed), before any
//    consumer starts.
// 2. Starts instance 1 (`node dist/main.js`) alone: its live ingest of the whole topic is measured
//    the same way as the replay and the floor. Then the other instances join its group.
// 3. Rounds; each runs the floor (floor-consumer.ts, a kafkajs consumer that does nothing, in a
//    group of its own) and a rebuild, the order alternating:
//    - open-loop reads at a fixed rate (read-pacer.ts) spread over the instances, and live updates
//      at a low steady rate, start together; after a warm-up, an idle window of reads;
//    - then `node dist/rebuild/main.js start` (what `npm run rebuild` runs), while the reads and
//      live updates go on until it exits. Its rate: events committed by its replay group between
//      the first and the last commit seen / the time between them, read every 10 ms, exactly as
//      the floor's. Redis INFO memory every 100 ms. From the end of the replay, every instance's
//      /health/ready is polled every 10 ms for the generation it reads;
//    - afterwards: the rebuild exited 0; `rebuild status --json` (propagationMs, the replay); every
//      instance's heartbeat (when it started reading the new generation); the new generation holds
//      every task with the bytes of its last update, live ones included (checked in Redis, and
//      through every instance for a sample); the generation left has no key; no dead letter.
// BENCH_SMOKE=1: tiny sizes; asserts correctness only.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { InfraSettings } from '../test/support/infra.js';
import { ROOT } from '../test/support/infra.js';
import { sampleTaskBytes } from '../test/support/sample-task.js';
import type { TestKafka } from '../test/support/test-kafka.js';
import { CorrectnessFailure, assertCorrect, logger, onCleanup, runBenchmark } from './bench-run.js';
import { startCpuWindow, type CpuShares } from './cpu-accounting.js';
import { committedRate, describeProgress, watchGroupUntilCaughtUp, type GroupProgress } from './group-progress.js';
import { ProjectionKeys } from '../src/projection/projection-keys.js';
import { deleteKeysWithPrefix, keysWithPrefix } from './redis-store.js';
import { machineInfo, sectionHead, writeResults, type MachineInfo } from './results.js';
import { SMOKE, commandLine, rebuildSettings, runNames, type RebuildSettings } from './settings.js';
import { ManagedProcess, openBenchStack, rebuildStatus, startFloorConsumer, startRebuildCommand, startService, type TaskServer } from './stack.js';
import { median, percentile, ratio, round } from './statistics.js';

const log = logger('rebuild');
const settings = rebuildSettings();
const names = runNames('rebuild');
const token = randomBytes(24).toString('hex');
const serviceGroup = names.groupId('service');
const serviceKeys = names.keyPrefix('service');
const MIB = 1024 * 1024;

/** Epoch milliseconds of a performance.now() reading. */
const epochOf = (performanceMs: number): number => performance.timeOrigin + performanceMs;

interface RateFigures {
  eventsPerSecond: number | null;
  events: number;
  firstCommitSeconds: number | null;
  lastCommitSeconds: number | null;
}

interface ReadWindow {
  seconds: number;
  requests: number;
  ok: number;
  non200: number;
  failed: number;
  achievedRate: number;
  p50Ms: number | null;
  p99Ms: number | null;
  p999Ms: number | null;
  maxMs: number | null;
}

interface HealthObservation {
  instance: number;
  /** Milliseconds after the flip (Redis's clock): the last answer still on the old generation, the first on the new one. */
  lastOldMs: number | null;
  firstNewMs: number | null;
  polls: number;
}

interface RoundFigures {
  round: number;
  order: string;
  generationBefore: number;
  generation: number;
  loadAverage1m: number;
  floor: RateFigures;
  rebuild: RateFigures & {
    exit: string;
    wallSeconds: number;
    /** The rebuild's own log: "replayed N events into generation G in X s" (the consumer's start included). */
    ownReplay: { events: number; seconds: number; eventsPerSecond: number } | null;
    doneLine: string | null;
    /** The rebuild's estimate before it started: "expect about X MiB" while two generations exist. */
    expectedPeakMiB: number | null;
    status: Record<string, unknown>;
  };
  reads: { rate: number; idle: ReadWindow; replay: ReadWindow; afterReplay: ReadWindow; wholeRebuild: ReadWindow; perInstanceDuringRebuild: ReadWindow[]; unanswered: number };
  propagation: {
    statusMs: number | null;
    /** Per instance: its heartbeat's currentSince (when it began reading the new generation) − flippedAt. */
    heartbeatMs: number[];
    health: { pollMs: number; upperMs: number | null; lowerMs: number | null; instances: HealthObservation[] };
  };
  memory: {
    steadyUsedBytes: number | null;
    peakUsedBytes: number | null;
    peakSecondsAfterStart: number | null;
    afterUsedBytes: number | null;
    usedMemoryPeakBytes: number | null;
    samples: number;
  };
  live: { rate: number; produced: number };
  cpu: { idle: CpuShares; replay: CpuShares | null; floor: CpuShares | null };
  checks: string[];
}

interface RebuildSummary {
  rebuildEventsPerSecond: number | null;
  floorEventsPerSecond: number | null;
  ratio: number | null;
  liveIngestOneInstanceEventsPerSecond: number | null;
  rebuildOverLiveIngest: number | null;
  /** Events per CPU-second of the consuming process (its rate over the cores it used meanwhile): robust to what else ran on the machine. */
  eventsPerCpuSecond: { rebuild: number | null; floor: number | null; liveIngest: number | null };
  readRate: number;
  readP99IdleMs: number | null;
  readP99ReplayMs: number | null;
  readP99WholeRebuildMs: number | null;
  readP99RatioReplayOverIdle: number | null;
  propagationStatusMs: (number | null)[];
  propagationHeartbeatMaxMs: (number | null)[];
  propagationHealthUpperMs: (number | null)[];
  memoryMiB: { steady: number | null; peak: number | null; after: number | null; usedMemoryPeak: number | null }[];
}

interface RebuildFigures {
  benchmark: 'rebuild';
  smoke: boolean;
  date: string;
  command: string;
  machine: MachineInfo;
  settings: RebuildSettings & { events: number; eventBytes: number };
  producing: { seconds: number; eventsPerSecond: number };
  liveIngest: RateFigures & { instances: 1; cpu: CpuShares | null };
  summary: RebuildSummary;
  rounds: RoundFigures[];
  durationSeconds: number;
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const totalEvents = settings.tasks * settings.updatesPerTask;
  log(
    `${SMOKE ? 'SMOKE run' : 'full run'} ${names.name}: ${settings.tasks} tasks × ${settings.updatesPerTask} updates = ${totalEvents} events, ` +
      `${settings.instances} instances, ${settings.rounds} round(s), reads at ${settings.readRate}/s, live updates at ${settings.liveRate}/s`,
  );
  const { infra, redis, kafka } = await openBenchStack(names.name);
  const groups: string[] = [serviceGroup];
  onCleanup('delete the run topics', () => kafka.deleteTopics([names.topic, names.dlqTopic]));
  onCleanup('delete the run groups', () => kafka.deleteGroups(groups));
  onCleanup('delete the run keys', () => deleteKeysWithPrefix(redis, serviceKeys));
  await kafka.createTaskTopics(names.topic, names.dlqTopic, settings.partitions, 'compact');

  // 1. Every event in Kafka before any consumer starts.
  const taskIds = Array.from({ length: settings.tasks }, (_, index) => names.taskId(index));
  const tasks: TaskState = { lastBytes: new Map(), lastUpdate: new Map() };
  const produceStarted = performance.now();
  for (let update = 0; update < settings.updatesPerTask; update++) {
    const messages = taskIds.map((taskId) => ({ key: taskId, value: sampleTaskBytes(taskId, update) }));
    // One update per task per call, calls one after another: each task's updates keep their order.
    await kafka.sendAll(names.topic, messages);
    for (const { key, value } of messages) {
      tasks.lastBytes.set(key, value);
      tasks.lastUpdate.set(key, update);
    }
  }
  const produceSeconds = (performance.now() - produceStarted) / 1000;
  const inTopic = await kafka.eventCount(names.topic);
  assertCorrect(inTopic === totalEvents, `the topic holds ${inTopic} events, not the ${totalEvents} produced`);
  const eventBytes = [...tasks.lastBytes.values()].reduce((sum, bytes) => sum + bytes.length, 0) / tasks.lastBytes.size;
  log(`produced ${totalEvents} events (~${Math.round(eventBytes)} bytes each) in ${produceSeconds.toFixed(1)} s`);

  // 2. Instance 1 alone ingests the topic (measured), then the others join its group.
  const startInstance = (index: number): Promise<TaskServer> =>
    startService({ runName: names.name, name: `service-${index}`, infra, topic: names.topic, dlqTopic: names.dlqTopic, groupId: serviceGroup, keyPrefix: serviceKeys, token, partitions: settings.partitions });
  const instances: TaskServer[] = [];
  const ingestStarted = performance.now();
  const first = await startInstance(1);
  onCleanup('stop service instance 1', () => first.child.stop());
  instances.push(first);
  const kafkaPid = Number(readFileSync(join(ROOT, '.local', 'run', 'kafka.pid'), 'utf8').trim());
  const redisPid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1]);
  let ingestCpu: { stop(): CpuShares } | undefined;
  const ingest = await watchGroupUntilCaughtUp({
    kafka,
    groupId: serviceGroup,
    topic: names.topic,
    intervalMs: settings.offsetPollMs,
    timeoutMs: settings.loadTimeoutSeconds * 1000,
    startedAt: ingestStarted,
    alive: () => first.child.running,
    onCommit: () => (ingestCpu ??= startCpuWindow({ service: [first.child.pid!], redis: [redisPid], kafka: [kafkaPid] })),
  });
  if (!ingest.caughtUp) throw new CorrectnessFailure(`instance 1 did not ingest the topic within ${settings.loadTimeoutSeconds} s (${describeProgress(ingest)})\n${first.child.logTail()}`);
  const liveIngest = { ...rateFigures(ingest), instances: 1 as const, cpu: ingestCpu?.stop() ?? null };
  log(`live ingest by instance 1 alone: ${liveIngest.eventsPerSecond ?? 'n/a'} events/s (${describeProgress(ingest)}; cores: ${JSON.stringify(liveIngest.cpu?.cores)})`);
  const more = await Promise.all(Array.from({ length: settings.instances - 1 }, (_, index) => startInstance(index + 2)));
  for (const [index, instance] of more.entries()) {
    onCleanup(`stop service instance ${index + 2}`, () => instance.child.stop());
    instances.push(instance);
  }
  for (const [index, instance] of instances.entries()) await waitUntilReady(instance, index + 1);
  await checkGeneration(redis, 1, tasks.lastBytes);
  log(`${instances.length} instance(s) ready on ports ${instances.map((instance) => instance.port).join(', ')}; generation 1 holds every task's last update`);

  const idsFile = join(ROOT, '.local', 'bench-logs', names.name, 'task-ids.json');
  writeFileSync(idsFile, JSON.stringify(taskIds));
  const pids = { redis: redisPid, kafka: kafkaPid };
  const context: RoundContext = { infra, redis, kafka, instances, tasks, taskIds, idsFile, pids, groups };

  // 3. Rounds: floor and rebuild, the order alternating.
  const rounds: RoundFigures[] = [];
  for (let r = 1; r <= settings.rounds; r++) {
    const floorFirst = r % 2 === 1;
    let floor: { figures: RateFigures; cpu: CpuShares | null } | undefined;
    if (floorFirst) floor = await floorRound(r, context);
    const figures = await rebuildRound(r, context);
    if (!floorFirst) floor = await floorRound(r, context);
    figures.floor = floor!.figures;
    figures.cpu.floor = floor!.cpu;
    figures.order = floorFirst ? 'floor, rebuild' : 'rebuild, floor';
    rounds.push(figures);
    log(
      `round ${r}: rebuild ${figures.rebuild.eventsPerSecond ?? 'n/a'} events/s, floor ${figures.floor.eventsPerSecond ?? 'n/a'} events/s; ` +
        `read p99 idle ${figures.reads.idle.p99Ms?.toFixed(2)} ms, during the replay ${figures.reads.replay.p99Ms?.toFixed(2)} ms; ` +
        `propagation ${figures.propagation.statusMs} ms (status), ${Math.max(...figures.propagation.heartbeatMs)} ms (heartbeats), ≤ ${figures.propagation.health.upperMs} ms (/health/ready); ` +
        `used_memory ${mib(figures.memory.steadyUsedBytes)} → peak ${mib(figures.memory.peakUsedBytes)} → after ${mib(figures.memory.afterUsedBytes)} MiB`,
    );
  }

  // 4. Figures and results.
  const rebuildRate = median(rounds.map((round) => round.rebuild.eventsPerSecond));
  const floorRate = median(rounds.map((round) => round.floor.eventsPerSecond));
  const p99Idle = median(rounds.map((round) => round.reads.idle.p99Ms));
  const p99Replay = median(rounds.map((round) => round.reads.replay.p99Ms));
  const summary: RebuildSummary = {
    rebuildEventsPerSecond: round(rebuildRate, 0),
    floorEventsPerSecond: round(floorRate, 0),
    ratio: round(ratio(rebuildRate, floorRate), 3),
    liveIngestOneInstanceEventsPerSecond: liveIngest.eventsPerSecond,
    rebuildOverLiveIngest: round(ratio(rebuildRate, liveIngest.eventsPerSecond), 3),
    eventsPerCpuSecond: {
      rebuild: round(median(rounds.map((round) => ratio(round.rebuild.eventsPerSecond, round.cpu.replay?.cores.rebuild ?? null))), 0),
      floor: round(median(rounds.map((round) => ratio(round.floor.eventsPerSecond, round.cpu.floor?.cores.floor ?? null))), 0),
      liveIngest: round(ratio(liveIngest.eventsPerSecond, liveIngest.cpu?.cores.service ?? null), 0),
    },
    readRate: settings.readRate,
    readP99IdleMs: round(p99Idle, 2),
    readP99ReplayMs: round(p99Replay, 2),
    readP99WholeRebuildMs: round(median(rounds.map((round) => round.reads.wholeRebuild.p99Ms)), 2),
    readP99RatioReplayOverIdle: round(ratio(p99Replay, p99Idle), 2),
    propagationStatusMs: rounds.map((round) => round.propagation.statusMs),
    propagationHeartbeatMaxMs: rounds.map((round) => (round.propagation.heartbeatMs.length > 0 ? Math.max(...round.propagation.heartbeatMs) : null)),
    propagationHealthUpperMs: rounds.map((round) => round.propagation.health.upperMs),
    memoryMiB: rounds.map(({ memory }) => ({ steady: mib(memory.steadyUsedBytes), peak: mib(memory.peakUsedBytes), after: mib(memory.afterUsedBytes), usedMemoryPeak: mib(memory.usedMemoryPeakBytes) })),
  };
  const figures: RebuildFigures = {
    benchmark: 'rebuild',
    smoke: SMOKE,
    date: startedAt.toISOString(),
    command: commandLine('bench:rebuild'),
    machine: await machineInfo(redis),
    settings: { ...settings, events: totalEvents, eventBytes: Math.round(eventBytes) },
    producing: { seconds: round(produceSeconds, 1), eventsPerSecond: round(totalEvents / produceSeconds, 0) },
    liveIngest,
    summary,
    rounds,
    durationSeconds: round((Date.now() - startedAt.getTime()) / 1000, 0),
  };
  const section = rebuildMarkdown(figures);
  const written = writeResults('rebuild', figures, section);
  console.log(`\n${section}\n`);
  log(`results written to ${written.json} and ${written.summary} (${figures.durationSeconds} s in all)`);
}

/** Each task's last update as produced: its bytes and its update number. */
interface TaskState {
  lastBytes: Map<string, Buffer>;
  lastUpdate: Map<string, number>;
}

interface RoundContext {
  infra: InfraSettings;
  redis: Redis;
  kafka: TestKafka;
  instances: TaskServer[];
  tasks: TaskState;
  taskIds: string[];
  idsFile: string;
  pids: { redis: number; kafka: number };
  groups: string[];
}

async function floorRound(r: number, { infra, kafka, pids, groups }: RoundContext): Promise<{ figures: RateFigures; cpu: CpuShares | null }> {
  const groupId = names.groupId(`floor-${r}`);
  groups.push(groupId);
  const startedAt = performance.now();
  const floor = startFloorConsumer({ runName: names.name, name: `floor-consumer-${r}`, kafkaBrokers: infra.kafkaBrokers, topic: names.topic, groupId });
  onCleanup(`stop floor consumer ${r}`, () => floor.stop());
  let window: { stop(): CpuShares } | undefined;
  const progress = await watchGroupUntilCaughtUp({
    kafka,
    groupId,
    topic: names.topic,
    intervalMs: settings.offsetPollMs,
    timeoutMs: settings.floorTimeoutSeconds * 1000,
    startedAt,
    alive: () => floor.running,
    onCommit: () => (window ??= startCpuWindow({ floor: [floor.pid!], kafka: [pids.kafka] })),
  });
  const cpu = window?.stop() ?? null;
  await floor.stop();
  if (!progress.caughtUp) throw new Error(`the floor consumer did not commit the topic within ${settings.floorTimeoutSeconds} s (${describeProgress(progress)})\n${floor.logTail()}`);
  const figures = rateFigures(progress);
  log(`round ${r} floor: ${figures.eventsPerSecond ?? 'n/a'} events/s (${describeProgress(progress)})`);
  return { figures, cpu };
}

async function rebuildRound(r: number, context: RoundContext): Promise<RoundFigures> {
  const { infra, redis, kafka, instances, tasks, pids, groups } = context;
  const pointerKey = new ProjectionKeys(serviceKeys).generationPointer;
  const pointer = await redis.hgetall(pointerKey);
  const generationBefore = Number(pointer.current);
  // The generation `announce` picks (rebuild-pointer.lua): above every one announced before.
  const generation = Math.max(generationBefore, Number(pointer.last ?? 0)) + 1;
  const rebuildGroup = `${serviceGroup}.rebuild.g${generation}`;
  groups.push(rebuildGroup);
  const loadAverage1m = round(os.loadavg()[0], 2);
  const servicePids = instances.map((instance) => instance.child.pid!);

  // Reads, live updates and memory polling run from before the idle window until the rebuild has exited.
  const memory = startMemoryPoller(infra.redisUrl, settings.memoryPollMs);
  onCleanup(`stop the memory poller ${r}`, () => memory.stop());
  const live = startLiveWriter(kafka, context.taskIds, tasks, settings.liveRate);
  onCleanup(`stop the live writer ${r}`, () => live.stop().catch(() => undefined));
  const pacerOutput = join(ROOT, '.local', 'bench-logs', names.name, `reads-${r}.json`);
  const pacer = ManagedProcess.start(`read-pacer-${r}`, names.name, [join(import.meta.dirname, 'read-pacer.js')], {
    PATH: process.env.PATH ?? '',
    PACER_URLS: instances.map((instance) => instance.baseUrl).join(','),
    PACER_TOKEN: token,
    PACER_RATE: String(settings.readRate),
    PACER_ROUTE: settings.route,
    PACER_IDS_FILE: context.idsFile,
    PACER_OUTPUT: pacerOutput,
  });
  onCleanup(`stop the read pacer ${r}`, () => pacer.stop());
  await sleep(settings.readWarmupSeconds * 1000);
  const cpuGroups = { services: servicePids, redis: [pids.redis], kafka: [pids.kafka], pacer: [pacer.pid!] };
  const idleFrom = Date.now();
  const idleCpu = startCpuWindow(cpuGroups);
  await sleep(settings.idleSeconds * 1000);
  const idleCpuShares = idleCpu.stop();
  const idleTo = Date.now();

  // The rebuild, as an operator starts it.
  log(`round ${r}: rebuilding generation ${generationBefore} into ${generation} with ${instances.length} instance(s) serving ${settings.readRate} reads/s`);
  const rebuildFrom = Date.now();
  const rebuildStarted = performance.now();
  const rebuild = startRebuildCommand({ runName: names.name, name: `rebuild-${r}`, infra, topic: names.topic, dlqTopic: names.dlqTopic, groupId: serviceGroup, keyPrefix: serviceKeys, partitions: settings.partitions, maxRate: settings.rebuildMaxRate });
  onCleanup(`stop rebuild ${r}`, () => rebuild.stop());
  let replayCpu: { stop(): CpuShares } | undefined;
  const replay = await watchGroupUntilCaughtUp({
    kafka,
    groupId: rebuildGroup,
    topic: names.topic,
    intervalMs: settings.offsetPollMs,
    timeoutMs: settings.rebuildTimeoutSeconds * 1000,
    startedAt: rebuildStarted,
    alive: () => rebuild.running,
    onCommit: () => (replayCpu ??= startCpuWindow({ rebuild: [rebuild.pid!], ...cpuGroups })),
  });
  const replayCpuShares = replayCpu?.stop() ?? null;
  // The flip comes within about a second of the replay's end: from now on every instance's readiness is polled.
  const health = watchInstanceGenerations(instances, generation, () => rebuild.running);
  const exit = await rebuild.waitForExit(settings.rebuildTimeoutSeconds * 1000);
  const rebuildTo = Date.now();
  const healthSeen = await health.done();
  const wallSeconds = (performance.now() - rebuildStarted) / 1000;
  await pacer.stop();
  const produced = await live.stop();
  const memoryAfter = await settledMemory(redis);
  const memorySamples = await memory.stop();
  const rebuildLog = readFileSync(rebuild.logFile, 'utf8');
  const exitText = exit.error ? `failed to start (${exit.error.message})` : exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
  if (exit.code !== 0) throw new CorrectnessFailure(`round ${r}: the rebuild exited with ${exitText}\n--- ${rebuild.logFile} ---\n${rebuild.logTail(40)}`);
  log(`round ${r}: the rebuild exited 0 after ${wallSeconds.toFixed(1)} s; replay group ${describeProgress(replay)}`);

  // What the rebuild says, and what the instances say.
  const status = await rebuildStatus({ infra, topic: names.topic, dlqTopic: names.dlqTopic, groupId: serviceGroup, keyPrefix: serviceKeys, partitions: settings.partitions });
  const state = (status.rebuild ?? {}) as { generation?: number; phase?: string; propagationMs?: number; flippedAt?: number };
  assertCorrect(state.generation === generation && state.phase === 'done', `round ${r}: rebuild status says generation ${state.generation}, phase ${state.phase}; expected generation ${generation}, done`);
  assertCorrect(status.current === generation && status.building === undefined && status.previous === undefined, `round ${r}: the pointer after the rebuild is ${JSON.stringify({ current: status.current, building: status.building, previous: status.previous })}`);
  const flippedAt = state.flippedAt ?? null;
  const heartbeats = await readHeartbeats(redis);
  assertCorrect(heartbeats.length === instances.length, `round ${r}: ${heartbeats.length} heartbeats, not ${instances.length}`);
  assertCorrect(heartbeats.every((beat) => beat.current === generation), `round ${r}: not every instance reads generation ${generation}: ${JSON.stringify(heartbeats)}`);
  const heartbeatMs = flippedAt === null ? [] : heartbeats.map((beat) => beat.currentSince - flippedAt).sort((a, b) => a - b);

  // Correctness: every task's last update (live ones included) in the new generation; nothing left of the old one.
  const serviceCaughtUp = await watchGroupUntilCaughtUp({ kafka, groupId: serviceGroup, topic: names.topic, intervalMs: 50, timeoutMs: 120_000 });
  assertCorrect(serviceCaughtUp.caughtUp, `round ${r}: the instances did not apply the live updates within 120 s (${describeProgress(serviceCaughtUp)})`);
  const checks: string[] = [];
  await checkGeneration(redis, generation, tasks.lastBytes);
  checks.push(`generation ${generation} holds exactly ${tasks.lastBytes.size} tasks, each with the bytes of its last update (${produced} live updates produced during the round)`);
  const leftKeys = (await keysWithPrefix(redis, `${serviceKeys}g:${generationBefore}:`)).length;
  assertCorrect(leftKeys === 0, `round ${r}: generation ${generationBefore} still has ${leftKeys} keys after the rebuild`);
  checks.push(`generation ${generationBefore} has no key left`);
  await checkInstancesServe(instances, generation, tasks.lastBytes);
  checks.push(`every instance reports generation ${generation} in /health/ready and serves the last update's bytes (${Math.min(settings.checkedPerInstance, tasks.lastBytes.size)} tasks per instance)`);
  const deadLetters = await kafka.eventCount(names.dlqTopic);
  assertCorrect(deadLetters === 0, `round ${r}: ${deadLetters} events were dead-lettered`);
  checks.push('no dead letter');
  const { groups: listed } = await kafka.admin.listGroups();
  checks.push(listed.some((group) => group.groupId === rebuildGroup) ? `the replay group ${rebuildGroup} was NOT deleted` : `the replay group ${rebuildGroup} was deleted`);

  // Reads: every request must have been answered 200 (every task exists throughout).
  const reads = readWindows(pacerOutput, { idleFrom, idleTo, rebuildFrom, rebuildTo, replay });
  const failedReads = [reads.idle, reads.wholeRebuild].reduce((sum, window) => sum + window.non200 + window.failed, 0) + reads.unanswered;
  assertCorrect(failedReads === 0, `round ${r}: ${failedReads} reads were not answered 200 (idle ${JSON.stringify(reads.idle)}, rebuild ${JSON.stringify(reads.wholeRebuild)}, unanswered ${reads.unanswered})`);
  checks.push(`every read answered 200 (${reads.idle.requests + reads.wholeRebuild.requests} measured)`);

  const during = memorySamples.filter((sample) => sample.at >= rebuildFrom && sample.at <= rebuildTo);
  const peak = during.reduce<MemorySample | undefined>((best, sample) => (best && best.used >= sample.used ? best : sample), undefined);
  const ownReplay = /replayed (\d+) events into generation \d+ in ([\d.]+) s/.exec(rebuildLog);
  const expected = /expect about ([\d.]+) MiB/.exec(rebuildLog);
  const rates = rateFigures(replay);
  return {
    round: r,
    order: '',
    generationBefore,
    generation,
    loadAverage1m,
    floor: { eventsPerSecond: null, events: 0, firstCommitSeconds: null, lastCommitSeconds: null },
    rebuild: {
      ...rates,
      exit: exitText,
      wallSeconds: round(wallSeconds, 1),
      ownReplay: ownReplay ? { events: Number(ownReplay[1]), seconds: Number(ownReplay[2]), eventsPerSecond: Math.round(Number(ownReplay[1]) / Number(ownReplay[2])) } : null,
      doneLine: /rebuild: done: .*/.exec(rebuildLog)?.[0] ?? null,
      expectedPeakMiB: expected ? Number(expected[1]) : null,
      status,
    },
    reads,
    propagation: {
      statusMs: state.propagationMs ?? null,
      heartbeatMs,
      health: healthFigures(healthSeen, flippedAt),
    },
    memory: {
      steadyUsedBytes: median(memorySamples.filter((sample) => sample.at >= idleFrom && sample.at <= idleTo).map((sample) => sample.used)),
      peakUsedBytes: peak?.used ?? null,
      peakSecondsAfterStart: peak ? round((peak.at - rebuildFrom) / 1000, 1) : null,
      afterUsedBytes: memoryAfter.used,
      usedMemoryPeakBytes: memoryAfter.peak,
      samples: memorySamples.length,
    },
    live: { rate: settings.liveRate, produced },
    cpu: { idle: idleCpuShares, replay: replayCpuShares, floor: null },
    checks,
  };
}

function rateFigures(progress: GroupProgress): RateFigures {
  const { firstCommit, lastCommit } = progress;
  return {
    eventsPerSecond: round(committedRate(progress), 0),
    events: progress.target,
    firstCommitSeconds: firstCommit ? round((firstCommit.at - progress.startedAt) / 1000, 2) : null,
    lastCommitSeconds: lastCommit ? round((lastCommit.at - progress.startedAt) / 1000, 2) : null,
  };
}

async function waitUntilReady(instance: TaskServer, index: number): Promise<void> {
  const deadline = Date.now() + settings.loadTimeoutSeconds * 1000;
  for (;;) {
    const answer = await instance.client.get('/health/ready', {}).catch((error: Error) => ({ status: 0, body: Buffer.from(error.message) }));
    if (answer.status === 200) return;
    if (Date.now() > deadline || !instance.child.running) {
      throw new Error(`instance ${index} not ready: ${answer.status} ${answer.body.toString().slice(0, 300)}\n${instance.child.logTail()}`);
    }
    await sleep(200);
  }
}

/** Every task of `generation` in Redis holds exactly the expected bytes, and there is no other task key. */
async function checkGeneration(redis: Redis, generation: number, expected: Map<string, Buffer>): Promise<void> {
  const prefix = `${serviceKeys}g:${generation}:task:`;
  const keys = await keysWithPrefix(redis, prefix);
  assertCorrect(keys.length === expected.size, `generation ${generation} has ${keys.length} task keys, not ${expected.size}`);
  const wrong: string[] = [];
  let wrongCount = 0;
  const entries = [...expected];
  for (let i = 0; i < entries.length; i += 1000) {
    const slice = entries.slice(i, i + 1000);
    const pipeline = redis.pipeline();
    for (const [taskId] of slice) pipeline.hgetBuffer(prefix + taskId, 'v');
    const replies = (await pipeline.exec()) ?? [];
    for (const [index, [error, value]] of replies.entries()) {
      const [taskId, bytes] = slice[index];
      if (error || !(value instanceof Buffer) || !value.equals(bytes)) {
        wrongCount++;
        if (wrong.length < 5) wrong.push(`${taskId}: ${error ? error.message : value instanceof Buffer ? `other bytes (${value.toString('latin1').match(/"pollCount":\d+/)?.[0]}, expected ${bytes.toString('latin1').match(/"pollCount":\d+/)?.[0]})` : 'missing'}`);
      }
    }
  }
  assertCorrect(wrongCount === 0, `generation ${generation}: ${wrongCount} of ${expected.size} tasks do not hold their last update, e.g. ${wrong.join('; ')}`);
}

/** Every instance reads `generation` and serves the last update's bytes, for a sample of tasks. */
async function checkInstancesServe(instances: TaskServer[], generation: number, expected: Map<string, Buffer>): Promise<void> {
  const ids = [...expected.keys()];
  const step = Math.max(1, Math.floor(ids.length / settings.checkedPerInstance));
  const sample = ids.filter((_, index) => index % step === 0);
  for (const [index, instance] of instances.entries()) {
    const ready = await instance.client.get('/health/ready', {});
    const reported = (JSON.parse(ready.body.toString()) as { details?: { projection?: { generation?: number } } }).details?.projection?.generation;
    assertCorrect(ready.status === 200 && reported === generation, `instance ${index + 1}: /health/ready answered ${ready.status}, generation ${reported}, not ${generation}`);
    for (const taskId of sample) {
      const { status, body } = await instance.client.getTask(taskId, settings.route);
      assertCorrect(status === 200 && body.equals(expected.get(taskId)!), `instance ${index + 1}: GET ${settings.route}${taskId} answered ${status} with ${status === 200 ? 'other bytes' : body.toString().slice(0, 200)}`);
    }
  }
}

interface Heartbeat {
  id: string;
  current: number;
  currentSince: number;
}

async function readHeartbeats(redis: Redis): Promise<Heartbeat[]> {
  const keys = new ProjectionKeys(serviceKeys);
  const ids = await redis.zrange(keys.instances, '0', '-1');
  const beats = await Promise.all(ids.map((id) => redis.get(keys.instance(id))));
  return beats.filter((beat): beat is string => beat !== null).map((beat) => JSON.parse(beat) as Heartbeat);
}

/**
 * Polls every instance's /health/ready every healthPollMs for the generation it reads, until each
 * has answered with `generation` (or the rebuild has exited and 5 s more have passed). Times are epoch ms.
 */
function watchInstanceGenerations(instances: TaskServer[], generation: number, rebuildRunning: () => boolean): { done(): Promise<{ lastOldAt: number | null; firstNewAt: number | null; polls: number }[]> } {
  let exitedAt: number | undefined;
  const watches = instances.map(async (instance) => {
    let lastOldAt: number | null = null;
    let firstNewAt: number | null = null;
    let polls = 0;
    for (;;) {
      if (!rebuildRunning()) exitedAt ??= Date.now();
      if (exitedAt !== undefined && Date.now() - exitedAt > 5000) break;
      polls++;
      try {
        const answer = await instance.client.get('/health/ready', {});
        const at = Date.now();
        const body = JSON.parse(answer.body.toString()) as { details?: { projection?: { generation?: number } } };
        const reads = body.details?.projection?.generation;
        if (reads === generation) {
          firstNewAt = at;
          break;
        }
        if (reads !== undefined && reads < generation) lastOldAt = at;
      } catch {
        // A failed poll tells nothing either way.
      }
      await sleep(settings.healthPollMs);
    }
    return { lastOldAt, firstNewAt, polls };
  });
  return { done: () => Promise.all(watches) };
}

function healthFigures(seen: { lastOldAt: number | null; firstNewAt: number | null; polls: number }[], flippedAt: number | null): RoundFigures['propagation']['health'] {
  const relative = (at: number | null): number | null => (at === null || flippedAt === null ? null : at - flippedAt);
  const instances = seen.map((observation, index) => ({ instance: index + 1, lastOldMs: relative(observation.lastOldAt), firstNewMs: relative(observation.firstNewAt), polls: observation.polls }));
  const firstNew = instances.map((instance) => instance.firstNewMs);
  const lastOld = instances.map((instance) => instance.lastOldMs).filter((ms): ms is number => ms !== null);
  return {
    pollMs: settings.healthPollMs,
    upperMs: firstNew.some((ms) => ms === null) ? null : Math.max(...(firstNew as number[])),
    lowerMs: lastOld.length > 0 ? Math.max(...lastOld) : null,
    instances,
  };
}

interface MemorySample {
  at: number;
  used: number;
}

/** INFO memory's used_memory every `intervalMs`, on a connection of its own. */
function startMemoryPoller(redisUrl: string, intervalMs: number): { stop(): Promise<MemorySample[]> } {
  const client = new Redis(redisUrl, { maxRetriesPerRequest: 1, connectionName: `${names.name}-memory` });
  const samples: MemorySample[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const started = Date.now();
      try {
        const used = Number(/used_memory:(\d+)/.exec(await client.info('memory'))?.[1]);
        if (Number.isFinite(used)) samples.push({ at: Date.now(), used });
      } catch {
        // A missed sample; the next one follows.
      }
      await sleep(Math.max(0, intervalMs - (Date.now() - started)));
    }
  })();
  return {
    async stop() {
      if (!stopped) {
        stopped = true;
        await loop;
        await client.quit().catch(() => undefined);
      }
      return samples;
    },
  };
}

/** used_memory once UNLINK's lazy freeing has finished (lazyfree_pending_objects 0), and used_memory_peak. */
async function settledMemory(redis: Redis): Promise<{ used: number; peak: number }> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const info = await redis.info('memory');
    const field = (name: string): number => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? NaN);
    if (field('lazyfree_pending_objects') === 0 || Date.now() > deadline) {
      await sleep(1000);
      const settled = await redis.info('memory');
      const settledField = (name: string): number => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(settled)?.[1] ?? NaN);
      return { used: settledField('used_memory'), peak: settledField('used_memory_peak') };
    }
    await sleep(100);
  }
}

/**
 * Live updates at a steady rate: random tasks, each the task's next update, sent one call after
 * another so every task's updates keep their order; `tasks` follows what was produced.
 */
function startLiveWriter(kafka: TestKafka, taskIds: string[], tasks: TaskState, rate: number): { stop(): Promise<number> } {
  let stopped = false;
  let produced = 0;
  let failure: Error | undefined;
  const started = performance.now();
  const loop = (async () => {
    while (!stopped) {
      const due = Math.floor(((performance.now() - started) * rate) / 1000);
      if (due > produced) {
        const messages = [];
        for (; produced < due; produced++) {
          const taskId = taskIds[Math.floor(Math.random() * taskIds.length)];
          const update = (tasks.lastUpdate.get(taskId) ?? -1) + 1;
          const value = sampleTaskBytes(taskId, update);
          tasks.lastUpdate.set(taskId, update);
          tasks.lastBytes.set(taskId, value);
          messages.push({ key: taskId, value });
        }
        await kafka.send(names.topic, messages);
      }
      await sleep(10);
    }
  })().catch((error: Error) => {
    failure = error;
  });
  return {
    async stop() {
      stopped = true;
      await loop;
      if (failure) throw new Error(`live updates failed: ${failure.message}`);
      return produced;
    },
  };
}

interface PacerOutput {
  unanswered: number;
  samples: number[];
}

/** The read windows of one round, from the pacer's requests (by when each was due). */
function readWindows(
  file: string,
  { idleFrom, idleTo, rebuildFrom, rebuildTo, replay }: { idleFrom: number; idleTo: number; rebuildFrom: number; rebuildTo: number; replay: GroupProgress },
): RoundFigures['reads'] {
  const output = JSON.parse(readFileSync(file, 'utf8')) as PacerOutput;
  const replayFrom = replay.firstCommit ? epochOf(replay.firstCommit.at) : rebuildFrom;
  const replayTo = replay.lastCommit ? epochOf(replay.lastCommit.at) : rebuildTo;
  const window = (from: number, to: number, instance?: number) => readWindow(output.samples, from, to, instance);
  return {
    rate: settings.readRate,
    idle: window(idleFrom, idleTo),
    replay: window(replayFrom, replayTo),
    afterReplay: window(replayTo, rebuildTo),
    wholeRebuild: window(rebuildFrom, rebuildTo),
    perInstanceDuringRebuild: Array.from({ length: settings.instances }, (_, instance) => window(rebuildFrom, rebuildTo, instance)),
    unanswered: output.unanswered,
  };
}

function readWindow(samples: number[], from: number, to: number, instance?: number): ReadWindow {
  const latencies: number[] = [];
  let requests = 0;
  let non200 = 0;
  let failed = 0;
  for (let i = 0; i < samples.length; i += 4) {
    const [dueAt, latency, status, target] = [samples[i], samples[i + 1], samples[i + 2], samples[i + 3]];
    if (dueAt < from || dueAt >= to || (instance !== undefined && target !== instance)) continue;
    requests++;
    if (status === 200) latencies.push(latency);
    else if (status === 0) failed++;
    else non200++;
  }
  const seconds = (to - from) / 1000;
  return {
    seconds: round(seconds, 1),
    requests,
    ok: latencies.length,
    non200,
    failed,
    achievedRate: round(seconds > 0 ? requests / seconds : 0, 0),
    p50Ms: round(percentile(latencies, 50), 2),
    p99Ms: round(percentile(latencies, 99), 2),
    p999Ms: round(percentile(latencies, 99.9), 2),
    maxMs: round(percentile(latencies, 100), 2),
  };
}

function mib(bytes: number | null): number | null {
  return bytes === null ? null : round(bytes / MIB, 1);
}

function rebuildMarkdown(figures: RebuildFigures): string {
  const { settings: s, summary, rounds } = figures;
  const perRound = (pick: (round: RoundFigures) => unknown): string => rounds.map((round) => String(pick(round) ?? 'n/a')).join(', ');
  const cores = (shares: CpuShares | null, group: string): string => String(shares?.cores[group] ?? 'n/a');
  const lines = [
    ...sectionHead('Rebuild', figures),
    `- ${s.events} events (${s.tasks} tasks × ${s.updatesPerTask} updates, ~${s.eventBytes} bytes each) on a ${s.partitions}-partition compacted topic, produced before any consumer starts ` +
      `(Kafka's 1 GiB segments: nothing was compacted during the run, so every event is replayed). ${s.instances} instances of \`node dist/main.js\` in one group serve and ingest throughout; ` +
      `${s.rounds} round(s), each a rebuild (\`node dist/rebuild/main.js start\`, what \`npm run rebuild\` runs) and a floor run, the order alternating. ${figures.durationSeconds} s in all.`,
    `- Rates: events committed by the group (the rebuild's replay group \`<group>.rebuild.g<N>\`, the floor's own) between the first and the last commit seen / the time between them, ` +
      `read every ${s.offsetPollMs} ms, the same way for both. The floor is \`bench/floor-consumer.ts\` (kafkajs, eachBatch doing nothing, default fetch sizes).`,
    `- Reads: open loop (\`bench/read-pacer.ts\`, its own process) at ${s.readRate} req/s in all, round-robin over the ${s.instances} instances, random task ids on \`${s.route}:taskId\` with a valid token; ` +
      `latency from when each request was due to its whole answer. Idle: ${s.idleSeconds} s before the rebuild (after ${s.readWarmupSeconds} s of warm-up); during: from the replay's first commit to its last (and the whole rebuild, start to exit). ` +
      `Live updates at ${s.liveRate} events/s to random tasks in both phases. Every read was answered 200. ` +
      (s.rebuildMaxRate ? `The rebuild ran with \`--max-rate ${s.rebuildMaxRate}\`.` : 'The rebuild ran without `--max-rate` (as fast as it goes, its default).'),
    '',
    '| | rebuild (replay) | floor (kafkajs, no work) | rebuild/floor |',
    '|---|---|---|---|',
    `| events/s (median) | ${summary.rebuildEventsPerSecond ?? 'n/a'} | ${summary.floorEventsPerSecond ?? 'n/a'} | ${summary.ratio ?? 'n/a'} |`,
    `| events/s per round | ${perRound((round) => round.rebuild.eventsPerSecond)} | ${perRound((round) => round.floor.eventsPerSecond)} | |`,
    '',
    `Live ingest by one instance of the service on the same topic (instance 1 alone, cold, measured the same way, once): ${summary.liveIngestOneInstanceEventsPerSecond ?? 'n/a'} events/s; ` +
      `the replay ran at ${summary.rebuildOverLiveIngest ?? 'n/a'}× that. The rebuild's own log (its consumer's start included): ${perRound((round) => (round.rebuild.ownReplay ? `${round.rebuild.ownReplay.events} events in ${round.rebuild.ownReplay.seconds} s` : null))}; ` +
      `the whole command (announce, replay, flip, deleting the old generation): ${perRound((round) => `${round.rebuild.wallSeconds} s`)}.`,
    '',
    `Events per CPU-second of the consuming process (its rate / the cores it used meanwhile, from /proc; less sensitive to what else ran): ` +
      `rebuild ${summary.eventsPerCpuSecond.rebuild ?? 'n/a'}, live ingest ${summary.eventsPerCpuSecond.liveIngest ?? 'n/a'}, floor ${summary.eventsPerCpuSecond.floor ?? 'n/a'}.`,
    '',
    `| read latency at ${s.readRate} req/s, ms | idle | during the replay | replay end to exit (flip, cleanup) | whole rebuild |`,
    '|---|---|---|---|---|',
    ...rounds.flatMap((round) => [
      `| round ${round.round} p50 | ${round.reads.idle.p50Ms} | ${round.reads.replay.p50Ms} | ${round.reads.afterReplay.p50Ms} | ${round.reads.wholeRebuild.p50Ms} |`,
      `| round ${round.round} p99 | ${round.reads.idle.p99Ms} | ${round.reads.replay.p99Ms} | ${round.reads.afterReplay.p99Ms} | ${round.reads.wholeRebuild.p99Ms} |`,
      `| round ${round.round} max | ${round.reads.idle.maxMs} | ${round.reads.replay.maxMs} | ${round.reads.afterReplay.maxMs} | ${round.reads.wholeRebuild.maxMs} |`,
    ]),
    `| **median p99** | **${summary.readP99IdleMs}** | **${summary.readP99ReplayMs}** | | **${summary.readP99WholeRebuildMs}** |`,
    '',
    `Read p99 during the replay / idle: ${summary.readP99RatioReplayOverIdle ?? 'n/a'}×.`,
    '',
    `| from the flip to every one of ${s.instances} instances reading the new generation, ms | ${rounds.map((round) => `round ${round.round}`).join(' | ')} |`,
    `|---|${rounds.map(() => '---').join('|')}|`,
    `| \`rebuild status --json\` propagationMs (heartbeats polled every 25 ms) | ${perRound((round) => round.propagation.statusMs).split(', ').join(' | ')} |`,
    `| instances' heartbeats: currentSince − flippedAt, per instance | ${rounds.map((round) => round.propagation.heartbeatMs.join(', ')).join(' | ')} |`,
    `| /health/ready polled every ${s.healthPollMs} ms: last old answer … first new answer (max over instances) | ${rounds.map((round) => `${round.propagation.health.lowerMs ?? 'n/a'} … ${round.propagation.health.upperMs ?? 'n/a'}`).join(' | ')} |`,
    '',
    `| Redis used_memory, MiB | ${rounds.map((round) => `round ${round.round}`).join(' | ')} |`,
    `|---|${rounds.map(() => '---').join('|')}|`,
    `| steady, one generation (median over the idle window) | ${rounds.map((round) => mib(round.memory.steadyUsedBytes)).join(' | ')} |`,
    `| peak during the rebuild (INFO every ${s.memoryPollMs} ms) | ${rounds.map((round) => `${mib(round.memory.peakUsedBytes)} (${round.memory.peakSecondsAfterStart} s in)`).join(' | ')} |`,
    `| the rebuild's own estimate of the peak before it started | ${rounds.map((round) => round.rebuild.expectedPeakMiB ?? 'n/a').join(' | ')} |`,
    `| after the cleanup (lazy free done) | ${rounds.map((round) => mib(round.memory.afterUsedBytes)).join(' | ')} |`,
    `| used_memory_peak (since redis-server started) | ${rounds.map((round) => mib(round.memory.usedMemoryPeakBytes)).join(' | ')} |`,
    '',
    `Cores busy in the idle window (CPU seconds per second): ${rounds
      .map((round) => `round ${round.round}: instances ${cores(round.cpu.idle, 'services')}, redis ${cores(round.cpu.idle, 'redis')}, kafka ${cores(round.cpu.idle, 'kafka')}, read pacer ${cores(round.cpu.idle, 'pacer')}, other processes ${round.cpu.idle.otherCores ?? 'n/a'}, machine ${round.cpu.idle.machineCores ?? 'n/a'}`)
      .join('; ')}. ` +
      `During the replay: ${rounds
      .map(
        (round) =>
          `round ${round.round}: rebuild ${cores(round.cpu.replay, 'rebuild')}, instances ${cores(round.cpu.replay, 'services')}, redis ${cores(round.cpu.replay, 'redis')}, kafka ${cores(round.cpu.replay, 'kafka')}, ` +
          `read pacer ${cores(round.cpu.replay, 'pacer')}, other processes ${round.cpu.replay?.otherCores ?? 'n/a'}, machine ${round.cpu.replay?.machineCores ?? 'n/a'}`,
      )
      .join('; ')}. ` +
      `During the floor: ${rounds.map((round) => `floor ${cores(round.cpu.floor, 'floor')}, kafka ${cores(round.cpu.floor, 'kafka')}, machine ${round.cpu.floor?.machineCores ?? 'n/a'}`).join('; ')}. ` +
      `During instance 1's live ingest: service ${cores(figures.liveIngest.cpu, 'service')}, redis ${cores(figures.liveIngest.cpu, 'redis')}, kafka ${cores(figures.liveIngest.cpu, 'kafka')}, machine ${figures.liveIngest.cpu?.machineCores ?? 'n/a'}. ` +
      `1-minute load average at each round's start: ${perRound((round) => round.loadAverage1m)}.`,
    '',
    `Checked after each rebuild: ${rounds[rounds.length - 1]?.checks.join('; ') ?? 'n/a'}.`,
  ];
  return lines.join('\n');
}

await runBenchmark('rebuild', main);
