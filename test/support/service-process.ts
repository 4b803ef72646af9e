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
    ...overrides,
  };
}

/** REDIS_CLUSTER_NODES for a cluster without credentials or TLS, as the tests run it. */
const clusterNodes = (cluster: RedisClusterConfig) => cluster.nodes.map(({ host, port }) => `${host}:${port}`).join(',');

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
