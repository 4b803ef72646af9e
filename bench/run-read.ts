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
import { sampleTaskBytes } from '../test/support/sample-task.js';
import { CorrectnessFailure, logger, onCleanup, runBenchmark } from './bench-run.js';
import { checkBothSidesServeTheSameBytes, loadRunProblems, runHttpLoad, type LoadRun } from './read-load.js';
import { deleteKeysWithPrefix, redisBenchmarkGet, type RedisCeiling } from './redis-store.js';
import { goalsMarkdown, judgeGoals, machineInfo, sectionHead, writeResults, type JudgedGoal, type MachineInfo } from './results.js';
import { SMOKE, commandLine, readSettings, runNames, type ReadSettings } from './settings.js';
import { openBenchStack, startFloorReadServer, startService } from './stack.js';
import { median, ratio, round } from './statistics.js';
import { waitUntilReadable } from './task-reading.js';

const log = logger('read');
const settings = readSettings();
const names = runNames('read');
const token = randomBytes(24).toString('hex');
const SIDES = ['service', 'floor'] as const;
const MODES = ['saturation', 'fixed'] as const;
type Side = (typeof SIDES)[number];
type Mode = (typeof MODES)[number];

/** Medians of one side's runs in one mode. */
interface SideFigures {
  requestsPerSecond: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
}
type ModeSummary = Record<Side | 'ratio', SideFigures>;
type Summary = Record<Mode, ModeSummary>;

interface ReadFigures {
  benchmark: 'read';
  smoke: boolean;
  date: string;
  command: string;
  machine: MachineInfo;
  settings: ReadSettings & { payloadBytes: number };
  loading: { produceSeconds: number; readableSeconds: number };
  summary: Summary;
  redisBenchmark: RedisCeiling;
  goals: JudgedGoal[];
  loadProblems: string[];
  rounds: Record<Mode, Record<Side, LoadRun[]>>;
}

async function main(): Promise<void> {
  const startedAt = new Date();
  log(`${SMOKE ? 'SMOKE run' : 'full run'} ${names.name}: ${settings.tasks} tasks, ${settings.rounds} rounds × ${settings.roundSeconds} s per side and mode`);
  const { infra, redis, kafka } = await openBenchStack(names.name);

  const serviceGroup = names.groupId('service');
  const serviceKeys = names.keyPrefix('service');
  const floorKeys = names.keyPrefix('floor');
  onCleanup('delete the run topics', () => kafka.deleteTopics([names.topic, names.dlqTopic]));
  onCleanup('delete the service group', () => kafka.deleteGroups([serviceGroup]));
  onCleanup('delete the run keys', async () => {
    for (const prefix of [serviceKeys, floorKeys]) await deleteKeysWithPrefix(redis, prefix);
  });
  await kafka.createTaskTopics(names.topic, names.dlqTopic, settings.partitions, 'compact');

  // 1. Tasks through Kafka, then readable through the service.
  const taskIds = Array.from({ length: settings.tasks }, (_, index) => names.taskId(index));
  const expected = new Map(taskIds.map((taskId) => [taskId, sampleTaskBytes(taskId, 0)]));
  const produceStarted = performance.now();
  await kafka.sendAll(names.topic, [...expected].map(([key, value]) => ({ key, value })));
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
    for (const taskId of taskIds.slice(i, i + 500)) pipeline.set(floorKeys + taskId, expected.get(taskId)!);
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
  const problems: string[] = [];
  const load = async (side: Side, mode: Mode | 'warm-up', durationSeconds: number): Promise<LoadRun> => {
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
  const runs: Record<Mode, Record<Side, LoadRun[]>> = { saturation: { service: [], floor: [] }, fixed: { service: [], floor: [] } };
  for (let r = 0; r < settings.rounds; r++) {
    const order = r % 2 === 0 ? SIDES : [...SIDES].reverse();
    for (const mode of MODES) {
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
  await redis.set(ceilingKey, expected.get(taskIds[0])!);
  const ceiling = await redisBenchmarkGet({ redisUrl: infra.redisUrl, key: ceilingKey, clients: settings.connections, requests: settings.redisBenchmarkRequests });
  log(ceiling.available ? `redis-benchmark GET: ${Math.round(ceiling.requestsPerSecond)} req/s, p50 ${ceiling.p50Ms} ms, p99 ${ceiling.p99Ms} ms` : `redis-benchmark: ${ceiling.reason}`);

  // 5. Figures, goals, results.
  const summary: Summary = { saturation: modeSummary(runs.saturation), fixed: modeSummary(runs.fixed) };
  const goals = judgeGoals([
    { goal: 'read req/s at saturation, service/floor', actual: summary.saturation.ratio.requestsPerSecond, target: 0.6, atLeast: true },
    { goal: `p99 at ${settings.fixedRate} req/s, service/floor`, actual: summary.fixed.ratio.p99Ms, target: 2, atLeast: false },
  ]);
  const machine = await machineInfo(redis);
  const command = commandLine('bench:read');
  const figures: ReadFigures = {
    benchmark: 'read',
    smoke: SMOKE,
    date: startedAt.toISOString(),
    command,
    machine,
    settings: { ...settings, payloadBytes: expected.get(taskIds[0])!.length },
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

/** Medians across rounds per side, and the service/floor ratio of each. */
function modeSummary(runs: Record<Side, LoadRun[]>): ModeSummary {
  const medians = (sideRuns: LoadRun[]): SideFigures => ({
    requestsPerSecond: round(median(sideRuns.map((run) => run.requestsPerSecond)), 0),
    p50Ms: round(median(sideRuns.map((run) => run.p50Ms)), 3),
    p99Ms: round(median(sideRuns.map((run) => run.p99Ms)), 3),
  });
  const service = medians(runs.service);
  const floor = medians(runs.floor);
  return {
    service,
    floor,
    ratio: {
      requestsPerSecond: round(ratio(service.requestsPerSecond, floor.requestsPerSecond), 3),
      p50Ms: round(ratio(service.p50Ms, floor.p50Ms), 3),
      p99Ms: round(ratio(service.p99Ms, floor.p99Ms), 3),
    },
  };
}

function readMarkdown({ figures, summary, ceiling, goals }: { figures: ReadFigures; summary: Summary; ceiling: RedisCeiling; goals: JudgedGoal[] }): string {
  const { settings: s } = figures;
  const row = (label: string, mode: Mode, field: keyof SideFigures, digits: number): string => {
    const value = (side: Side): string => summary[mode][side][field]?.toFixed(digits) ?? 'n/a';
    return `| ${label} | ${value('service')} | ${value('floor')} | ${summary[mode].ratio[field] ?? 'n/a'} |`;
  };
  return [
    ...sectionHead('Read', figures),
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
