import { existsSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { AppConfig, RedisClusterConfig } from '../../src/config/app-config.js';
import { parseClusterNodes } from '../../src/config/redis-cluster-nodes.js';
import { REDIS_MODE } from './test-redis.js';

/** The nearest folder at or above `from` that holds a package.json. */
function packageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json at or above ${from}`);
  }
}

/** The repository, whether this file runs from test/support or compiled under .local/ (bench). */
export const ROOT = packageRoot(import.meta.dirname);

export interface InfraSettings {
  kafkaBrokers: string[];
  redisUrl: string;
  redisCluster?: RedisClusterConfig;
}

/** Connection settings written by `scripts/infra.sh up` (the e2e global setup and the benchmarks run it). */
export function infraSettings(): InfraSettings {
  const text = readFileSync(join(ROOT, '.local', 'infra.env'), 'utf8');
  const env = Object.fromEntries(
    text
      .split('\n')
      .filter((line) => line.includes('='))
      .map((line) => [line.slice(0, line.indexOf('=')).trim(), line.slice(line.indexOf('=') + 1).trim()]),
  );
  if (!env.KAFKA_BROKERS || !env.REDIS_URL) throw new Error('.local/infra.env lacks KAFKA_BROKERS or REDIS_URL');
  return {
    kafkaBrokers: env.KAFKA_BROKERS.split(',').map((broker) => broker.trim()),
    redisUrl: env.REDIS_URL,
    ...(env.REDIS_CLUSTER_NODES && { redisCluster: parseClusterNodes(env.REDIS_CLUSTER_NODES) }),
  };
}

/** A name no other suite or run uses: each suite gets its own topic, group and key prefix. */
export function uniqueName(label: string): string {
  return `${label}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

export interface TestConfigOverrides {
  http?: Partial<AppConfig['http']>;
  kafka?: Partial<AppConfig['kafka']>;
  redis?: Partial<AppConfig['redis']>;
  projection?: Partial<AppConfig['projection']>;
  ingest?: Partial<AppConfig['ingest']>;
  auth?: Partial<AppConfig['auth']>;
  lifecycle?: Partial<AppConfig['lifecycle']>;
  metrics?: Partial<AppConfig['metrics']>;
  log?: Partial<AppConfig['log']>;
}

export const TEST_TOKEN = 'e2e-static-token-0123456789';

/**
 * An AppConfig on the local infrastructure, isolated under a fresh topic, group and key prefix: on
 * its redis-server, or on its Redis Cluster in cluster mode (TC_REDIS_MODE=cluster), unless the
 * overrides name a Redis of their own.
 */
export function testConfig(label: string, overrides: TestConfigOverrides = {}): AppConfig {
  const infra = infraSettings();
  const name = uniqueName(label);
  const onCluster = REDIS_MODE === 'cluster' && overrides.redis?.url === undefined && overrides.redis?.cluster === undefined;
  if (onCluster && !infra.redisCluster) throw new Error('cluster mode, but .local/infra.env names no REDIS_CLUSTER_NODES: run scripts/infra.sh up redis-cluster');
  return {
    http: { port: 0, missingTaskStatus: 404, keepAliveTimeoutMs: 65000, maxHeldWatches: 10000, ...overrides.http },
    kafka: {
      brokers: infra.kafkaBrokers,
      clientId: name,
      topic: `${name}.tasks`,
      dlqTopic: `${name}.tasks.dlq`,
      groupId: `${name}.group`,
      topicPartitions: 4,
      replicationFactor: 1,
      sessionTimeoutMs: 10000,
      ...overrides.kafka,
    },
    redis: { url: infra.redisUrl, ...(onCluster && { cluster: infra.redisCluster }), keyPrefix: `${name}:`, commandTimeoutMs: 2000, ...overrides.redis },
    projection: { tombstoneTtlSeconds: 3600, ...overrides.projection },
    ingest: { retryInitialMs: 50, retryMaxMs: 500, ...overrides.ingest },
    auth: { tokens: [TEST_TOKEN], keys: new Map(), jwtTtlSeconds: 3600, ...overrides.auth },
    lifecycle: { shutdownTimeoutMs: 15000, shutdownDrainMs: 0, ...overrides.lifecycle },
    log: { level: 'warn', format: 'json', ...overrides.log },
    metrics: { ...overrides.metrics },
  };
}
