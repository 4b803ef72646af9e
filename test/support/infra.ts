import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { AppConfig } from '../../src/config/app-config.js';

export const ROOT = join(import.meta.dirname, '..', '..');

interface InfraSettings {
  kafkaBrokers: string[];
  redisUrl: string;
}

/** Connection settings written by `scripts/infra.sh up` (the e2e global setup runs it). */
function infraSettings(): InfraSettings {
  const text = readFileSync(join(ROOT, '.local', 'infra.env'), 'utf8');
  const env = Object.fromEntries(
    text
      .split('\n')
      .filter((line) => line.includes('='))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1).trim()]),
  );
  return { kafkaBrokers: env.KAFKA_BROKERS.split(','), redisUrl: env.REDIS_URL };
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
}

export const TEST_TOKEN = 'e2e-static-token-0123456789';

/** An AppConfig on the local infrastructure, isolated under a fresh topic, group and key prefix. */
export function testConfig(label: string, overrides: TestConfigOverrides = {}): AppConfig {
  const infra = infraSettings();
  const name = uniqueName(label);
  return {
    http: { port: 0, missingTaskStatus: 404, keepAliveTimeoutMs: 65000, ...overrides.http },
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
    redis: { url: infra.redisUrl, keyPrefix: `${name}:`, commandTimeoutMs: 2000, ...overrides.redis },
    projection: { tombstoneTtlSeconds: 3600, ...overrides.projection },
    ingest: { retryInitialMs: 50, retryMaxMs: 500, ...overrides.ingest },
    auth: { tokens: [TEST_TOKEN], keys: new Map(), jwtTtlSeconds: 3600, ...overrides.auth },
    lifecycle: { shutdownTimeoutMs: 15000, shutdownDrainMs: 0, logLevel: 'warn', ...overrides.lifecycle },
  };
}
