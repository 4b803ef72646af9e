// What a run measures against: the shared Kafka and Redis, the service as it runs in production,
// and the two floors. The service and each floor run as processes of their own on the same machine;
// each process's output goes to .local/bench-logs/<run>/, and it is stopped by its own pid.
import { ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { ROOT, infraSettings, type InfraSettings } from '../test/support/infra.js';
import { freePort } from '../test/support/server-process.js';
import { TestKafka } from '../test/support/test-kafka.js';
import { onCleanup } from './bench-run.js';
import { REBUILD_NODE_ARGS, SERVICE_NODE_ARGS, SKIP_BUILD } from './settings.js';
import { TaskHttpClient } from './task-reading.js';

const INFRA_TIMEOUT_MS = 300_000;
const BUILD_TIMEOUT_MS = 300_000;
const SERVICE_BOOT_TIMEOUT_MS = 60_000;
const FLOOR_BOOT_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 20_000;

/**
 * The local Kafka and Redis every test and benchmark shares: brought up (or reused) by
 * scripts/infra.sh, never stopped or flushed here, since others use them at the same time.
 */
function bringUpInfrastructure(): InfraSettings {
  execFileSync('bash', [join(ROOT, 'scripts', 'infra.sh'), 'up'], { cwd: ROOT, stdio: 'inherit', timeout: INFRA_TIMEOUT_MS });
  const infra = infraSettings();
  for (const address of [...infra.kafkaBrokers, new URL(infra.redisUrl).host]) {
    const host = address.slice(0, address.lastIndexOf(':'));
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(host)) throw new Error(`benchmarks run on loopback only; ${address} is not`);
  }
  return infra;
}

function buildService(): void {
  if (SKIP_BUILD) {
    console.log('[bench] BENCH_SKIP_BUILD=1: using the existing dist/');
    return;
  }
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit', timeout: BUILD_TIMEOUT_MS });
}

export interface BenchStack {
  infra: InfraSettings;
  redis: Redis;
  kafka: TestKafka;
}

/**
 * The start both benchmarks share: infrastructure up, the service built, and a Redis client and
 * Kafka clients for the run, each closed by the cleanup stack whatever the outcome.
 */
export async function openBenchStack(runName: string): Promise<BenchStack> {
  const infra = bringUpInfrastructure();
  buildService();
  const redis = new Redis(infra.redisUrl, { maxRetriesPerRequest: 2, connectionName: runName });
  onCleanup('disconnect from redis', () => redis.quit());
  const kafka = await TestKafka.connect(infra.kafkaBrokers, runName);
  onCleanup('disconnect from kafka', () => kafka.close());
  return { infra, redis, kafka };
}

interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

/** A child process the benchmark starts and must stop; an early exit is reported with its log. */
export class ManagedProcess {
  private exitStatus: ExitStatus | undefined;
  private readonly exited: Promise<ExitStatus>;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitStatus = { code, signal };
        resolve(this.exitStatus);
      });
      child.once('error', (error) => {
        this.exitStatus = { code: null, signal: null, error };
        resolve(this.exitStatus);
      });
    });
  }

  /** Runs `node <args>` from the repository, its output appended to .local/bench-logs/<run>/<name>.log. */
  static start(name: string, runName: string, args: string[], env: Record<string, string>): ManagedProcess {
    const logDir = join(ROOT, '.local', 'bench-logs', runName);
    mkdirSync(logDir, { recursive: true });
    const logFile = join(logDir, `${name}.log`);
    const fd = openSync(logFile, 'a');
    // stdin is a pipe the bench holds: the bench's own children (the floors) exit when it closes,
    // so nothing outlives even a bench that is killed outright.
    const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['pipe', fd, fd] });
    closeSync(fd);
    return new ManagedProcess(name, child, logFile);
  }

  /** The child's process id, for CPU accounting; undefined if it failed to start. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitStatus === undefined;
  }

  describeExit(): string {
    const { code, signal, error } = this.exitStatus ?? { code: null, signal: null };
    return error ? `failed to start (${error.message})` : `exited with ${signal ? `signal ${signal}` : `code ${code}`}`;
  }

  logTail(lines = 30): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** Resolves when the process exits by itself; after `timeoutMs`, stops it and rejects. */
  async waitForExit(timeoutMs: number): Promise<ExitStatus> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), timeoutMs)));
    const exited = await Promise.race([this.exited, timedOut]);
    clearTimeout(timer);
    if (exited) return exited;
    await this.stop();
    throw new Error(`${this.name} did not finish within ${timeoutMs / 1000} s; stopped it\n--- ${this.logFile} ---\n${this.logTail()}`);
  }

  async stop(): Promise<ExitStatus> {
    if (this.exitStatus) return this.exitStatus;
    this.child.kill('SIGTERM');
    const stopped = await Promise.race([this.exited, sleep(STOP_TIMEOUT_MS).then(() => undefined)]);
    if (stopped) return stopped;
    console.error(`[bench] ${this.name} (pid ${this.child.pid}) did not stop within ${STOP_TIMEOUT_MS / 1000} s; killing it`);
    this.child.kill('SIGKILL');
    return this.exited;
  }
}

/** A server process of the run and the client that reads tasks from it. */
export interface TaskServer {
  child: ManagedProcess;
  client: TaskHttpClient;
  port: number;
  baseUrl: string;
}

/** Starts `node <args>` on a free port (the env's `portVariable`) and resolves once it answers HTTP. */
async function startTaskServer(
  what: string,
  { name, runName, args, env, portVariable, token, bootTimeoutMs }: { name: string; runName: string; args: string[]; env: Record<string, string>; portVariable: string; token: string; bootTimeoutMs: number },
): Promise<TaskServer> {
  const port = await freePort();
  const child = ManagedProcess.start(name, runName, args, { PATH: process.env.PATH ?? '', ...env, [portVariable]: String(port) });
  const client = new TaskHttpClient(`http://127.0.0.1:${port}`, token);
  try {
    await client.waitUntilAnswering({ timeoutMs: bootTimeoutMs, alive: () => child.running, describe: () => child.describeExit() });
  } catch (error) {
    await child.stop();
    throw new Error(`${what} did not start: ${(error as Error).message}\n--- ${child.logFile} ---\n${child.logTail()}`);
  }
  return { child, client, port, baseUrl: client.baseUrl };
}

export interface ServiceOptions {
  runName: string;
  name: string;
  infra: InfraSettings;
  topic: string;
  dlqTopic: string;
  groupId: string;
  keyPrefix: string;
  token: string;
  partitions: number;
  /** Serve /metrics on this port (METRICS_PORT): metrics on. Without it, metrics are off. */
  metricsPort?: number;
  /** More of the service's settings (e.g. WATCH_MAX_HELD), over the run's. */
  environment?: Record<string, string>;
}

/**
 * The service as it runs in production: `node dist/main.js` after `npm run build`, configured only
 * through its environment (see src/config/environment.ts), isolated by per-run topic, group and prefix.
 */
export function startService({ runName, name, infra, topic, dlqTopic, groupId, keyPrefix, token, partitions, metricsPort, environment }: ServiceOptions): Promise<TaskServer> {
  const env = {
    ...serviceEnvironment({ infra, topic, dlqTopic, groupId, keyPrefix, partitions }),
    AUTH_TOKENS: token,
    LOG_LEVEL: 'warn',
    ...(metricsPort !== undefined && { METRICS_PORT: String(metricsPort) }),
    ...environment,
  };
  const args = [...SERVICE_NODE_ARGS, join(ROOT, 'dist', 'main.js')];
  return startTaskServer('the service', { name, runName, args, env, portVariable: 'PORT', token, bootTimeoutMs: SERVICE_BOOT_TIMEOUT_MS });
}

/** The environment the service and `npm run rebuild` read their Kafka and Redis settings from. */
function serviceEnvironment({ infra, topic, dlqTopic, groupId, keyPrefix, partitions }: Omit<ServiceOptions, 'runName' | 'name' | 'token' | 'metricsPort' | 'environment'>): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    NODE_ENV: 'production',
    KAFKA_BROKERS: infra.kafkaBrokers.join(','),
    KAFKA_CLIENT_ID: groupId,
    KAFKA_TOPIC: topic,
    KAFKA_DLQ_TOPIC: dlqTopic,
    KAFKA_GROUP_ID: groupId,
    KAFKA_TOPIC_PARTITIONS: String(partitions),
    REDIS_URL: infra.redisUrl,
    REDIS_KEY_PREFIX: keyPrefix,
  };
}

export type RebuildCommandOptions = Omit<ServiceOptions, 'token'>;

/**
 * `npm run rebuild -- start` as an operator runs it: `node dist/rebuild/main.js start` with the
 * service's environment (no AUTH_*), its log lines (LOG_LEVEL=log) and output in the run's logs.
 */
export function startRebuildCommand({ runName, name, maxRate, ...service }: RebuildCommandOptions & { maxRate?: number }): ManagedProcess {
  const env = { ...serviceEnvironment(service), KAFKA_CLIENT_ID: `${service.groupId}.rebuild`, LOG_LEVEL: 'log' };
  const args = [...REBUILD_NODE_ARGS, join(ROOT, 'dist', 'rebuild', 'main.js'), 'start', ...(maxRate ? ['--max-rate', String(maxRate)] : [])];
  return ManagedProcess.start(name, runName, args, env);
}

/** `npm run rebuild -- status --json`, parsed. */
export function rebuildStatus(options: Omit<RebuildCommandOptions, 'runName' | 'name'>): Promise<Record<string, unknown>> {
  const env = { ...serviceEnvironment(options), KAFKA_CLIENT_ID: `${options.groupId}.rebuild-status`, LOG_LEVEL: 'warn' };
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [join(ROOT, 'dist', 'rebuild', 'main.js'), 'status', '--json'], { cwd: ROOT, env, timeout: 60_000 }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`rebuild status --json failed: ${stderr.trim() || error.message}`));
        return;
      }
      try {
        resolve(JSON.parse(stdout) as Record<string, unknown>);
      } catch {
        reject(new Error(`rebuild status --json printed no JSON: ${stdout.slice(0, 300)}`));
      }
    });
  });
}

/** The read floor (floor-read-server.ts), serving the bytes under `keyPrefix`. */
export function startFloorReadServer({ runName, redisUrl, keyPrefix, token }: { runName: string; redisUrl: string; keyPrefix: string; token: string }): Promise<TaskServer> {
  const env = { REDIS_URL: redisUrl, FLOOR_KEY_PREFIX: keyPrefix, FLOOR_TOKEN: token };
  const args = [join(import.meta.dirname, 'floor-read-server.js')];
  return startTaskServer('the read floor', { name: 'floor-read-server', runName, args, env, portVariable: 'FLOOR_PORT', token, bootTimeoutMs: FLOOR_BOOT_TIMEOUT_MS });
}

/** The ingest floor (floor-consumer.ts), a kafkajs consumer in group `groupId` that does nothing. */
export function startFloorConsumer({ runName, name, kafkaBrokers, topic, groupId }: { runName: string; name: string; kafkaBrokers: string[]; topic: string; groupId: string }): ManagedProcess {
  const env = { PATH: process.env.PATH ?? '', KAFKA_BROKERS: kafkaBrokers.join(','), FLOOR_TOPIC: topic, FLOOR_GROUP_ID: groupId };
  return ManagedProcess.start(name, runName, [join(import.meta.dirname, 'floor-consumer.js')], env);
}
