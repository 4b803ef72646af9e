// npm run bench:redis: what Redis itself costs per apply and per read, and how many it serves, on
// one redis-server and on the Redis Cluster (3 masters, 3 replicas) of scripts/infra.sh.
//
// Drives the projection as the service does (RedisTaskProjection.applyBatch: one EVALSHA of
// apply-task-event.lua per task, auto-pipelined; RedisTaskProjection.get: one HMGET), without Kafka
// or HTTP, from BENCH_REDIS_DRIVERS processes (default 2) for BENCH_REDIS_SECONDS per phase
// (default 15). Per target and phase: events or reads per second, Redis's own `INFO commandstats`
// (usec_per_call: time inside the command), and the CPU seconds of every redis-server process per
// call (time inside the command plus protocol, networking and replication): 1 / that is the
// ceiling of one Redis core for that work. BENCH_SMOKE=1: two-second phases.
//
// The drivers and every redis-server share the machine's cores; on a small machine the figures of a
// cluster are those of six redis-servers and the drivers on the same cores, not of three machines.
import { fork } from 'node:child_process';
import os from 'node:os';
import { Redis } from 'ioredis';
import { infraSettings, uniqueName } from '../test/support/infra.js';
import { ProjectionHarness } from '../test/support/projection-harness.js';
import { sampleTaskBytes } from '../test/support/sample-task.js';
import type { RedisTarget } from '../test/support/test-redis.js';
import type { TaskEvent } from '../src/projection/task-event.js';
import { logger, onCleanup, runBenchmark } from './bench-run.js';
import { startCpuWindow, type CpuShares } from './cpu-accounting.js';
import { machineInfo, sectionHead, writeResults } from './results.js';
import { SMOKE, commandLine } from './settings.js';
import { round } from './statistics.js';

const DRIVER_FLAG = '--driver';
const TASKS_PER_DRIVER = SMOKE ? 2_000 : 20_000;
const BATCH = 200;
const IN_FLIGHT = 4;

interface DriverOrder {
  target: RedisTarget;
  keyPrefix: string;
  driver: number;
  phase: Phase;
  seconds: number;
}
interface DriverReport {
  calls: number;
  applied: number;
  seconds: number;
  /** The driver's own CPU seconds over the phase. */
  cpuSeconds: number;
}
type Phase = 'apply' | 'read';

function taskIdOf(driver: number, index: number): string {
  return `d${driver}-task-${String(index).padStart(6, '0')}`;
}

/** One driver process: applies (or reads) its own tasks as fast as Redis answers, for `seconds`. */
async function drive({ target, keyPrefix, driver, phase, seconds }: DriverOrder): Promise<DriverReport> {
  const harness = await ProjectionHarness.open(target, keyPrefix, { commandTimeoutMs: 5000 });
  const values = Array.from({ length: 8 }, (_, update) => sampleTaskBytes(taskIdOf(driver, 0), update));
  let calls = 0;
  let applied = 0;
  let offset = 0;
  const cpuAtStart = process.cpuUsage();
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const loop = async (lane: number): Promise<void> => {
    let next = lane * BATCH;
    while (performance.now() < deadline) {
      if (phase === 'apply') {
        const events: TaskEvent[] = [];
        for (let i = 0; i < BATCH; i++, next++) {
          offset++;
          events.push({ taskId: taskIdOf(driver, next % TASKS_PER_DRIVER), value: values[offset % values.length], partition: 0, offset: String(offset), timestamp: Date.now() });
        }
        const result = await harness.projection.applyBatch(events);
        calls += events.length;
        applied += result.applied;
      } else {
        const reads: Promise<unknown>[] = [];
        for (let i = 0; i < BATCH; i++) reads.push(harness.projection.get(taskIdOf(driver, Math.floor(Math.random() * TASKS_PER_DRIVER))));
        const found = await Promise.all(reads);
        calls += reads.length;
        applied += found.filter((task) => task !== null).length;
      }
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, (_, lane) => loop(lane)));
  const cpu = process.cpuUsage(cpuAtStart);
  const report = { calls, applied, seconds: (performance.now() - started) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
  await harness.close();
  return report;
}


const log = logger('redis');
const DRIVERS = Number(process.env.BENCH_REDIS_DRIVERS ?? 2);
const SECONDS = Number(process.env.BENCH_REDIS_SECONDS ?? (SMOKE ? 2 : 15));

interface CommandStat {
  calls: number;
  usecPerCall: number;
}

interface PhaseFigures {
  target: string;
  phase: Phase;
  masters: number;
  callsPerSecond: number;
  hitsOrApplied: number;
  loadAverage1m: number;
  /** Per master, from INFO commandstats after a CONFIG RESETSTAT. */
  commandStats: Record<string, CommandStat | null>;
  /** Cores busy per redis-server process, and for all of them. */
  cpu: CpuShares;
  /** Cores the driver processes used (they, not Redis, are what a small machine runs out of). */
  driverCores: number;
  /** CPU microseconds of all redis-servers (replicas included) per call: the whole cost. */
  redisCpuUsecPerCall: number | null;
  /** The same, masters only. */
  masterCpuUsecPerCall: number | null;
}

interface Node {
  name: string;
  client: Redis;
  master: boolean;
  pid: number;
}

async function nodesOf(target: RedisTarget): Promise<Node[]> {
  const addresses = target.cluster ? target.cluster.nodes.map(({ host, port }) => `redis://${host}:${port}`) : [target.url!];
  const nodes: Node[] = [];
  for (const url of addresses) {
    const client = new Redis(url, { maxRetriesPerRequest: 2 });
    onCleanup(`disconnect from ${url}`, () => client.quit());
    const info = await client.info();
    nodes.push({ name: new URL(url).port, client, master: /role:master/.test(info), pid: Number(/process_id:(\d+)/.exec(info)![1]) });
  }
  return nodes;
}

/** Deletes a node's keys under `prefix` one command per key: a cluster master refuses keys of several slots in one. */
async function deleteKeysOneByOne(client: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await client.pipeline(keys.map((key) => ['unlink', key])).exec();
  } while (cursor !== '0');
}

function commandStat(info: string, command: string): CommandStat | null {
  const match = new RegExp(`cmdstat_${command}:calls=(\\d+),usec=\\d+,usec_per_call=([\\d.]+)`).exec(info);
  return match ? { calls: Number(match[1]), usecPerCall: Number(match[2]) } : null;
}

async function runPhase(name: string, target: RedisTarget, nodes: Node[], keyPrefix: string, phase: Phase): Promise<PhaseFigures> {
  const masters = nodes.filter((node) => node.master);
  for (const node of nodes) await node.client.config('RESETSTAT');
  const loadAverage1m = os.loadavg()[0];
  const window = startCpuWindow(Object.fromEntries(nodes.map((node) => [`${node.master ? 'master' : 'replica'} ${node.name}`, [node.pid]])));
  const reports = await Promise.all(
    Array.from(
      { length: DRIVERS },
      (_, driver) =>
        new Promise<DriverReport>((resolve, reject) => {
          const child = fork(import.meta.filename, [DRIVER_FLAG], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
          onCleanup(`stop driver ${driver}`, () => child.exitCode === null && child.kill('SIGTERM'));
          child.once('message', (report: DriverReport) => resolve(report));
          child.once('exit', (code) => code !== 0 && reject(new Error(`driver ${driver} exited with code ${code}`)));
          child.send({ target, keyPrefix, driver, phase, seconds: SECONDS } satisfies DriverOrder);
        }),
    ),
  );
  const cpu = window.stop();
  const seconds = Math.max(...reports.map((report) => report.seconds));
  const calls = reports.reduce((sum, report) => sum + report.calls, 0);
  const command = phase === 'apply' ? 'evalsha' : 'hmget';
  const commandStats: Record<string, CommandStat | null> = {};
  for (const node of masters) commandStats[node.name] = commandStat(await node.client.info('commandstats'), command);
  const coresOf = (filter: (node: Node) => boolean): number =>
    nodes.filter(filter).reduce((sum, node) => sum + (cpu.cores[`${node.master ? 'master' : 'replica'} ${node.name}`] ?? 0), 0);
  const callsPerSecond = calls / seconds;
  const figures: PhaseFigures = {
    target: name,
    phase,
    masters: masters.length,
    callsPerSecond: Math.round(callsPerSecond),
    hitsOrApplied: reports.reduce((sum, report) => sum + report.applied, 0),
    loadAverage1m: round(loadAverage1m, 2),
    commandStats,
    driverCores: round(reports.reduce((sum, report) => sum + report.cpuSeconds, 0) / seconds, 2),
    cpu,
    redisCpuUsecPerCall: round((coresOf(() => true) / callsPerSecond) * 1e6, 2),
    masterCpuUsecPerCall: round((coresOf((node) => node.master) / callsPerSecond) * 1e6, 2),
  };
  const stats = Object.entries(commandStats).map(([node, stat]) => `${node}: ${stat ? `${stat.calls} × ${stat.usecPerCall} µs` : 'none'}`);
  log(
    `${name.padEnd(10)} ${phase.padEnd(5)} ${figures.callsPerSecond} calls/s (load ${figures.loadAverage1m}); ${command} ${stats.join(', ')}; ` +
      `redis CPU ${figures.redisCpuUsecPerCall} µs/call (masters ${figures.masterCpuUsecPerCall}); cores ${JSON.stringify(cpu.cores)} drivers ${figures.driverCores} other ${cpu.otherCores}`,
  );
  return figures;
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const infra = infraSettings();
  const runName = uniqueName('bench-redis');
  const keyPrefix = `${runName}:`;
  const targets: [string, RedisTarget][] = [['standalone', { url: infra.redisUrl }]];
  if (infra.redisCluster) targets.push(['cluster', { url: infra.redisUrl, cluster: infra.redisCluster }]);
  else log('no Redis Cluster in .local/infra.env (scripts/infra.sh up redis-cluster): one redis-server only');
  log(`${DRIVERS} driver process(es), ${SECONDS} s per phase, ${TASKS_PER_DRIVER} tasks per driver, batches of ${BATCH}, ${IN_FLIGHT} in flight per driver`);

  const phases: PhaseFigures[] = [];
  let machine;
  for (const [name, target] of targets) {
    const nodes = await nodesOf(target);
    machine ??= await machineInfo(nodes[0].client);
    onCleanup(`delete the run keys on ${name}`, async () => {
      for (const node of nodes.filter((n) => n.master)) await deleteKeysOneByOne(node.client, keyPrefix);
    });
    for (const phase of ['apply', 'read'] as const) phases.push(await runPhase(name, target, nodes, keyPrefix, phase));
  }

  const figures = { benchmark: 'redis', smoke: SMOKE, date: startedAt.toISOString(), command: commandLine('bench:redis'), machine: machine!, drivers: DRIVERS, seconds: SECONDS, phases };
  const section = [
    ...sectionHead('Redis per apply and per read', figures),
    `- ${DRIVERS} driver processes call the projection as the service does (\`applyBatch\`: an \`EVALSHA\` of apply-task-event.lua per task, auto-pipelined; \`get\`: one \`HMGET\`), ${SECONDS} s per phase, no Kafka, no HTTP; 1.3 KB seed-shaped values.`,
    '- usec_per_call: `INFO commandstats` after `CONFIG RESETSTAT`, time inside the command. Redis CPU per call: CPU seconds of every redis-server process (replicas included) over the calls, so protocol, networking and replication count too.',
    '',
    '| target | phase | calls/s | usec_per_call per master | redis CPU µs per call (all / masters) | redis cores busy | driver cores busy | load avg |',
    '|---|---|---|---|---|---|---|---|',
    ...phases.map((p) => {
      const stats = Object.values(p.commandStats).map((stat) => stat?.usecPerCall ?? 'n/a').join(', ');
      const cores = Object.entries(p.cpu.cores).filter(([group]) => group !== 'bench (autocannon)').reduce((sum, [, value]) => sum + (value ?? 0), 0);
      return `| ${p.target} (${p.masters} master${p.masters > 1 ? 's' : ''}) | ${p.phase} | ${p.callsPerSecond} | ${stats} | ${p.redisCpuUsecPerCall} / ${p.masterCpuUsecPerCall} | ${round(cores, 2)} | ${p.driverCores} | ${p.loadAverage1m} |`;
    }),
  ].join('\n');
  const written = writeResults('redis', figures, section);
  console.log(`\n${section}\n`);
  log(`results written to ${written.json} and ${written.summary}`);
}

// Last, so that every constant above is initialised before main or a driver runs.
if (process.argv.includes(DRIVER_FLAG)) {
  process.once('message', (order: DriverOrder) => {
    drive(order).then(
      (report) => process.send!(report, () => process.exit(0)),
      (error: Error) => {
        console.error(`[bench:redis driver] ${error.stack ?? error.message}`);
        process.exit(1);
      },
    );
  });
} else {
  await runBenchmark('redis', main);
}
