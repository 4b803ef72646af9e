import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getMetadataStorage } from 'class-validator';
import { parse } from 'yaml';
import { Environment } from '../../src/config/environment.js';

const ROOT = join(import.meta.dirname, '..', '..');
// merge: the cluster's nodes share one definition (`<<: *redis-cluster-node`), as Compose reads it.
const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true });
const script = readFileSync(join(ROOT, 'scripts', 'infra.sh'), 'utf8');
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
  it.each(['task-cache', 'task-cache-cluster'])('gives %s only variables the config schema knows', (service) => {
    const known = new Set(
      getMetadataStorage()
        .getTargetValidationMetadatas(Environment, '', true, false)
        .map((metadata) => metadata.propertyName),
    );
    const names = Object.keys(compose.services[service].environment);
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
    expect(script).toContain(`TC_KAFKA_HEAP:-${compose.services.kafka.environment.KAFKA_HEAP_OPTS}`);
  });

  it('persists Redis the same way as the local scripts', () => {
    expect(compose.services.redis.command.join(' ')).toContain('--appendonly yes --appendfsync everysec');
    expect(script).toContain('--appendonly yes --appendfsync everysec');
  });

  describe('Redis Cluster (profile "cluster")', () => {
    const nodes = Object.keys(compose.services).filter((name) => name.startsWith('redis-cluster-') && name !== 'redis-cluster-init');
    const nodeTimeout = /^CLUSTER_NODE_TIMEOUT_MS=(\d+)$/m.exec(script)?.[1];

    it('has six nodes, formed with one replica per master, as infra.sh forms its own', () => {
      expect(nodes).toEqual([1, 2, 3, 4, 5, 6].map((n) => `redis-cluster-${n}`));
      for (const name of [...nodes, 'redis-cluster-init', 'task-cache-cluster']) expect([name, compose.services[name].profiles]).toEqual([name, ['cluster']]);
      expect(compose.services['redis-cluster-init'].command.join(' ')).toContain('--cluster-replicas 1');
      expect(script).toContain('--cluster-replicas 1');
    });

    it('runs its nodes with the Redis image, persistence and cluster settings of the local scripts', () => {
      expect(nodeTimeout).toBeDefined();
      for (const name of nodes) {
        const command = compose.services[name].command.join(' ');
        expect([name, compose.services[name].image]).toEqual([name, compose.services.redis.image]);
        expect(command).toContain('--appendonly yes --appendfsync everysec');
        expect(command).toContain(`--cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout ${nodeTimeout}`);
        expect(command).toContain('--repl-diskless-sync-delay 0');
      }
      expect(script).toContain('--cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout "$CLUSTER_NODE_TIMEOUT_MS"');
      expect(script).toContain('--repl-diskless-sync-delay 0');
    });

    it('wires its service to every node by REDIS_CLUSTER_NODES, not REDIS_URL, in a consumer group of its own', () => {
      const env = compose.services['task-cache-cluster'].environment;
      expect(env.REDIS_CLUSTER_NODES).toBe(nodes.map((name) => `${name}:6379`).join(','));
      expect(env.REDIS_URL).toBeUndefined();
      expect(env.KAFKA_GROUP_ID).not.toBe(compose.services['task-cache'].environment.KAFKA_GROUP_ID);
    });
  });
});
