import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getMetadataStorage } from 'class-validator';
import { parse } from 'yaml';
import { Environment } from '../../src/config/environment.js';

const ROOT = join(import.meta.dirname, '..', '..');
const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'));
const pom = readFileSync(join(ROOT, 'scripts', 'kafka', 'pom.xml'), 'utf8');
const serverTemplate = readFileSync(join(ROOT, 'scripts', 'kafka', 'server.properties.template'), 'utf8');

/** Broker properties that differ between the two set-ups by design (addresses, paths, listener names). */
const DEPLOYMENT_SPECIFIC = new Set([
  'controller.quorum.voters',
  'listeners',
  'advertised.listeners',
  'listener.security.protocol.map',
  'inter.broker.listener.name',
  'log.dirs',
]);

describe('docker-compose.yml', () => {
  it("gives the service only variables the config schema knows", () => {
    const known = new Set(
      getMetadataStorage()
        .getTargetValidationMetadatas(Environment, '', true, false)
        .map((metadata) => metadata.propertyName),
    );
    const names = Object.keys(compose.services['task-cache'].environment);
    expect(names.length).toBeGreaterThan(5);
    expect(names.filter((name) => !known.has(name))).toEqual([]);
  });

  it('wires the service to the compose Kafka and Redis', () => {
    const env = compose.services['task-cache'].environment;
    expect(env.KAFKA_BROKERS).toBe('kafka:9092');
    expect(env.REDIS_URL).toBe('redis://redis:6379');
  });

  it('runs the same Kafka version as the local scripts', () => {
    const version = /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(pom)?.[1];
    expect(compose.services.kafka.image).toBe(`apache/kafka:${version}`);
  });

  it('configures the broker like the local scripts, as single-node KRaft', () => {
    const env: Record<string, unknown> = compose.services.kafka.environment;
    const fromCompose = new Map(
      Object.entries(env)
        .filter(([name]) => name.startsWith('KAFKA_') && name !== 'KAFKA_HEAP_OPTS')
        .map(([name, value]) => [name.slice('KAFKA_'.length).toLowerCase().replaceAll('_', '.'), String(value)]),
    );
    const fromScripts = new Map(
      serverTemplate
        .split('\n')
        .filter((line) => line.includes('=') && !line.startsWith('#'))
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    );
    for (const [name, value] of fromScripts) {
      if (DEPLOYMENT_SPECIFIC.has(name)) continue;
      expect([name, fromCompose.get(name)]).toEqual([name, value]);
    }
    expect(fromCompose.get('process.roles')).toBe('broker,controller');
    expect(fromCompose.get('auto.create.topics.enable')).toBe('false');
  });

  it('keeps the local scripts and compose on the same heap', () => {
    const script = readFileSync(join(ROOT, 'scripts', 'infra.sh'), 'utf8');
    expect(script).toContain(`TC_KAFKA_HEAP:-${compose.services.kafka.environment.KAFKA_HEAP_OPTS}`);
  });

  it('persists Redis the same way as the local scripts', () => {
    const script = readFileSync(join(ROOT, 'scripts', 'infra.sh'), 'utf8');
    expect(compose.services.redis.command.join(' ')).toContain('--appendonly yes --appendfsync everysec');
    expect(script).toContain('--appendonly yes --appendfsync everysec');
  });
});
