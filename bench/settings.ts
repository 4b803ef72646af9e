// Sizes, durations and names of a benchmark run, and every BENCH_* variable it reads. Full-size
// defaults are the ones of the benchmark issue; BENCH_SMOKE=1 shrinks everything to a few seconds
// for CI, where only correctness counts.
import { uniqueName } from '../test/support/infra.js';

export const SMOKE = process.env.BENCH_SMOKE === '1';

/** BENCH_SKIP_BUILD=1: run the existing dist/ instead of building the service first. */
export const SKIP_BUILD = process.env.BENCH_SKIP_BUILD === '1';

/** BENCH_SERVICE_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=.local/profiles", profiles the service. */
export const SERVICE_NODE_ARGS = (process.env.BENCH_SERVICE_NODE_ARGS ?? '').split(' ').filter((arg) => arg.length > 0);

/** BENCH_REBUILD_NODE_ARGS: the same for `npm run rebuild` in bench:rebuild. */
export const REBUILD_NODE_ARGS = (process.env.BENCH_REBUILD_NODE_ARGS ?? '').split(' ').filter((arg) => arg.length > 0);

function positiveIntegerFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer (got "${raw}")`);
  return value;
}

/**
 * BENCH_HAPROXY_INSTANCES, e.g. "1,3" (`npm run bench:read:lb`): the read benchmark also reads
 * through HAProxy (deploy/haproxy/haproxy.cfg) in front of that many service instances, each count a
 * side of its own beside the direct service and the floor. Empty by default.
 */
function haproxyInstancesFromEnv(): number[] {
  const raw = process.env.BENCH_HAPROXY_INSTANCES ?? '';
  if (raw.trim() === '') return [];
  const counts = raw.split(',').map((part) => Number(part.trim()));
  if (counts.some((count) => !Number.isInteger(count) || count < 1 || count > 9)) {
    throw new Error(`BENCH_HAPROXY_INSTANCES must list instance counts from 1 to 9, e.g. "1,3" (got "${raw}")`);
  }
  return [...new Set(counts)].sort((a, b) => a - b);
}

/** Settings of `npm run bench:read`. */
export function readSettings() {
  const base = SMOKE
    ? { tasks: 100, warmupSeconds: 1, rounds: 2, roundSeconds: 1, readableTimeoutSeconds: 60, redisBenchmarkRequests: 5000, checkedTasks: 100 }
    : { tasks: 6000, warmupSeconds: 5, rounds: 3, roundSeconds: 10, readableTimeoutSeconds: 180, redisBenchmarkRequests: 200000, checkedTasks: 300 };
  return {
    ...base,
    tasks: positiveIntegerFromEnv('BENCH_TASKS', base.tasks),
    rounds: positiveIntegerFromEnv('BENCH_ROUNDS', base.rounds),
    roundSeconds: positiveIntegerFromEnv('BENCH_ROUND_SECONDS', base.roundSeconds),
    partitions: 4,
    connections: 50,
    fixedRate: 2000,
    // The route Conductor's clients call; /tasks/:taskId is checked for correctness too.
    route: '/api/tasks/',
    haproxyInstances: haproxyInstancesFromEnv(),
  };
}

export type ReadSettings = ReturnType<typeof readSettings>;

/** Settings of `npm run bench:ingest`. */
export function ingestSettings() {
  const base = SMOKE
    ? { tasks: 200, updatesPerTask: 20, rounds: 1, roundTimeoutSeconds: 90, freshnessRate: 200, freshnessSeconds: 2, freshnessSampleEvery: 2 }
    : { tasks: 6000, updatesPerTask: 20, rounds: 3, roundTimeoutSeconds: 600, freshnessRate: 1000, freshnessSeconds: 30, freshnessSampleEvery: 10 };
  return {
    ...base,
    tasks: positiveIntegerFromEnv('BENCH_TASKS', base.tasks),
    updatesPerTask: positiveIntegerFromEnv('BENCH_UPDATES_PER_TASK', base.updatesPerTask),
    rounds: positiveIntegerFromEnv('BENCH_ROUNDS', base.rounds),
    partitions: 4,
    offsetPollMs: 10,
    freshnessPollMs: 5,
    freshnessTimeoutMs: 10_000,
    readableTimeoutSeconds: SMOKE ? 60 : 180,
  };
}

export type IngestSettings = ReturnType<typeof ingestSettings>;

/** Settings of `npm run bench:rebuild`. */
export function rebuildSettings() {
  const base = SMOKE
    ? { tasks: 300, updatesPerTask: 3, instances: 3, rounds: 1, readRate: 100, idleSeconds: 2, liveRate: 20 }
    : { tasks: 100_000, updatesPerTask: 10, instances: 3, rounds: 3, readRate: 1000, idleSeconds: 20, liveRate: 100 };
  return {
    ...base,
    tasks: positiveIntegerFromEnv('BENCH_TASKS', base.tasks),
    updatesPerTask: positiveIntegerFromEnv('BENCH_UPDATES_PER_TASK', base.updatesPerTask),
    instances: positiveIntegerFromEnv('BENCH_INSTANCES', base.instances),
    rounds: positiveIntegerFromEnv('BENCH_ROUNDS', base.rounds),
    /** Reads per second, open loop, spread over the instances, the same in both phases. */
    readRate: positiveIntegerFromEnv('BENCH_READ_RATE', base.readRate),
    /** The idle phase's length; the phase during the rebuild lasts as long as the rebuild. */
    idleSeconds: positiveIntegerFromEnv('BENCH_IDLE_SECONDS', base.idleSeconds),
    /** Live updates per second produced while reads are measured (idle and during the rebuild alike). */
    liveRate: positiveIntegerFromEnv('BENCH_LIVE_RATE', base.liveRate),
    /** BENCH_REBUILD_MAX_RATE: the rebuild's --max-rate (events/s); unset: as fast as it goes, the default. */
    rebuildMaxRate: process.env.BENCH_REBUILD_MAX_RATE ? positiveIntegerFromEnv('BENCH_REBUILD_MAX_RATE', 1) : undefined,
    partitions: 4,
    route: '/api/tasks/',
    /** Reads not measured at the start of the read load: connections being opened. */
    readWarmupSeconds: SMOKE ? 1 : 3,
    offsetPollMs: 10,
    memoryPollMs: 100,
    healthPollMs: 10,
    loadTimeoutSeconds: SMOKE ? 120 : 900,
    rebuildTimeoutSeconds: SMOKE ? 180 : 1200,
    floorTimeoutSeconds: SMOKE ? 90 : 600,
    /** Tasks read back through each instance after a rebuild (every task is checked in Redis). */
    checkedPerInstance: SMOKE ? 300 : 1000,
  };
}

export type RebuildSettings = ReturnType<typeof rebuildSettings>;

/** Settings of `npm run bench:watch`. */
export function watchSettings() {
  const base = SMOKE
    ? { watchers: 200, hotTasks: 1, watchersPerHotTask: 20, rounds: 2, waves: 4, idleSeconds: 1 }
    : { watchers: 10_000, hotTasks: 5, watchersPerHotTask: 100, rounds: 2, waves: 20, idleSeconds: 10 };
  const watchers = positiveIntegerFromEnv('BENCH_WATCHERS', base.watchers);
  const waves = positiveIntegerFromEnv('BENCH_WAVES', base.waves);
  const hotWatchers = base.hotTasks * base.watchersPerHotTask;
  if (hotWatchers >= watchers) throw new Error(`BENCH_WATCHERS must be above the ${hotWatchers} watchers of the shared tasks (got ${watchers})`);
  // A wave is one produce request: over a thousand tasks of 1.3 KB, a partition's batch nears Kafka's 1 MB message limit.
  const waveTasks = Math.ceil((watchers - hotWatchers) / Math.max(1, waves - 1));
  if (waves < 2 || waveTasks > 1000) throw new Error(`BENCH_WAVES=${waves} makes waves of ${waveTasks} tasks: at least 2 waves, of at most 1000 tasks each`);
  return {
    ...base,
    watchers,
    waves,
    rounds: positiveIntegerFromEnv('BENCH_ROUNDS', base.rounds),
    idleSeconds: positiveIntegerFromEnv('BENCH_IDLE_SECONDS', base.idleSeconds),
    /** Tasks watched by one client each; the rest of the watchers share `hotTasks` tasks. */
    singleTasks: watchers - hotWatchers,
    /** The wait every watch asks for (`Prefer: wait=N`): the service's longest. */
    waitSeconds: 60,
    /** Pause after a wave is wholly answered, before the next one is produced. */
    wavePauseMs: SMOKE ? 100 : 300,
    /** A wave not wholly answered within this fails the run (well within the wait). */
    waveTimeoutMs: 20_000,
    /** Connections opened (and first read) at once while the watchers connect. */
    connectConcurrency: 200,
    partitions: 4,
    route: '/api/tasks/',
    /** WATCH_MAX_HELD of the service: above the watchers, so none is refused. */
    maxHeld: 20_000,
    rssSampleMs: SMOKE ? 250 : 1000,
    /** Pause before the first idle window and after the connections close. */
    settleMs: SMOKE ? 200 : 2000,
    metricsPollMs: 250,
    heldTimeoutSeconds: 60,
    readableTimeoutSeconds: SMOKE ? 60 : 180,
  };
}

export type WatchSettings = ReturnType<typeof watchSettings>;

export interface RunNames {
  name: string;
  topic: string;
  dlqTopic: string;
  groupId(label: string): string;
  keyPrefix(label: string): string;
  taskId(index: number): string;
}

/** Names no other run, suite or engineer uses: topics, groups and key prefixes are per run. */
export function runNames(benchmark: 'read' | 'batch' | 'ingest' | 'rebuild' | 'watch'): RunNames {
  const name = uniqueName(`bench-${benchmark}`);
  return {
    name,
    topic: `${name}.tasks`,
    dlqTopic: `${name}.tasks.dlq`,
    groupId: (label) => `${name}.${label}`,
    keyPrefix: (label) => `${name}:${label}:`,
    taskId: (index) => `${name}-task-${String(index).padStart(6, '0')}`,
  };
}

/** The command line that reproduces this run, for the results summary. */
export function commandLine(script: string): string {
  const overrides = Object.entries(process.env)
    .filter(([key]) => key.startsWith('BENCH_'))
    .map(([key, value]) => `${key}=${value}`)
    .sort();
  return [...overrides, `npm run ${script}`].join(' ');
}
