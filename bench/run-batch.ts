// npm run bench:batch: tasks per second read through POST /api/tasks/batch (100 ids a request)
// against the single read (GET /api/tasks/{taskId}), side by side in one run on one instance.
//
// 1. Loads N seed-shaped tasks through Kafka into the service and waits until every one is served
//    with the produced bytes; checks that batch reads answer each of them with the same bytes.
// 2. autocannon, 50 connections, a valid token: a warm-up per side, then rounds alternating the
//    sides (the side that goes first alternates too), at saturation. 'single' GETs a random task;
//    'batch' POSTs one of a set of bodies of BATCH_SIZE random distinct ids. Tasks/s is requests/s
//    times the ids a request reads; medians across rounds; ratio batch/single.
// BENCH_SMOKE=1: tiny sizes and one-second rounds; asserts correctness only.
import { randomBytes } from 'node:crypto';
import { sampleTaskBytes } from '../test/support/sample-task.js';
import { assertCorrect, CorrectnessFailure, logger, onCleanup, runBenchmark } from './bench-run.js';
import { loadRunProblems, runHttpLoad, type LoadRun } from './read-load.js';
import { deleteKeysWithPrefix } from './redis-store.js';
import { machineInfo, sectionHead, writeResults } from './results.js';
import { SMOKE, commandLine, readSettings, runNames } from './settings.js';
import { openBenchStack, startService } from './stack.js';
import { median, ratio, round } from './statistics.js';
import { waitUntilReadable } from './task-reading.js';

const log = logger('batch');
const settings = readSettings();
const names = runNames('batch');
const token = randomBytes(24).toString('hex');
const BATCH_SIZE = 100;
const BATCH_PATH = '/api/tasks/batch';
/** Distinct request bodies autocannon picks from, so reads spread over the tasks. */
const BODIES = SMOKE ? 20 : 500;
const SIDES = ['single', 'batch'] as const;
type Side = (typeof SIDES)[number];

/** Random distinct ids of `taskIds`, `count` of them. */
function sample(taskIds: string[], count: number): string[] {
  const picked = new Set<string>();
  while (picked.size < Math.min(count, taskIds.length)) picked.add(taskIds[Math.floor(Math.random() * taskIds.length)]);
  return [...picked];
}

async function main(): Promise<void> {
  const startedAt = new Date();
  log(`${SMOKE ? 'SMOKE run' : 'full run'} ${names.name}: ${settings.tasks} tasks, ${settings.rounds} rounds × ${settings.roundSeconds} s per side, batches of ${BATCH_SIZE}`);
  const { infra, redis, kafka } = await openBenchStack(names.name);
  const groupId = names.groupId('service');
  const keyPrefix = names.keyPrefix('service');
  onCleanup('delete the run topics', () => kafka.deleteTopics([names.topic, names.dlqTopic]));
  onCleanup('delete the service group', () => kafka.deleteGroups([groupId]));
  onCleanup('delete the run keys', () => deleteKeysWithPrefix(redis, keyPrefix));
  await kafka.createTaskTopics(names.topic, names.dlqTopic, settings.partitions, 'compact');

  // 1. Tasks through Kafka, readable through the service, and the same bytes in batch reads.
  const taskIds = Array.from({ length: settings.tasks }, (_, index) => names.taskId(index));
  const expected = new Map(taskIds.map((taskId) => [taskId, sampleTaskBytes(taskId, 0)]));
  await kafka.sendAll(names.topic, [...expected].map(([key, value]) => ({ key, value })));
  const service = await startService({ runName: names.name, name: 'service', infra, topic: names.topic, dlqTopic: names.dlqTopic, groupId, keyPrefix, token, partitions: settings.partitions });
  onCleanup('stop the service', () => service.child.stop());
  await waitUntilReadable({ client: service.client, expected, timeoutSeconds: settings.readableTimeoutSeconds, route: settings.route });
  log(`all ${taskIds.length} tasks readable through the service`);

  const bodies = Array.from({ length: BODIES }, () => sample(taskIds, BATCH_SIZE));
  for (const ids of SMOKE ? bodies : bodies.slice(0, 20)) await checkBatchAnswer(service.baseUrl, ids, expected);
  log(`batch reads serve the produced bytes (${SMOKE ? bodies.length : 20} bodies of ${BATCH_SIZE} ids checked, with a missing id and a duplicate)`);

  // 2. Load, alternating sides.
  const requestBodies = bodies.map((ids) => JSON.stringify({ taskIds: ids }));
  const paths: Record<Side, string[]> = { single: taskIds.map((taskId) => settings.route + taskId), batch: [BATCH_PATH] };
  const idsPerRequest: Record<Side, number> = { single: 1, batch: BATCH_SIZE };
  const problems: string[] = [];
  const load = async (side: Side, durationSeconds: number): Promise<LoadRun> => {
    const run = await runHttpLoad({
      baseUrl: service.baseUrl,
      token,
      paths: paths[side],
      connections: settings.connections,
      durationSeconds,
      overallRate: undefined,
      ...(side === 'batch' && { batchBodies: requestBodies }),
    });
    const problem = loadRunProblems(side, run);
    if (problem) problems.push(problem);
    return run;
  };
  for (const side of SIDES) await load(side, settings.warmupSeconds);
  const rounds: Record<Side, LoadRun[]> = { single: [], batch: [] };
  for (let round = 0; round < settings.rounds; round++) {
    for (const side of round % 2 === 0 ? SIDES : [...SIDES].reverse()) {
      const run = await load(side, settings.roundSeconds);
      rounds[side].push(run);
      log(`round ${round + 1} ${side}: ${Math.round(run.requestsPerSecond)} req/s, ${Math.round(run.requestsPerSecond * idsPerRequest[side])} tasks/s, p50 ${run.p50Ms?.toFixed(2)} ms, p99 ${run.p99Ms?.toFixed(2)} ms`);
    }
  }
  if (problems.length > 0) throw new CorrectnessFailure(`requests under load were not all answered 200:\n${problems.join('\n')}`);

  const summary = Object.fromEntries(
    SIDES.map((side) => {
      const runs = rounds[side];
      const requestsPerSecond = median(runs.map((run) => run.requestsPerSecond));
      return [
        side,
        {
          requestsPerSecond: round(requestsPerSecond, 0),
          tasksPerSecond: round(requestsPerSecond === null ? null : requestsPerSecond * idsPerRequest[side], 0),
          p50Ms: round(median(runs.map((run) => run.p50Ms)), 3),
          p99Ms: round(median(runs.map((run) => run.p99Ms)), 3),
        },
      ];
    }),
  ) as Record<Side, { requestsPerSecond: number | null; tasksPerSecond: number | null; p50Ms: number | null; p99Ms: number | null }>;
  const tasksRatio = round(ratio(summary.batch.tasksPerSecond, summary.single.tasksPerSecond), 2);
  log(`tasks/s: batch ${summary.batch.tasksPerSecond}, single ${summary.single.tasksPerSecond}, batch/single ${tasksRatio}`);

  const machine = await machineInfo(redis);
  const command = commandLine('bench:batch');
  const date = startedAt.toISOString();
  const figures = { benchmark: 'batch', smoke: SMOKE, date, command, machine, settings: { ...settings, batchSize: BATCH_SIZE, bodies: BODIES }, summary, tasksRatio, rounds };
  const cell = (value: number | null) => (value === null ? 'n/a' : String(value));
  const section = [
    ...sectionHead('Batch read: tasks/s through POST /api/tasks/batch against single reads', { date, command, machine }),
    `- ${settings.tasks} tasks, ${settings.connections} connections at saturation, ${settings.rounds} rounds × ${settings.roundSeconds} s per side, alternating; batches of ${BATCH_SIZE} random distinct ids; one instance, metrics off`,
    '',
    '| side | requests/s | tasks/s | p50 ms | p99 ms |',
    '|---|---|---|---|---|',
    ...SIDES.map((side) => `| ${side === 'batch' ? `batch of ${BATCH_SIZE}` : 'single read'} | ${cell(summary[side].requestsPerSecond)} | ${cell(summary[side].tasksPerSecond)} | ${cell(summary[side].p50Ms)} | ${cell(summary[side].p99Ms)} |`),
    '',
    `Tasks/s, batch / single: **${cell(tasksRatio)}×**.`,
  ].join('\n');
  const written = writeResults('batch', figures, section);
  log(`results: ${written.json}, ${written.summary}`);
}

/** A batch read of `ids` plus a missing id and a duplicate answers each task's produced bytes, the missing one, and nothing unprocessed. */
async function checkBatchAnswer(baseUrl: string, ids: string[], expected: Map<string, Buffer>): Promise<void> {
  const taskIds = [...ids, 'bench-no-such-task', ids[0]];
  const response = await fetch(new URL(BATCH_PATH, baseUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-authorization': token },
    body: JSON.stringify({ taskIds }),
  });
  const body = Buffer.from(await response.arrayBuffer());
  assertCorrect(response.status === 200, `batch read answered ${response.status}: ${body.toString().slice(0, 200)}`);
  const want = Buffer.concat([
    Buffer.from('{"tasks":{'),
    ...ids.flatMap((taskId, index) => [Buffer.from(`${index === 0 ? '' : ','}${JSON.stringify(taskId)}:`), expected.get(taskId)!]),
    Buffer.from('},"missing":["bench-no-such-task"],"unprocessed":[]}'),
  ]);
  assertCorrect(body.equals(want), 'a batch read answered other bytes than the produced tasks and the missing id');
  const anonymous = await fetch(new URL(BATCH_PATH, baseUrl), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"taskIds":[]}' });
  assertCorrect(anonymous.status === 401, `a batch read without a token answered ${anonymous.status}, not 401`);
}

await runBenchmark('batch', main);
