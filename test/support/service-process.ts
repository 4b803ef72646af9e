import { ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { AppConfig, RedisClusterConfig } from '../../src/config/app-config.js';
import { eventually } from './eventually.js';
import { ROOT, TEST_TOKEN } from './infra.js';

/** The environment that runs the service on a test's configuration (see the configuration table). */
export function serviceEnvironment(config: AppConfig, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    NO_COLOR: '1',
    PORT: String(config.http.port),
    KAFKA_BROKERS: config.kafka.brokers.join(','),
    KAFKA_TOPIC: config.kafka.topic,
    KAFKA_DLQ_TOPIC: config.kafka.dlqTopic,
    KAFKA_GROUP_ID: config.kafka.groupId,
    KAFKA_CLIENT_ID: config.kafka.clientId,
    KAFKA_TOPIC_PARTITIONS: String(config.kafka.topicPartitions),
    KAFKA_SESSION_TIMEOUT_MS: String(config.kafka.sessionTimeoutMs),
    ...(config.redis.cluster ? { REDIS_CLUSTER_NODES: clusterNodes(config.redis.cluster) } : { REDIS_URL: config.redis.url }),
    REDIS_KEY_PREFIX: config.redis.keyPrefix,
    AUTH_TOKENS: TEST_TOKEN,
    HTTP_KEEP_ALIVE_TIMEOUT_MS: String(config.http.keepAliveTimeoutMs),
    SHUTDOWN_TIMEOUT_MS: String(config.lifecycle.shutdownTimeoutMs),
    SHUTDOWN_DRAIN_MS: String(config.lifecycle.shutdownDrainMs),
    LOG_LEVEL: 'log',
    LOG_FORMAT: config.log.format,
    ...overrides,
  };
}

/** REDIS_CLUSTER_NODES for a cluster without credentials or TLS, as the tests run it. */
const clusterNodes = (cluster: RedisClusterConfig) => cluster.nodes.map(({ host, port }) => `${host}:${port}`).join(',');

/** One line of the service's JSON log (LOG_FORMAT=json), as pino writes it. */
export interface LogRecord {
  readonly level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  readonly time: string;
  readonly context?: string;
  readonly msg: string;
  readonly [field: string]: unknown;
}

/** What a log line must be: each given property equal, or matching where a RegExp is given. */
export type LogMatch = { readonly [K in keyof LogRecord]?: LogRecord[K] | RegExp };

/** The line as a log record, or undefined when it is not one (not JSON, or not pino's). */
export function parseLogLine(line: string): LogRecord | undefined {
  try {
    const record = JSON.parse(line) as unknown;
    return typeof record === 'object' && record !== null && typeof (record as LogRecord).level === 'string' && 'msg' in record ? (record as LogRecord) : undefined;
  } catch {
    return undefined;
  }
}

export function matchesLog(record: LogRecord, match: LogMatch): boolean {
  return Object.entries(match).every(([name, expected]) => (expected instanceof RegExp ? typeof record[name] === 'string' && expected.test(record[name]) : record[name] === expected));
}

/**
 * The built service (dist/main.js) as its own process, as it is deployed. Keeps what it prints;
 * only the process spawned here is ever signalled, by its pid.
 */
export class ServiceProcess {
  readonly output: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;

  constructor(env: Record<string, string>) {
    this.child = spawn(process.execPath, [join(ROOT, 'dist', 'main.js')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of [this.child.stdout!, this.child.stderr!]) {
      let pending = '';
      stream.on('data', (chunk: Buffer) => {
        const lines = (pending + chunk.toString()).split('\n');
        pending = lines.pop() ?? '';
        this.output.push(...lines);
      });
    }
    this.exited = once(this.child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  }

  /** Waits until a line of its output matches, and returns that line. */
  waitForOutput(pattern: RegExp, timeoutMs = 60_000): Promise<string> {
    return eventually(`the service to print ${pattern}`, () => this.output.find((line) => pattern.test(line)), { timeoutMs, intervalMs: 50 });
  }

  lines(pattern: RegExp): string[] {
    return this.output.filter((line) => pattern.test(line));
  }

  /** The lines of its JSON log (LOG_FORMAT=json) that match, as records. */
  logs(match: LogMatch = {}, from = 0): LogRecord[] {
    return this.output.slice(from).flatMap((line) => {
      const record = parseLogLine(line);
      return record && matchesLog(record, match) ? [record] : [];
    });
  }

  /** Waits until a line of its JSON log matches, and returns it. */
  waitForLog(match: LogMatch, timeoutMs = 60_000): Promise<LogRecord> {
    return eventually(`the service to log ${JSON.stringify(match, (_, value: unknown) => (value instanceof RegExp ? String(value) : value))}`, () => this.logs(match)[0], { timeoutMs, intervalMs: 50 });
  }

  /** Whether it has not exited yet. */
  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  signal(signal: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }

  /** Makes sure it is gone (at the end of a test, whatever happened). */
  async stop(): Promise<void> {
    this.signal('SIGKILL');
    await this.exited;
  }
}
