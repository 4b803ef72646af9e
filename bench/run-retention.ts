// npm run bench:retention: Redis memory in a steady state with retention of finished tasks
// (PROJECTION_TERMINAL_TTL_SECONDS) off and on.
//
// A steady stream of tasks, each going SCHEDULED -> IN_PROGRESS -> COMPLETED one second apart
// (seed-shaped, about 1.3 KB each), applied through the service's own projection
// (RedisTaskProjection, the apply script) to a redis-server of the run's own, started fresh for
// each side so that INFO memory counts nothing else. Events are stamped when they are applied, as
// live ingest sees them. Every few seconds: used_memory, used_memory_dataset, keys, expired_keys.
// Kafka is not involved: what is measured is what Redis holds.
// BENCH_SMOKE=1: a few seconds with a 2 s retention; asserts correctness only (finished tasks past
// their retention gone, the others served with the right bytes and expiry).
import { Logger } from '@nestjs/common';
import { Redis } from 'ioredis';
import { RedisTaskProjection } from '../src/projection/redis-task-projection.js';
import type { TaskEvent } from '../src/projection/task-event.js';
import { ProjectionHarness } from '../test/support/projection-harness.js';
import { sampleTaskBytes } from '../test/support/sample-task.js';
import { PrivateRedis } from '../test/support/private-redis.js';
import { assertCorrect, logger, onCleanup, runBenchmark } from './bench-run.js';
import { machineInfo, sectionHead, writeResults } from './results.js';
import { SMOKE, commandLine } from './settings.js';
import { median, round } from './statistics.js';

const log = logger('retention');

function positiveInteger(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer (got "${raw}")`);
  return value;
}

const settings = {
  /** New tasks per second (each brings three events). */
  tasksPerSecond: positiveInteger('BENCH_TASKS_PER_SECOND', SMOKE ? 50 : 200),
  /** How long the stream runs, per side. */
  seconds: positiveInteger('BENCH_SECONDS', SMOKE ? 6 : 180),
  /** PROJECTION_TERMINAL_TTL_SECONDS of the side with retention on. */
  ttlSeconds: positiveInteger('BENCH_TTL_SECONDS', SMOKE ? 2 : 30),
  sampleSeconds: SMOKE ? 1 : 5,
  tickMs: 100,
  partitions: 4,
};
const STATUSES = ['SCHEDULED', 'IN_PROGRESS', 'COMPLETED'] as const;

interface Sample {
  second: number;
  usedMemory: number;
  dataset: number;
  keys: number;
  expiredKeys: number;
}

interface Side {
  retention: 'off' | 'on';
  samples: Sample[];
  /** Medians over the last third of the run, once the stream is steady. */
  steady: { usedMemory: number; dataset: number; keys: number };
  /** Dataset growth over the last third, bytes per second. */
  datasetGrowthPerSecond: number;
  events: number;
  tasks: number;
}

const info = (text: string, field: string) => Number(new RegExp(`^${field}:(\\d+)`, 'm').exec(text)?.[1] ?? NaN);

async function sample(redis: Redis, startedAt: number): Promise<Sample> {
  const [memory, stats, keys] = await Promise.all([redis.info('memory'), redis.info('stats'), redis.dbsize()]);
  return { second: round((Date.now() - startedAt) / 1000, 1), usedMemory: info(memory, 'used_memory'), dataset: info(memory, 'used_memory_dataset'), keys, expiredKeys: info(stats, 'expired_keys') };
}

async function runSide(retention: 'off' | 'on'): Promise<Side> {
  const server = await PrivateRedis.start();
  onCleanup(`stop the ${retention} side's redis-server`, () => server.destroy());
  const harness = await ProjectionHarness.open({ url: server.url }, 'bench-retention:', {
    commandTimeoutMs: 5000,
    ...(retention === 'on' && { terminalTtlSeconds: settings.ttlSeconds }),
  });
  onCleanup(`close the ${retention} side's projection`, () => harness.close());
  const redis = new Redis(server.url);
  onCleanup(`disconnect the ${retention} side's client`, () => redis.quit());
  const projection: RedisTaskProjection = harness.projection;

  const offsets = Array.from({ length: settings.partitions }, () => 0);
  const finishedAt = new Map<string, number>();
  const lastBytes = new Map<string, Buffer>();
  const samples: Sample[] = [];
  let events = 0;
  let tasks = 0;
  const startedAt = Date.now();
  const perTick = (settings.tasksPerSecond * settings.tickMs) / 1000;
  let nextSample = startedAt;
  // Tick t starts tasks; each goes one status further every second (10 ticks).
  const started: string[][] = [];
  for (let tick = 0; ; tick += 1) {
    const due = startedAt + tick * settings.tickMs;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const streaming = Date.now() < startedAt + settings.seconds * 1000;
    const fresh: string[] = [];
    if (streaming) for (let index = 0; index < perTick; index += 1) fresh.push(`task-${retention}-${tasks++}`);
    started.push(fresh);
    const batch: TaskEvent[] = [];
    const now = Date.now();
    STATUSES.forEach((status, step) => {
      for (const taskId of started[tick - step * 10] ?? []) {
        const partition = Number(taskId.slice(taskId.lastIndexOf('-') + 1)) % settings.partitions;
        const value = sampleTaskBytes(taskId, step, { status });
        batch.push({ taskId, value, partition, offset: String(offsets[partition]++), timestamp: now, terminal: status === 'COMPLETED' });
        lastBytes.set(taskId, value);
        if (status === 'COMPLETED') finishedAt.set(taskId, now);
      }
    });
    if (batch.length > 0) {
      const result = await projection.applyBatch(batch);
      assertCorrect(result.applied === batch.length, `${retention}: ${batch.length - result.applied} of ${batch.length} events were not applied`);
      events += batch.length;
    }
    if (Date.now() >= nextSample) {
      samples.push(await sample(redis, startedAt));
      nextSample += settings.sampleSeconds * 1000;
    }
    if (!streaming && tick >= started.length - 1 && started.slice(-21).every((ids) => ids.length === 0)) break;
  }
  log(`${retention}: ${tasks} tasks, ${events} events in ${round((Date.now() - startedAt) / 1000, 1)} s`);

  await checkSide(retention, projection, redis, harness, finishedAt, lastBytes);
  const steadySamples = samples.filter((entry) => entry.second >= (settings.seconds * 2) / 3 && entry.second <= settings.seconds);
  const first = steadySamples[0];
  const last = steadySamples.at(-1);
  return {
    retention,
    samples,
    steady: {
      usedMemory: median(steadySamples.map((entry) => entry.usedMemory)) ?? NaN,
      dataset: median(steadySamples.map((entry) => entry.dataset)) ?? NaN,
      keys: median(steadySamples.map((entry) => entry.keys)) ?? NaN,
    },
    datasetGrowthPerSecond: first && last && last.second > first.second ? round((last.dataset - first.dataset) / (last.second - first.second), 0) : NaN,
    events,
    tasks,
  };
}

/**
 * Retention off: every task is served with its last bytes, none expiring. On: a task finished more
 * than the retention ago is gone, one finished less than the retention ago (with half a second's
 * margin either way) is served with its bytes and expires at its event's time plus the retention.
 */
async function checkSide(
  retention: 'off' | 'on',
  projection: RedisTaskProjection,
  redis: Redis,
  harness: ProjectionHarness,
  finishedAt: Map<string, number>,
  lastBytes: Map<string, Buffer>,
): Promise<void> {
  const ttlMs = settings.ttlSeconds * 1000;
  const ids = [...lastBytes.keys()];
  const step = Math.max(1, Math.floor(ids.length / 2000));
  let checked = 0;
  for (let index = 0; index < ids.length; index += step) {
    const taskId = ids[index];
    const stored = await projection.get(taskId);
    const pttl = await redis.pttl(harness.keys.task(1, taskId));
    const age = Date.now() - finishedAt.get(taskId)!;
    if (retention === 'off') {
      assertCorrect(stored?.value.equals(lastBytes.get(taskId)!) === true && pttl === -1, `off: ${taskId} is not served with its last bytes, permanent`);
    } else if (age > ttlMs + 500) {
      assertCorrect(stored === null, `on: ${taskId}, finished ${age} ms ago, is still served`);
    } else if (age < ttlMs - 500) {
      assertCorrect(stored?.value.equals(lastBytes.get(taskId)!) === true, `on: ${taskId}, finished ${age} ms ago, is not served with its last bytes`);
      assertCorrect(Math.abs(pttl - (ttlMs - age)) < 1000, `on: ${taskId} expires in ${pttl} ms, not ${ttlMs - age}`);
    }
    checked += 1;
  }
  log(`${retention}: checked ${checked} tasks`);
}

const mib = (bytes: number) => round(bytes / 2 ** 20, 1);

async function main(): Promise<void> {
  Logger.overrideLogger(['error']);
  const startedAt = new Date();
  log(`${SMOKE ? 'SMOKE run' : 'full run'}: ${settings.tasksPerSecond} tasks/s (${settings.tasksPerSecond * 3} events/s) for ${settings.seconds} s per side, retention ${settings.ttlSeconds} s on the second`);
  const off = await runSide('off');
  const on = await runSide('on');
  // With retention on, Redis should hold about rate × (retention + the 2 s a task runs) tasks.
  const expectedKeys = settings.tasksPerSecond * (settings.ttlSeconds + 2);
  if (SMOKE) {
    assertCorrect(on.steady.keys <= expectedKeys * 1.5 + settings.tasksPerSecond, `on: ${on.steady.keys} keys held, over about ${expectedKeys}`);
  }

  const probe = await PrivateRedis.start();
  const probeClient = new Redis(probe.url);
  const machine = await machineInfo(probeClient);
  await probeClient.quit();
  await probe.destroy();

  const figures = { benchmark: 'retention', smoke: SMOKE, date: startedAt.toISOString(), command: commandLine('bench:retention'), machine, settings, expectedKeysWithRetention: expectedKeys, sides: [off, on] };
  const row = (side: Side) =>
    `| ${side.retention === 'off' ? 'off' : `${settings.ttlSeconds} s`} | ${side.tasks} | ${mib(side.steady.usedMemory)} | ${mib(side.steady.dataset)} | ${side.steady.keys} | ${round(side.datasetGrowthPerSecond / 1024, 1)} | ${mib(side.samples.at(-1)?.dataset ?? NaN)} |`;
  const section = [
    ...sectionHead('Retention: Redis memory in a steady state', { date: figures.date, command: figures.command, machine }),
    '',
    `A stream of ${settings.tasksPerSecond} new tasks/s, each SCHEDULED, IN_PROGRESS, then COMPLETED one second apart (${settings.tasksPerSecond * 3} events/s, seed-shaped tasks of about 1.3 KB), applied through the projection for ${settings.seconds} s, each side on a fresh redis-server. Steady figures are medians of the samples (every ${settings.sampleSeconds} s) over the last third of the stream.`,
    '',
    '| retention | tasks | used_memory (MiB) | used_memory_dataset (MiB) | keys | dataset growth (KiB/s) | dataset at the end (MiB) |',
    '|---|---|---|---|---|---|---|',
    row(off),
    row(on),
    '',
    `With retention on, Redis holds about ${settings.tasksPerSecond} tasks/s × (${settings.ttlSeconds} s + 2 s) = ${expectedKeys} tasks whatever the run's length; off, it grows by every task. Figures per sample: \`bench/results/retention.json\`.`,
  ].join('\n');
  const written = writeResults('retention', figures, section);
  log(`results: ${written.json}, ${written.summary}`);
}

void runBenchmark('retention', main);
