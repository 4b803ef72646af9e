// npm run bench:ingest: the ingest path, measured side by side with its floor in one run.
//
// 1. Produces M seed-shaped events (tasks × updates, one full round of updates after another) to a
//    4-partition topic of the run's own, before any consumer starts.
// 2. Rounds that alternate the floor (a kafkajs consumer doing nothing, group of its own) and the
//    service (a fresh group and key prefix each round), both started cold on the full topic. Each
//    rate = events committed between the group's first and last commit seen / the time between
//    them, observed the same way for both through the group's committed offsets (admin fetchOffsets,
//    every 10 ms). After each service round: every task served with its last update's bytes, and no
//    dead letter.
// 3. Redis memory per task: MEMORY USAGE of every key under the service's prefix / the JSON bytes.
// 4. Freshness: at a steady 1,000 events/s into the caught-up service, produce -> first GET that
//    returns the event (p50/p99); then every task must serve its last update.
// BENCH_SMOKE=1: tiny sizes; asserts correctness only.
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { InfraSettings } from '../test/support/infra.js';
import { sampleTaskBytes } from '../test/support/sample-task.js';
import type { TestKafka } from '../test/support/test-kafka.js';
import { CorrectnessFailure, assertCorrect, logger, onCleanup, runBenchmark } from './bench-run.js';
import { committedRate, describeProgress, watchGroupUntilCaughtUp, type GroupProgress } from './group-progress.js';
import { deleteKeysWithPrefix, projectionMemory, type ProjectionMemory } from './redis-store.js';
import { goalsMarkdown, judgeGoals, machineInfo, sectionHead, writeResults, type JudgedGoal, type MachineInfo } from './results.js';
import { SMOKE, commandLine, ingestSettings, runNames, type IngestSettings } from './settings.js';
import { openBenchStack, startFloorConsumer, startService, type TaskServer } from './stack.js';
import { median, ratio, round } from './statistics.js';
import { measureFreshness, waitUntilReadable } from './task-reading.js';

const log = logger('ingest');
const settings = ingestSettings();
const names = runNames('ingest');
const token = randomBytes(24).toString('hex');
const READ_ROUTE = '/api/tasks/';

interface RoundFigures {
  eventsPerSecond: number | null;
  firstCommitSeconds: number;
  lastCommitSeconds: number;
  eventsInFirstCommit: number;
  events: number;
  readableAfterCommitSeconds?: number;
}

interface IngestSummary {
  floorEventsPerSecond: number | null;
  serviceEventsPerSecond: number | null;
  ratio: number | null;
  freshness: { rate: number; achievedRate: number; p50Ms: number | null; p99Ms: number | null; maxMs: number | null; tracked: number; timedOut: number };
  memory: ProjectionMemory;
}

interface IngestFigures {
  benchmark: 'ingest';
  smoke: boolean;
  date: string;
  command: string;
  machine: MachineInfo;
  settings: IngestSettings & { events: number; eventBytes: number };
  producing: { seconds: number; eventsPerSecond: number };
  summary: IngestSummary;
  goals: JudgedGoal[];
  rounds: { floor: RoundFigures[]; service: RoundFigures[] };
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const totalEvents = settings.tasks * settings.updatesPerTask;
  log(`${SMOKE ? 'SMOKE run' : 'full run'} ${names.name}: ${settings.tasks} tasks × ${settings.updatesPerTask} updates = ${totalEvents} events, ${settings.rounds} round(s) per side`);
  const { infra, redis, kafka } = await openBenchStack(names.name);

  const groups: string[] = [];
  const keyPrefixes: string[] = [];
  onCleanup('delete the run topics', () => kafka.deleteTopics([names.topic, names.dlqTopic]));
  onCleanup('delete the run groups', () => kafka.deleteGroups(groups));
  onCleanup('delete the run keys', async () => {
    for (const prefix of keyPrefixes) await deleteKeysWithPrefix(redis, prefix);
  });
  // cleanup.policy=delete rather than the service's compact: compaction could drop superseded
  // updates before a round reads them, and every round must read all M events.
  await kafka.createTaskTopics(names.topic, names.dlqTopic, settings.partitions, 'delete');

  // 1. All events in Kafka before any consumer starts.
  const taskIds = Array.from({ length: settings.tasks }, (_, index) => names.taskId(index));
  const lastBytes = new Map<string, Buffer>();
  const produceStarted = performance.now();
  for (let update = 0; update < settings.updatesPerTask; update++) {
    const messages = taskIds.map((taskId) => ({ key: taskId, value: sampleTaskBytes(taskId, update) }));
    // One update per task per call, calls one after another: each task's updates keep their order.
    await kafka.sendAll(names.topic, messages);
    for (const { key, value } of messages) lastBytes.set(key, value);
  }
  const produceSeconds = (performance.now() - produceStarted) / 1000;
  const inTopic = await kafka.eventCount(names.topic);
  assertCorrect(inTopic === totalEvents, `the topic holds ${inTopic} events, not the ${totalEvents} produced`);
  const eventBytes = [...lastBytes.values()].reduce((sum, bytes) => sum + bytes.length, 0) / lastBytes.size;
  log(`produced ${totalEvents} events (~${Math.round(eventBytes)} bytes each) in ${produceSeconds.toFixed(2)} s`);

  // 2. Rounds, alternating which side goes first, except that the last service round comes last:
  //    that service stays up for the memory and freshness measurements.
  const rounds: IngestFigures['rounds'] = { floor: [], service: [] };
  let kept: { service: TaskServer; serviceKeys: string } | undefined;
  for (let r = 1; r <= settings.rounds; r++) {
    const order = r % 2 === 1 || r === settings.rounds ? ['floor', 'service'] : ['service', 'floor'];
    for (const side of order) {
      if (side === 'floor') {
        rounds.floor.push(await floorRound(r, infra, kafka, groups));
      } else {
        const outcome = await serviceRound(r, { infra, kafka, redis, groups, keyPrefixes, lastBytes, keepRunning: r === settings.rounds });
        rounds.service.push(outcome.figures);
        kept = outcome.kept ?? kept;
      }
    }
  }

  if (!kept) throw new Error('no service round kept its service running');
  const { service, serviceKeys } = kept;

  // 3. Memory per task in the last round's projection.
  const jsonBytes = [...lastBytes.values()].reduce((sum, bytes) => sum + bytes.length, 0);
  const memory = await projectionMemory(redis, { keyPrefix: serviceKeys, tasks: taskIds.length, jsonBytes });
  log(`redis memory: ${Math.round(memory.redisBytesPerTask)} bytes per task for ${Math.round(memory.jsonBytesPerTask)} JSON bytes (${memory.ratio.toFixed(2)}×, ${memory.keys} keys)`);

  // 4. Freshness at a steady rate, then every event applied.
  log(`freshness: ${settings.freshnessRate} events/s for ${settings.freshnessSeconds} s, 1 event in ${settings.freshnessSampleEvery} tracked`);
  const freshness = await measureFreshness({
    kafka,
    topic: names.topic,
    client: service.client,
    route: READ_ROUTE,
    taskIds,
    firstUpdate: settings.updatesPerTask,
    rate: settings.freshnessRate,
    seconds: settings.freshnessSeconds,
    sampleEvery: settings.freshnessSampleEvery,
    pollMs: settings.freshnessPollMs,
    timeoutMs: settings.freshnessTimeoutMs,
  });
  log(
    `freshness: ${freshness.tracked} tracked of ${freshness.produced} produced at ${Math.round(freshness.achievedRate)} events/s: ` +
      `p50 ${freshness.p50Ms?.toFixed(1)} ms, p99 ${freshness.p99Ms?.toFixed(1)} ms, max ${freshness.maxMs?.toFixed(1)} ms` +
      (freshness.timedOut > 0 ? `, ${freshness.timedOut} not served within ${settings.freshnessTimeoutMs} ms` : ''),
  );
  const finalBytes = new Map([...lastBytes, ...freshness.lastBytes]);
  await waitUntilReadable({ client: service.client, expected: finalBytes, timeoutSeconds: settings.readableTimeoutSeconds, route: READ_ROUTE });
  await assertNoDeadLetters(kafka);
  log(`after the freshness run every task serves its last update (${taskIds.length} checked); no dead letter`);

  // 5. Figures, goals, results.
  const floorRate = median(rounds.floor.map((round) => round.eventsPerSecond));
  const serviceRate = median(rounds.service.map((round) => round.eventsPerSecond));
  const summary: IngestSummary = {
    floorEventsPerSecond: round(floorRate, 0),
    serviceEventsPerSecond: round(serviceRate, 0),
    ratio: round(ratio(serviceRate, floorRate), 3),
    freshness: { rate: settings.freshnessRate, achievedRate: round(freshness.achievedRate, 0), p50Ms: round(freshness.p50Ms, 1), p99Ms: round(freshness.p99Ms, 1), maxMs: round(freshness.maxMs, 1), tracked: freshness.tracked, timedOut: freshness.timedOut },
    memory: { ...memory, redisBytesPerTask: round(memory.redisBytesPerTask, 0), jsonBytesPerTask: round(memory.jsonBytesPerTask, 0), ratio: round(memory.ratio, 3) },
  };
  const goals = judgeGoals([
    { goal: 'ingest events/s, service/floor', actual: summary.ratio, target: 0.8, atLeast: true },
    { goal: `freshness p99 ms at ${settings.freshnessRate} events/s`, actual: summary.freshness.p99Ms, target: 100, atLeast: false },
    { goal: 'redis bytes per task / JSON bytes', actual: summary.memory.ratio, target: 1.5, atLeast: false },
  ]);
  const machine = await machineInfo(redis);
  const figures: IngestFigures = {
    benchmark: 'ingest',
    smoke: SMOKE,
    date: startedAt.toISOString(),
    command: commandLine('bench:ingest'),
    machine,
    settings: { ...settings, events: totalEvents, eventBytes: Math.round(eventBytes) },
    producing: { seconds: round(produceSeconds, 3), eventsPerSecond: round(totalEvents / produceSeconds, 0) },
    summary,
    goals,
    rounds,
  };
  const section = ingestMarkdown({ figures, summary, goals });
  const written = writeResults('ingest', figures, section);
  console.log(`\n${section}\n`);
  log(`results written to ${written.json} and ${written.summary}`);
}

/** Follows a round's group through its committed offsets until it has committed the whole topic. */
function watchRound(kafka: TestKafka, groupId: string, startedAt: number, alive: () => boolean): Promise<GroupProgress> {
  return watchGroupUntilCaughtUp({
    kafka,
    groupId,
    topic: names.topic,
    intervalMs: settings.offsetPollMs,
    timeoutMs: settings.roundTimeoutSeconds * 1000,
    startedAt,
    alive,
  });
}

async function floorRound(r: number, infra: InfraSettings, kafka: TestKafka, groups: string[]): Promise<RoundFigures> {
  const groupId = names.groupId(`floor-${r}`);
  groups.push(groupId);
  const startedAt = performance.now();
  const floor = startFloorConsumer({ runName: names.name, name: `floor-consumer-${r}`, kafkaBrokers: infra.kafkaBrokers, topic: names.topic, groupId });
  onCleanup(`stop floor consumer ${r}`, () => floor.stop());
  const progress = await watchRound(kafka, groupId, startedAt, () => floor.running);
  await floor.stop();
  if (!progress.caughtUp) {
    throw new Error(`the floor consumer did not commit the topic within ${settings.roundTimeoutSeconds} s (${describeProgress(progress)}; ${floor.running ? 'running' : floor.describeExit()})\n${floor.logTail()}`);
  }
  const figures = roundFigures(progress);
  log(`round ${r} floor:   ${figures.eventsPerSecond ?? 'n/a'} events/s (${describeProgress(progress)})`);
  return figures;
}

async function serviceRound(
  r: number,
  { infra, kafka, redis, groups, keyPrefixes, lastBytes, keepRunning }: { infra: InfraSettings; kafka: TestKafka; redis: Redis; groups: string[]; keyPrefixes: string[]; lastBytes: Map<string, Buffer>; keepRunning: boolean },
): Promise<{ figures: RoundFigures; kept?: { service: TaskServer; serviceKeys: string } }> {
  const groupId = names.groupId(`service-${r}`);
  const serviceKeys = names.keyPrefix(`service-${r}`);
  groups.push(groupId);
  keyPrefixes.push(serviceKeys);
  const startedAt = performance.now();
  const service = await startService({
    runName: names.name,
    name: `service-${r}`,
    infra,
    topic: names.topic,
    dlqTopic: names.dlqTopic,
    groupId,
    keyPrefix: serviceKeys,
    token,
    partitions: settings.partitions,
  });
  onCleanup(`stop service ${r}`, () => service.child.stop());
  const progress = await watchRound(kafka, groupId, startedAt, () => service.child.running);
  if (!progress.caughtUp) {
    const state = service.child.running ? 'still running' : service.child.describeExit();
    throw new CorrectnessFailure(
      `the service did not apply all ${progress.target} events within ${settings.roundTimeoutSeconds} s (${describeProgress(progress)}; ${state})\n--- ${service.child.logFile} ---\n${service.child.logTail()}`,
    );
  }
  const figures = roundFigures(progress);
  log(`round ${r} service: ${figures.eventsPerSecond ?? 'n/a'} events/s (${describeProgress(progress)})`);

  // Committed means applied: every task serves its last update, and nothing was dead-lettered.
  const readable = await waitUntilReadable({ client: service.client, expected: lastBytes, timeoutSeconds: settings.readableTimeoutSeconds, route: READ_ROUTE });
  await assertNoDeadLetters(kafka);
  figures.readableAfterCommitSeconds = round(readable.seconds, 3);
  log(`round ${r} service: every task serves its last update (${lastBytes.size} checked); no dead letter`);

  if (keepRunning) return { figures, kept: { service, serviceKeys } };
  await service.child.stop();
  await deleteKeysWithPrefix(redis, serviceKeys);
  return { figures };
}

/** A caught-up round's figures (it has seen a first and a last commit). */
function roundFigures(progress: GroupProgress): RoundFigures {
  const { firstCommit, lastCommit } = progress;
  if (!firstCommit || !lastCommit) throw new Error(`${progress.groupId} caught up without a commit seen`);
  return {
    eventsPerSecond: round(committedRate(progress), 0),
    firstCommitSeconds: round((firstCommit.at - progress.startedAt) / 1000, 3),
    lastCommitSeconds: round((lastCommit.at - progress.startedAt) / 1000, 3),
    eventsInFirstCommit: firstCommit.events,
    events: progress.target,
  };
}

async function assertNoDeadLetters(kafka: TestKafka): Promise<void> {
  const deadLetters = await kafka.eventCount(names.dlqTopic);
  assertCorrect(deadLetters === 0, `${deadLetters} valid events were dead-lettered to ${names.dlqTopic}`);
}

function ingestMarkdown({ figures, summary, goals }: { figures: IngestFigures; summary: IngestSummary; goals: JudgedGoal[] }): string {
  const { settings: s } = figures;
  const perRound = (side: 'floor' | 'service'): string => figures.rounds[side].map((round) => round.eventsPerSecond ?? 'n/a').join(', ');
  const f = summary.freshness;
  return [
    ...sectionHead('Ingest', figures),
    `- ${s.events} events (${s.tasks} tasks × ${s.updatesPerTask} updates, ~${s.eventBytes} bytes each) on ${s.partitions} partitions, produced before any consumer starts. ` +
      `${s.rounds} round(s) per side, sides alternating; each side starts cold on the full topic with a group of its own.`,
    `- Rate = events committed between the group's first and last commit seen / the time between them, read from the group's committed offsets every ${s.offsetPollMs} ms, the same way for both sides.`,
    '',
    '| | service | floor (kafkajs, no work) | service/floor |',
    '|---|---|---|---|',
    `| events/s (median) | ${summary.serviceEventsPerSecond ?? 'n/a'} | ${summary.floorEventsPerSecond ?? 'n/a'} | ${summary.ratio ?? 'n/a'} |`,
    `| events/s per round | ${perRound('service')} | ${perRound('floor')} | |`,
    '',
    `Freshness at ${f.rate} events/s (achieved ${f.achievedRate}), produce to first GET returning the event, ${f.tracked} events tracked: ` +
      `p50 ${f.p50Ms} ms, p99 ${f.p99Ms} ms, max ${f.maxMs} ms${f.timedOut > 0 ? ` (${f.timedOut} not served within ${s.freshnessTimeoutMs} ms, counted as ${s.freshnessTimeoutMs} ms)` : ''}. Polling every ${s.freshnessPollMs} ms.`,
    '',
    `Redis memory: ${summary.memory.redisBytesPerTask} bytes per task (MEMORY USAGE of all ${summary.memory.keys} keys under the service's prefix / ${summary.memory.tasks} tasks) for ${summary.memory.jsonBytesPerTask} bytes of JSON: ${summary.memory.ratio}×.`,
    '',
    goalsMarkdown(goals),
  ].join('\n');
}

await runBenchmark('ingest', main);
