// npm run bench:read: the read path, measured side by side with its floor in one run.
//
// 1. Loads N seed-shaped tasks through Kafka into the service (the real path) and waits until every
//    one is served with the produced bytes.
// 2. Copies those bytes into plain string keys for the floor (a bare node:http + ioredis server).
// 3. autocannon, 50 connections, random task ids, valid token: a warm-up per side, then rounds that
//    alternate the sides (the side that goes first alternates too), at saturation and at a fixed
//    2,000 req/s. Medians across rounds; ratios service/floor. Two service sides: 'service' with
//    metrics off, and 'metrics', a second instance in the same group with METRICS_PORT set, scraped
//    every 15 s throughout as Prometheus would; the run ends with an excerpt of its /metrics.
// 4. redis-benchmark GET of the same bytes on the same Redis, 50 clients: the store's ceiling.
// BENCH_SMOKE=1: tiny sizes and one-second rounds; asserts correctness only.
//
// BENCH_HAPROXY_INSTANCES=1,3 (`npm run bench:read:lb`): as many instances as the largest count run
// in the same consumer group, and for each count a HAProxy process with deploy/haproxy/haproxy.cfg
// balances over the first that many: each is a side of its own, measured in the same rounds as the
// direct service (instance 1) and the floor. CPU seconds of every process are recorded per load run.
// Results then go to bench/results/read-lb.json and the "Read through HAProxy" section.
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { eventually } from '../test/support/eventually.js';
import { httpGet } from '../test/support/http-get.js';
import { freePort } from '../test/support/server-process.js';
import { TestHaproxy } from '../test/support/test-haproxy.js';
import { sampleTaskBytes } from '../test/support/sample-task.js';
import { CorrectnessFailure, logger, onCleanup, runBenchmark } from './bench-run.js';
import { startCpuWindow, type CpuShares } from './cpu-accounting.js';
import { checkBothSidesServeTheSameBytes, loadRunProblems, runHttpLoad, type LoadRun } from './read-load.js';
import { deleteKeysWithPrefix, redisBenchmarkGet, type RedisCeiling } from './redis-store.js';
import { goalsMarkdown, judgeGoals, machineInfo, sectionHead, writeResults, type JudgedGoal, type MachineInfo } from './results.js';
import { SMOKE, commandLine, readSettings, runNames, type ReadSettings } from './settings.js';
import { openBenchStack, startFloorReadServer, startService, type TaskServer } from './stack.js';
import { median, ratio, round } from './statistics.js';
import { TaskHttpClient, waitUntilReadable } from './task-reading.js';

const log = logger('read');
const settings = readSettings();
const names = runNames('read');
const token = randomBytes(24).toString('hex');
const THROUGH_HAPROXY = settings.haproxyInstances.length > 0;
/** The side that reads through HAProxy in front of `instances` instances. */
const haproxySide = (instances: number): string => `haproxy-${instances}`;
const SIDES: string[] = ['service', 'metrics', 'floor', ...settings.haproxyInstances.map(haproxySide)];
/** How often the instance with metrics on is scraped during the run: Prometheus's default interval. */
const SCRAPE_INTERVAL_MS = 15_000;
const MODES = ['saturation', 'fixed'] as const;
/** 'service' (instance 1, direct, metrics off), 'metrics' (metrics on), 'floor', or haproxySide(n). */
type Side = string;
type Mode = (typeof MODES)[number];

/** Medians of one side's runs in one mode. */
interface SideFigures {
  requestsPerSecond: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
}
type ModeSummary = Record<'service' | 'metrics' | 'floor' | 'ratio' | 'metricsRatio', SideFigures> & {
  /** Through HAProxy, per side (haproxy-<n>), when measured; req/s and percentiles as above. */
  haproxy?: Record<string, SideFigures>;
  /** Median cores busy per process group, per side (recorded on every run, summarised here). */
  cpuCores?: Record<Side, Record<string, number | null>>;
};

/** A load run with what the machine was doing meanwhile. */
type MeasuredRun = LoadRun & { loadAverage1m: number; cpu: CpuShares };
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
  /** Scrapes of the instance with metrics on during the run, and what its /metrics said at the end (a selection). */
  metrics: { scrapes: number; excerpt: string[] };
  rounds: Record<Mode, Record<Side, MeasuredRun[]>>;
}

async function main(): Promise<void> {
  const startedAt = new Date();
  log(`${SMOKE ? 'SMOKE run' : 'full run'} ${names.name}: ${settings.tasks} tasks, ${settings.rounds} rounds × ${settings.roundSeconds} s per side and mode, sides ${SIDES.join(', ')}`);
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

  // Every instance alike: the same topic, group, key prefix and token.
  const startInstance = (name: string, metricsPort?: number) =>
    startService({
      runName: names.name,
      name,
      infra,
      topic: names.topic,
      dlqTopic: names.dlqTopic,
      groupId: serviceGroup,
      keyPrefix: serviceKeys,
      token,
      partitions: settings.partitions,
      metricsPort,
    });
  const service = await startInstance('service');
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

  // 2a. The same service with metrics on, scraped as Prometheus would scrape it.
  const metricsPort = await freePort();
  const withMetrics = await startInstance('service-metrics', metricsPort);
  onCleanup('stop the service with metrics on', () => withMetrics.child.stop());
  await eventually('the instance with metrics on to be ready', async () => (await withMetrics.client.get('/health/ready', {})).status === 200, { timeoutMs: 60_000, intervalMs: 200 });
  const scrapeMetrics = async (): Promise<string> => {
    const answer = await httpGet(`http://127.0.0.1:${metricsPort}/metrics`);
    if (answer.status !== 200) throw new CorrectnessFailure(`GET /metrics answered ${answer.status}`);
    return answer.body;
  };
  let scrapes = 0;
  const scraper = setInterval(() => void scrapeMetrics().then(() => (scrapes += 1), (error: Error) => log(`scrape failed: ${error.message}`)), SCRAPE_INTERVAL_MS);
  onCleanup('stop scraping', () => clearInterval(scraper));
  log(`service with metrics on started on port ${withMetrics.port}, /metrics on ${metricsPort}`);

  // 2b. Through HAProxy: more instances of the service in the same group, and a balancer per count.
  const instances: TaskServer[] = [service];
  const balancers = new Map<number, TestHaproxy>();
  if (THROUGH_HAPROXY) {
    for (let i = 2; i <= Math.max(...settings.haproxyInstances); i++) {
      const instance = await startInstance(`service-${i}`);
      onCleanup(`stop service instance ${i}`, () => instance.child.stop());
      instances.push(instance);
      log(`service instance ${i} started on port ${instance.port}`);
    }
    for (const [index, instance] of instances.entries()) {
      await eventually(`instance ${index + 1} to be ready`, async () => (await instance.client.get('/health/ready', {})).status === 200, { timeoutMs: 60_000, intervalMs: 200 });
    }
    for (const count of settings.haproxyInstances) {
      const haproxy = await TestHaproxy.start(instances.slice(0, count).map((instance, index) => ({ name: `tc${index + 1}`, port: instance.port })));
      onCleanup(`stop haproxy in front of ${count}`, () => haproxy.stop());
      for (let index = 0; index < count; index++) await haproxy.waitForState(`tc${index + 1}`, 'UP');
      balancers.set(count, haproxy);
      log(`haproxy in front of ${count} instance(s) on port ${haproxy.port}`);
    }
  }
  const clients: Record<Side, TaskHttpClient> = { service: service.client, metrics: withMetrics.client, floor: floor.client };
  const baseUrls: Record<Side, string> = { service: service.baseUrl, metrics: withMetrics.baseUrl, floor: floor.baseUrl };
  for (const [count, haproxy] of balancers) {
    clients[haproxySide(count)] = new TaskHttpClient(haproxy.url, token);
    baseUrls[haproxySide(count)] = haproxy.url;
  }

  const checked = taskIds.filter((_, index) => index % Math.max(1, Math.floor(taskIds.length / settings.checkedTasks)) === 0);
  await checkBothSidesServeTheSameBytes({ clients, expected, taskIds: checked });
  log(`every side serves the produced bytes on /tasks/ and /api/tasks/ (${checked.length} tasks checked), 404 and 401 alike`);

  // Whose CPU each load run used: each instance, the balancers, Redis, the floor (and the bench itself).
  const redisPid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1]);
  const cpuGroups: Record<string, number[]> = {};
  for (const [index, instance] of instances.entries()) cpuGroups[`service-${index + 1}`] = [instance.child.pid!];
  cpuGroups['service-metrics'] = [withMetrics.child.pid!];
  if (balancers.size > 0) cpuGroups.haproxy = [...balancers.values()].map((haproxy) => haproxy.pid!);
  cpuGroups.redis = Number.isInteger(redisPid) ? [redisPid] : [];
  cpuGroups.floor = [floor.child.pid!];

  // 3. Load, alternating sides.
  const paths = taskIds.map((taskId) => settings.route + taskId);
  const problems: string[] = [];
  const load = async (side: Side, mode: Mode | 'warm-up', durationSeconds: number): Promise<MeasuredRun> => {
    const loadAverage1m = os.loadavg()[0];
    const window = startCpuWindow(cpuGroups);
    const loadRun = await runHttpLoad({
      baseUrl: baseUrls[side],
      token,
      paths,
      connections: settings.connections,
      durationSeconds,
      overallRate: mode === 'fixed' ? settings.fixedRate : undefined,
    });
    const run: MeasuredRun = { ...loadRun, loadAverage1m: Math.round(loadAverage1m * 100) / 100, cpu: window.stop() };
    const problem = loadRunProblems(`${side} ${mode}`, run);
    if (problem) problems.push(problem);
    log(
      `${(mode === 'fixed' ? `${settings.fixedRate} req/s` : mode).padEnd(10)} ${side.padEnd(9)} ` +
        `${Math.round(run.requestsPerSecond)} req/s, p50 ${run.p50Ms?.toFixed(3)} ms, p99 ${run.p99Ms?.toFixed(3)} ms` +
        `, load ${run.loadAverage1m}, cores ${Object.entries(run.cpu.cores).map(([group, cores]) => `${group} ${cores}`).join(' ')} other ${run.cpu.otherCores}` +
        (problem ? `  [${problem}]` : ''),
    );
    return run;
  };

  for (const side of SIDES) await load(side, 'warm-up', settings.warmupSeconds);
  const runs: Record<Mode, Record<Side, MeasuredRun[]>> = {
    saturation: Object.fromEntries(SIDES.map((side) => [side, []])),
    fixed: Object.fromEntries(SIDES.map((side) => [side, []])),
  };
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

  clearInterval(scraper);
  const excerpt = metricsExcerpt(await scrapeMetrics());
  if (excerpt.length === 0) throw new CorrectnessFailure('/metrics holds none of the read series after the run');

  // 4. The store's ceiling.
  const ceilingKey = `${floorKeys}redis-benchmark`;
  await redis.set(ceilingKey, expected.get(taskIds[0])!);
  const ceiling = await redisBenchmarkGet({ redisUrl: infra.redisUrl, key: ceilingKey, clients: settings.connections, requests: settings.redisBenchmarkRequests });
  log(ceiling.available ? `redis-benchmark GET: ${Math.round(ceiling.requestsPerSecond)} req/s, p50 ${ceiling.p50Ms} ms, p99 ${ceiling.p99Ms} ms` : `redis-benchmark: ${ceiling.reason}`);

  // 5. Figures, goals, results.
  const summary: Summary = { saturation: modeSummary(runs.saturation), fixed: modeSummary(runs.fixed) };
  const goals = judgeGoals([
    { goal: 'read req/s at saturation, service/floor', actual: summary.saturation.ratio.requestsPerSecond, target: 0.6, atLeast: true },
    { goal: 'read req/s at saturation with metrics on, service/floor', actual: summary.saturation.metricsRatio.requestsPerSecond, target: 0.8, atLeast: true },
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
    metrics: { scrapes, excerpt },
    rounds: runs,
  };
  const section = readMarkdown({ figures, summary, ceiling, goals });
  const written = writeResults(THROUGH_HAPROXY ? 'read-lb' : 'read', figures, section);
  console.log(`\n${section}\n`);
  log(`results written to ${written.json} and ${written.summary}`);
}

/** Medians across rounds per side, and the service/floor ratio of each. */
function modeSummary(runs: Record<Side, MeasuredRun[]>): ModeSummary {
  const medians = (sideRuns: MeasuredRun[]): SideFigures => ({
    requestsPerSecond: round(median(sideRuns.map((run) => run.requestsPerSecond)), 0),
    p50Ms: round(median(sideRuns.map((run) => run.p50Ms)), 3),
    p99Ms: round(median(sideRuns.map((run) => run.p99Ms)), 3),
  });
  const service = medians(runs.service);
  const metrics = medians(runs.metrics);
  const floor = medians(runs.floor);
  const toFloor = (side: SideFigures): SideFigures => ({
    requestsPerSecond: round(ratio(side.requestsPerSecond, floor.requestsPerSecond), 3),
    p50Ms: round(ratio(side.p50Ms, floor.p50Ms), 3),
    p99Ms: round(ratio(side.p99Ms, floor.p99Ms), 3),
  });
  const summary: ModeSummary = { service, metrics, floor, ratio: toFloor(service), metricsRatio: toFloor(metrics) };
  if (THROUGH_HAPROXY) {
    summary.haproxy = Object.fromEntries(settings.haproxyInstances.map((count) => [haproxySide(count), medians(runs[haproxySide(count)])]));
    summary.cpuCores = Object.fromEntries(
      SIDES.map((side) => {
        const groups = Object.keys(runs[side][0]?.cpu.cores ?? {});
        const cores: Record<string, number | null> = Object.fromEntries(groups.map((group) => [group, round(median(runs[side].map((run) => run.cpu.cores[group])), 2)]));
        cores.other = round(median(runs[side].map((run) => run.cpu.otherCores)), 2);
        cores.machine = round(median(runs[side].map((run) => run.cpu.machineCores)), 2);
        return [side, cores];
      }),
    );
  }
  return summary;
}

function readMarkdown({ figures, summary, ceiling, goals }: { figures: ReadFigures; summary: Summary; ceiling: RedisCeiling; goals: JudgedGoal[] }): string {
  const { settings: s } = figures;
  const row = (label: string, mode: Mode, field: keyof SideFigures, digits: number): string => {
    const value = (side: 'service' | 'metrics' | 'floor'): string => summary[mode][side][field]?.toFixed(digits) ?? 'n/a';
    return `| ${label} | ${value('service')} | ${value('metrics')} | ${value('floor')} | ${summary[mode].ratio[field] ?? 'n/a'} | ${summary[mode].metricsRatio[field] ?? 'n/a'} |`;
  };
  return [
    ...sectionHead(THROUGH_HAPROXY ? 'Read through HAProxy' : 'Read', figures),
    `- ${s.tasks} tasks of ${s.payloadBytes} bytes, loaded through Kafka (${s.partitions} partitions) and read back through the service in ${figures.loading.readableSeconds} s.`,
    `- autocannon: ${s.connections} connections, random task ids on \`${s.route}:taskId\`, valid token; ${s.warmupSeconds} s warm-up per side, then ${s.rounds} rounds of ${s.roundSeconds} s per side and mode, sides alternating. Medians across rounds; latency percentiles from every response's own duration.`,
    '',
    '| median | service, metrics off | service, metrics on | floor | off/floor | on/floor |',
    '|---|---|---|---|---|---|',
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
    `Metrics on: a second instance in the same group with METRICS_PORT set, scraped every ${SCRAPE_INTERVAL_MS / 1000} s during the run (${figures.metrics.scrapes} scrapes). Its \`/metrics\` after the run, a selection:`,
    '',
    '```text',
    ...figures.metrics.excerpt,
    '```',
    '',
    goalsMarkdown(goals),
    ...(THROUGH_HAPROXY ? haproxyMarkdown(figures) : []),
  ].join('\n');
}

/** The direct service, the service through HAProxy in front of 1…N instances, and the floor; and whose CPU each used. */
function haproxyMarkdown(figures: ReadFigures): string[] {
  const { summary, settings: s } = figures;
  const counts = s.haproxyInstances;
  const figuresOf = (mode: Mode, side: Side): SideFigures => (side === 'service' || side === 'floor' ? summary[mode][side] : summary[mode].haproxy![side]);
  const columns: [string, Side][] = [['direct (1 instance)', 'service'], ...counts.map((count): [string, Side] => [`HAProxy → ${count} instance${count > 1 ? 's' : ''}`, haproxySide(count)]), ['floor', 'floor']];
  const row = (label: string, mode: Mode, field: keyof SideFigures, digits: number): string =>
    `| ${label} | ${columns.map(([, side]) => figuresOf(mode, side)[field]?.toFixed(digits) ?? 'n/a').join(' | ')} |`;
  const perDirect = (mode: Mode): string =>
    `| req/s ÷ direct | ${columns.map(([, side]) => round(ratio(figuresOf(mode, side).requestsPerSecond, summary[mode].service.requestsPerSecond), 3) ?? 'n/a').join(' | ')} |`;
  const cpu = summary.saturation.cpuCores!;
  const groups = Object.keys(cpu.service).filter((group) => group !== 'other' && group !== 'machine');
  const loads = figures.rounds.saturation.service.concat(...counts.map((count) => figures.rounds.saturation[haproxySide(count)])).map((run) => run.loadAverage1m);
  return [
    '',
    `### Direct, and through HAProxy (deploy/haproxy/haproxy.cfg) in front of ${counts.join(' and ')} instance(s)`,
    '',
    `- The same rounds as above: each side in turn, the order alternating; instance 1 is the direct service, and ${Math.max(...counts)} instances run in the service's consumer group (idle ones cost next to nothing).`,
    `- 1-minute load average at the start of the saturation runs: ${Math.min(...loads).toFixed(2)} to ${Math.max(...loads).toFixed(2)} on ${figures.machine.cores} cores.`,
    '',
    `| median | ${columns.map(([label]) => label).join(' | ')} |`,
    `|---|${columns.map(() => '---').join('|')}|`,
    row('req/s at saturation', 'saturation', 'requestsPerSecond', 0),
    perDirect('saturation'),
    row('p50 ms at saturation', 'saturation', 'p50Ms', 3),
    row('p99 ms at saturation', 'saturation', 'p99Ms', 3),
    row(`req/s at a fixed ${s.fixedRate} req/s`, 'fixed', 'requestsPerSecond', 0),
    row(`p50 ms at a fixed ${s.fixedRate} req/s`, 'fixed', 'p50Ms', 3),
    row(`p99 ms at a fixed ${s.fixedRate} req/s`, 'fixed', 'p99Ms', 3),
    '',
    'Cores busy at saturation (CPU seconds per second, median across rounds; "bench" is the process running autocannon, "other" is everything else on the machine):',
    '',
    `| cores | ${columns.map(([label]) => label).join(' | ')} |`,
    `|---|${columns.map(() => '---').join('|')}|`,
    ...[...groups, 'other', 'machine'].map((group) => `| ${group} | ${columns.map(([, side]) => cpu[side][group]?.toFixed(2) ?? 'n/a').join(' | ')} |`),
  ];
}

/** The read, auth and process series of a scrape: what an operator looks at after a load test. */
function metricsExcerpt(text: string): string[] {
  const READ_200 = `route="${settings.route}{taskId}",status="200"`;
  return text
    .split('\n')
    .filter(
      (line) =>
        (line.startsWith('taskcache_read_duration_seconds') && line.includes(READ_200) && !/le="(0\.0001|0\.00025|0\.05|0\.1|0\.25|0\.5|1|2\.5)"/.test(line)) ||
        (line.startsWith('taskcache_read_duration_seconds_count') && !line.includes(READ_200)) ||
        /^taskcache_(auth_failures_total|events_consumed_total|events_applied_total|consumer_lag_messages|event_freshness_seconds_count|redis_up|redis_command_errors_total)\b/.test(line) ||
        /^(process_resident_memory_bytes|process_cpu_seconds_total|nodejs_eventloop_lag_p99_seconds|nodejs_heap_size_used_bytes) /.test(line),
    );
}

await runBenchmark('read', main);
