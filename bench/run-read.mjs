// npm run bench:read: the read path, measured side by side with its floor in one run.
//
// 1. Loads N seed-shaped tasks through Kafka into the service (the real path) and waits until every
//    one is served with the produced bytes.
// 2. Copies those bytes into plain string keys for the floor (a bare node:http + ioredis server).
// 3. autocannon, 50 connections, random task ids, valid token: a warm-up per side, then rounds that
//    alternate service and floor (the side that goes first alternates too), at saturation and at a
//    fixed 2,000 req/s. Medians across rounds; ratios service/floor.
// 4. redis-benchmark GET of the same bytes on the same Redis, 50 clients: the store's ceiling.
// BENCH_SMOKE=1: tiny sizes and one-second rounds; asserts correctness only.
import { randomBytes } from 'node:crypto';
import { SMOKE, readSettings, runNames } from './bench-settings.mjs';
import { openBenchStack } from './bench-stack.mjs';
import { commandLine, log as logFor, runBenchmark } from './benchmark-entry.mjs';
import { onCleanup } from './cleanup-stack.mjs';
import { CorrectnessFailure } from './correctness-failure.mjs';
import { startFloorReadServer } from './floor-processes.mjs';
import { goalsMarkdown, judgeGoals } from './goals-table.mjs';
import { runHttpLoad } from './http-load.mjs';
import { machineInfo } from './machine-info.mjs';
import { checkBothSidesServeTheSameBytes, loadRunProblems } from './read-correctness.mjs';
import { redisBenchmarkGet } from './redis-ceiling.mjs';
import { deleteKeysWithPrefix } from './redis-prefix.mjs';
import { writeResults } from './results-writer.mjs';
import { seedShapedTaskBytes } from './seed-shaped-task.mjs';
import { startService } from './service-process.mjs';
import { median, ratio, round } from './statistics.mjs';
import { waitUntilReadable } from './task-readability.mjs';
import { createTaskTopics, deleteGroups, deleteTopics, produceMessages, taskProducer } from './task-topic.mjs';

const log = (message) => logFor('read', message);
const settings = readSettings();
const names = runNames('read');
const token = randomBytes(24).toString('hex');
const SIDES = ['service', 'floor'];

async function main() {
  const startedAt = new Date();
  log(`${SMOKE ? 'SMOKE run' : 'full run'} ${names.name}: ${settings.tasks} tasks, ${settings.rounds} rounds × ${settings.roundSeconds} s per side and mode`);
  const { infra, redis, kafka, admin } = await openBenchStack(names);

  const serviceGroup = names.groupId('service');
  const serviceKeys = names.keyPrefix('service');
  const floorKeys = names.keyPrefix('floor');
  onCleanup('delete the run topics', () => deleteTopics(admin, [names.topic, names.dlqTopic]));
  onCleanup('delete the service group', () => deleteGroups(admin, [serviceGroup]));
  onCleanup('delete the run keys', async () => {
    for (const prefix of [serviceKeys, floorKeys]) await deleteKeysWithPrefix(redis, prefix);
  });
  await createTaskTopics(admin, { topic: names.topic, dlqTopic: names.dlqTopic, partitions: settings.partitions, cleanupPolicy: 'compact' });

  // 1. Tasks through Kafka, then readable through the service.
  const taskIds = Array.from({ length: settings.tasks }, (_, index) => names.taskId(index));
  const expected = new Map(taskIds.map((taskId) => [taskId, seedShapedTaskBytes(taskId, 0)]));
  const producer = taskProducer(kafka);
  await producer.connect();
  onCleanup('disconnect the producer', () => producer.disconnect());
  const produceStarted = performance.now();
  await produceMessages(producer, names.topic, taskIds.map((taskId) => ({ key: taskId, value: expected.get(taskId) })));
  const produceSeconds = (performance.now() - produceStarted) / 1000;
  log(`produced ${taskIds.length} task events in ${produceSeconds.toFixed(2)} s`);

  const service = await startService({
    runName: names.name,
    name: 'service',
    infra,
    topic: names.topic,
    dlqTopic: names.dlqTopic,
    groupId: serviceGroup,
    keyPrefix: serviceKeys,
    token,
    partitions: settings.partitions,
  });
  onCleanup('stop the service', () => service.child.stop());
  log(`service started on port ${service.port} (log: ${service.child.logFile})`);
  const loaded = await waitUntilReadable({ client: service.client, expected, timeoutSeconds: settings.readableTimeoutSeconds, route: settings.route });
  log(`all ${taskIds.length} tasks readable through the service ${loaded.seconds.toFixed(2)} s after it answered HTTP`);

  // 2. The floor serves the very same bytes from plain string keys.
  for (let i = 0; i < taskIds.length; i += 500) {
    const pipeline = redis.pipeline();
    for (const taskId of taskIds.slice(i, i + 500)) pipeline.set(floorKeys + taskId, expected.get(taskId));
    await pipeline.exec();
  }
  const floor = await startFloorReadServer({ runName: names.name, redisUrl: infra.redisUrl, keyPrefix: floorKeys, token });
  onCleanup('stop the read floor', () => floor.child.stop());
  log(`read floor started on port ${floor.port}`);

  const checked = taskIds.filter((_, index) => index % Math.max(1, Math.floor(taskIds.length / settings.checkedTasks)) === 0);
  await checkBothSidesServeTheSameBytes({ clients: { service: service.client, floor: floor.client }, expected, taskIds: checked });
  log(`both sides serve the produced bytes on /tasks/ and /api/tasks/ (${checked.length} tasks checked), 404 and 401 alike`);

  // 3. Load, alternating sides.
  const paths = taskIds.map((taskId) => settings.route + taskId);
  const baseUrls = { service: service.baseUrl, floor: floor.baseUrl };
  const problems = [];
  const load = async (side, mode, durationSeconds) => {
    const run = await runHttpLoad({
      baseUrl: baseUrls[side],
      token,
      paths,
      connections: settings.connections,
      durationSeconds,
      overallRate: mode === 'fixed' ? settings.fixedRate : undefined,
    });
    const problem = loadRunProblems(`${side} ${mode}`, run);
    if (problem) problems.push(problem);
    log(
      `${(mode === 'fixed' ? `${settings.fixedRate} req/s` : mode).padEnd(10)} ${side.padEnd(7)} ` +
        `${Math.round(run.requestsPerSecond)} req/s, p50 ${run.p50Ms?.toFixed(3)} ms, p99 ${run.p99Ms?.toFixed(3)} ms` +
        (problem ? `  [${problem}]` : ''),
    );
    return run;
  };

  for (const side of SIDES) await load(side, 'warm-up', settings.warmupSeconds);
  const runs = { saturation: { service: [], floor: [] }, fixed: { service: [], floor: [] } };
  for (let r = 0; r < settings.rounds; r++) {
    const order = r % 2 === 0 ? SIDES : [...SIDES].reverse();
    for (const mode of ['saturation', 'fixed']) {
      for (const side of order) runs[mode][side].push(await load(side, mode, settings.roundSeconds));
    }
  }
  if (problems.length > 0) {
    const message = `load runs got wrong answers: ${problems.join('; ')}`;
    if (SMOKE) throw new CorrectnessFailure(message);
    console.error(`[bench:read] WARNING: ${message}`);
  }

  // 4. The store's ceiling.
  const ceilingKey = `${floorKeys}redis-benchmark`;
  await redis.set(ceilingKey, expected.get(taskIds[0]));
  const ceiling = await redisBenchmarkGet({ redisUrl: infra.redisUrl, key: ceilingKey, clients: settings.connections, requests: settings.redisBenchmarkRequests });
  log(ceiling.available ? `redis-benchmark GET: ${Math.round(ceiling.requestsPerSecond)} req/s, p50 ${ceiling.p50Ms} ms, p99 ${ceiling.p99Ms} ms` : `redis-benchmark: ${ceiling.reason}`);

  // 5. Figures, goals, results.
  const summary = {};
  for (const mode of ['saturation', 'fixed']) {
    summary[mode] = {};
    for (const side of SIDES) {
      const sideRuns = runs[mode][side];
      summary[mode][side] = {
        requestsPerSecond: round(median(sideRuns.map((run) => run.requestsPerSecond)), 0),
        p50Ms: round(median(sideRuns.map((run) => run.p50Ms)), 3),
        p99Ms: round(median(sideRuns.map((run) => run.p99Ms)), 3),
      };
    }
    summary[mode].ratio = {
      requestsPerSecond: round(ratio(summary[mode].service.requestsPerSecond, summary[mode].floor.requestsPerSecond), 3),
      p50Ms: round(ratio(summary[mode].service.p50Ms, summary[mode].floor.p50Ms), 3),
      p99Ms: round(ratio(summary[mode].service.p99Ms, summary[mode].floor.p99Ms), 3),
    };
  }
  const goals = judgeGoals([
    { goal: 'read req/s at saturation, service/floor', actual: summary.saturation.ratio.requestsPerSecond, target: 0.6, atLeast: true },
    { goal: `p99 at ${settings.fixedRate} req/s, service/floor`, actual: summary.fixed.ratio.p99Ms, target: 2, atLeast: false },
  ]);
  const machine = await machineInfo(redis);
  const command = commandLine('bench:read');
  const figures = {
    benchmark: 'read',
    smoke: SMOKE,
    date: startedAt.toISOString(),
    command,
    machine,
    settings: { ...settings, payloadBytes: expected.get(taskIds[0]).length },
    loading: { produceSeconds: round(produceSeconds, 3), readableSeconds: round(loaded.seconds, 3) },
    summary,
    redisBenchmark: ceiling,
    goals,
    loadProblems: problems,
    rounds: runs,
  };
  const section = readMarkdown({ figures, summary, ceiling, goals });
  const written = writeResults('read', figures, section);
  console.log(`\n${section}\n`);
  log(`results written to ${written.json} and ${written.summary}`);
}

function readMarkdown({ figures, summary, ceiling, goals }) {
  const { machine, settings: s } = figures;
  const row = (label, mode, field, digits) => {
    const value = (side) => (summary[mode][side][field] == null ? 'n/a' : summary[mode][side][field].toFixed(digits));
    return `| ${label} | ${value('service')} | ${value('floor')} | ${summary[mode].ratio[field] ?? 'n/a'} |`;
  };
  return [
    `## Read${SMOKE ? ' (smoke run: sizes too small for the figures to mean anything)' : ''}`,
    '',
    `- Date: ${figures.date}`,
    `- Command: \`${figures.command}\``,
    `- Machine: ${machine.cores} cores (${machine.cpu}), Node ${machine.node}, Kafka ${machine.kafka}, Redis ${machine.redis}`,
    `- ${s.tasks} tasks of ${s.payloadBytes} bytes, loaded through Kafka (${s.partitions} partitions) and read back through the service in ${figures.loading.readableSeconds} s.`,
    `- autocannon: ${s.connections} connections, random task ids on \`${s.route}:taskId\`, valid token; ${s.warmupSeconds} s warm-up per side, then ${s.rounds} rounds of ${s.roundSeconds} s per side and mode, sides alternating. Medians across rounds; latency percentiles from every response's own duration.`,
    '',
    '| median | service | floor | service/floor |',
    '|---|---|---|---|',
    row('req/s at saturation', 'saturation', 'requestsPerSecond', 0),
    row('p50 ms at saturation', 'saturation', 'p50Ms', 3),
    row('p99 ms at saturation', 'saturation', 'p99Ms', 3),
    row(`req/s at a fixed ${s.fixedRate} req/s`, 'fixed', 'requestsPerSecond', 0),
    row(`p50 ms at a fixed ${s.fixedRate} req/s`, 'fixed', 'p50Ms', 3),
    row(`p99 ms at a fixed ${s.fixedRate} req/s`, 'fixed', 'p99Ms', 3),
    '',
    ceiling.available
      ? `Store ceiling, \`redis-benchmark\` GET of the same ${s.payloadBytes} bytes with ${ceiling.clients} clients: ${Math.round(ceiling.requestsPerSecond)} req/s, p50 ${ceiling.p50Ms} ms, p99 ${ceiling.p99Ms} ms.`
      : `Store ceiling: not measured (${ceiling.reason}).`,
    ...(figures.loadProblems.length > 0 ? ['', `Wrong answers under load: ${figures.loadProblems.join('; ')}.`] : []),
    '',
    goalsMarkdown(goals),
  ].join('\n');
}

await runBenchmark('read', main);
