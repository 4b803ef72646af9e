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
import { SMOKE, ingestSettings, runNames } from './bench-settings.mjs';
import { openBenchStack } from './bench-stack.mjs';
import { commandLine, log as logFor, runBenchmark } from './benchmark-entry.mjs';
import { onCleanup } from './cleanup-stack.mjs';
import { CorrectnessFailure, assertCorrect } from './correctness-failure.mjs';
import { startFloorConsumer } from './floor-processes.mjs';
import { measureFreshness } from './freshness.mjs';
import { goalsMarkdown, judgeGoals } from './goals-table.mjs';
import { committedRate, describeProgress, watchGroupUntilCaughtUp } from './group-progress.mjs';
import { machineInfo } from './machine-info.mjs';
import { deleteKeysWithPrefix } from './redis-prefix.mjs';
import { projectionMemory } from './redis-memory.mjs';
import { writeResults } from './results-writer.mjs';
import { seedShapedTaskBytes } from './seed-shaped-task.mjs';
import { startService } from './service-process.mjs';
import { median, ratio, round } from './statistics.mjs';
import { waitUntilReadable } from './task-readability.mjs';
import { createTaskTopics, deleteGroups, deleteTopics, eventsInTopic, produceMessages, taskProducer } from './task-topic.mjs';

const log = (message) => logFor('ingest', message);
const settings = ingestSettings();
const names = runNames('ingest');
const token = randomBytes(24).toString('hex');
const READ_ROUTE = '/api/tasks/';

async function main() {
  const startedAt = new Date();
  const totalEvents = settings.tasks * settings.updatesPerTask;
  log(`${SMOKE ? 'SMOKE run' : 'full run'} ${names.name}: ${settings.tasks} tasks × ${settings.updatesPerTask} updates = ${totalEvents} events, ${settings.rounds} round(s) per side`);
  const { infra, redis, kafka, admin } = await openBenchStack(names);

  const groups = [];
  const keyPrefixes = [];
  onCleanup('delete the run topics', () => deleteTopics(admin, [names.topic, names.dlqTopic]));
  onCleanup('delete the run groups', () => deleteGroups(admin, groups));
  onCleanup('delete the run keys', async () => {
    for (const prefix of keyPrefixes) await deleteKeysWithPrefix(redis, prefix);
  });
  // cleanup.policy=delete rather than the service's compact: compaction could drop superseded
  // updates before a round reads them, and every round must read all M events.
  await createTaskTopics(admin, { topic: names.topic, dlqTopic: names.dlqTopic, partitions: settings.partitions, cleanupPolicy: 'delete' });

  // 1. All events in Kafka before any consumer starts.
  const taskIds = Array.from({ length: settings.tasks }, (_, index) => names.taskId(index));
  const producer = taskProducer(kafka);
  await producer.connect();
  onCleanup('disconnect the producer', () => producer.disconnect());
  const lastBytes = new Map();
  const produceStarted = performance.now();
  for (let update = 0; update < settings.updatesPerTask; update++) {
    const messages = taskIds.map((taskId) => ({ key: taskId, value: seedShapedTaskBytes(taskId, update) }));
    // One update per task per call, calls one after another: each task's updates keep their order.
    await produceMessages(producer, names.topic, messages);
    for (const { key, value } of messages) lastBytes.set(key, value);
  }
  const produceSeconds = (performance.now() - produceStarted) / 1000;
  const inTopic = await eventsInTopic(admin, names.topic);
  assertCorrect(inTopic === totalEvents, `the topic holds ${inTopic} events, not the ${totalEvents} produced`);
  const eventBytes = [...lastBytes.values()].reduce((sum, bytes) => sum + bytes.length, 0) / lastBytes.size;
  log(`produced ${totalEvents} events (~${Math.round(eventBytes)} bytes each) in ${produceSeconds.toFixed(2)} s`);

  // 2. Rounds, alternating which side goes first, except that the last service round comes last:
  //    that service stays up for the memory and freshness measurements.
  const rounds = { floor: [], service: [] };
  let service;
  let serviceKeys;
  for (let r = 1; r <= settings.rounds; r++) {
    const order = r % 2 === 1 || r === settings.rounds ? ['floor', 'service'] : ['service', 'floor'];
    for (const side of order) {
      const last = r === settings.rounds;
      if (side === 'floor') {
        rounds.floor.push(await floorRound(r, infra, admin, groups));
      } else {
        const outcome = await serviceRound(r, { infra, admin, redis, groups, keyPrefixes, lastBytes, keepRunning: last });
        rounds.service.push(outcome.figures);
        if (last) ({ service, serviceKeys } = outcome);
      }
    }
  }

  // 3. Memory per task in the last round's projection.
  const jsonBytes = [...lastBytes.values()].reduce((sum, bytes) => sum + bytes.length, 0);
  const memory = await projectionMemory(redis, { keyPrefix: serviceKeys, tasks: taskIds.length, jsonBytes });
  log(`redis memory: ${Math.round(memory.redisBytesPerTask)} bytes per task for ${Math.round(memory.jsonBytesPerTask)} JSON bytes (${memory.ratio.toFixed(2)}×, ${memory.keys} keys)`);

  // 4. Freshness at a steady rate, then every event applied.
  log(`freshness: ${settings.freshnessRate} events/s for ${settings.freshnessSeconds} s, 1 event in ${settings.freshnessSampleEvery} tracked`);
  const freshness = await measureFreshness({
    producer,
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
      `p50 ${freshness.p50Ms.toFixed(1)} ms, p99 ${freshness.p99Ms.toFixed(1)} ms, max ${freshness.maxMs.toFixed(1)} ms` +
      (freshness.timedOut > 0 ? `, ${freshness.timedOut} not served within ${settings.freshnessTimeoutMs} ms` : ''),
  );
  const finalBytes = new Map([...lastBytes, ...freshness.lastBytes]);
  await waitUntilReadable({ client: service.client, expected: finalBytes, timeoutSeconds: settings.readableTimeoutSeconds, route: READ_ROUTE });
  await assertNoDeadLetters(admin);
  log(`after the freshness run every task serves its last update (${taskIds.length} checked); no dead letter`);

  // 5. Figures, goals, results.
  const floorRate = median(rounds.floor.map((round) => round.eventsPerSecond));
  const serviceRate = median(rounds.service.map((round) => round.eventsPerSecond));
  const summary = {
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
  const figures = {
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
function watchRound(admin, groupId, startedAt, alive) {
  return watchGroupUntilCaughtUp({
    admin,
    groupId,
    topic: names.topic,
    intervalMs: settings.offsetPollMs,
    timeoutMs: settings.roundTimeoutSeconds * 1000,
    startedAt,
    alive,
  });
}

async function floorRound(r, infra, admin, groups) {
  const groupId = names.groupId(`floor-${r}`);
  groups.push(groupId);
  const startedAt = performance.now();
  const floor = startFloorConsumer({ runName: names.name, name: `floor-consumer-${r}`, kafkaBrokersText: infra.kafkaBrokersText, topic: names.topic, groupId });
  onCleanup(`stop floor consumer ${r}`, () => floor.stop());
  const progress = await watchRound(admin, groupId, startedAt, () => floor.running);
  await floor.stop();
  if (!progress.caughtUp) {
    throw new Error(`the floor consumer did not commit the topic within ${settings.roundTimeoutSeconds} s (${describeProgress(progress)}; ${floor.running ? 'running' : floor.describeExit()})\n${floor.logTail()}`);
  }
  const figures = roundFigures(progress);
  log(`round ${r} floor:   ${figures.eventsPerSecond ?? 'n/a'} events/s (${describeProgress(progress)})`);
  return figures;
}

async function serviceRound(r, { infra, admin, redis, groups, keyPrefixes, lastBytes, keepRunning }) {
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
  const progress = await watchRound(admin, groupId, startedAt, () => service.child.running);
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
  await assertNoDeadLetters(admin);
  figures.readableAfterCommitSeconds = round(readable.seconds, 3);
  log(`round ${r} service: every task serves its last update (${lastBytes.size} checked); no dead letter`);

  if (keepRunning) return { figures, service, serviceKeys };
  await service.child.stop();
  await deleteKeysWithPrefix(redis, serviceKeys);
  return { figures };
}

function roundFigures(progress) {
  return {
    eventsPerSecond: round(committedRate(progress), 0),
    firstCommitSeconds: round((progress.firstCommit.at - progress.startedAt) / 1000, 3),
    lastCommitSeconds: round((progress.lastCommit.at - progress.startedAt) / 1000, 3),
    eventsInFirstCommit: progress.firstCommit.events,
    events: progress.target,
  };
}

async function assertNoDeadLetters(admin) {
  const deadLetters = await eventsInTopic(admin, names.dlqTopic);
  assertCorrect(deadLetters === 0, `${deadLetters} valid events were dead-lettered to ${names.dlqTopic}`);
}

function ingestMarkdown({ figures, summary, goals }) {
  const { machine, settings: s } = figures;
  const perRound = (side) => figures.rounds[side].map((round) => round.eventsPerSecond ?? 'n/a').join(', ');
  const f = summary.freshness;
  return [
    `## Ingest${SMOKE ? ' (smoke run: sizes too small for the figures to mean anything)' : ''}`,
    '',
    `- Date: ${figures.date}`,
    `- Command: \`${figures.command}\``,
    `- Machine: ${machine.cores} cores (${machine.cpu}), Node ${machine.node}, Kafka ${machine.kafka}, Redis ${machine.redis}`,
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
