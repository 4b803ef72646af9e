import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { getMetadataStorage } from 'class-validator';
import { parse } from 'yaml';
import { Environment } from '../../src/config/environment.js';
import { REDIS_PING_TIMEOUT_MS } from '../../src/health/readiness-indicators.js';
import { HEADERS_TIMEOUT_MS } from '../../src/http/connection-timeouts.js';

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
  it.each(['task-cache', 'task-cache-cluster', 'task-cache-conductor', 'rebuild'])('gives %s only variables the config schema knows', (service) => {
    const known = new Set(
      getMetadataStorage()
        .getTargetValidationMetadatas(Environment, '', true, false)
        .map((metadata) => metadata.propertyName),
    );
    const names = Object.keys(compose.services[service].environment);
    expect(names.length).toBeGreaterThan(5);
    expect(names.filter((name) => !known.has(name))).toEqual([]);
  });

  it.each(['task-cache', 'task-cache-cluster', 'task-cache-conductor', 'rebuild'])('has %s log JSON lines, for a log collector, with a level LOG_LEVEL takes', (service) => {
    const env = compose.services[service].environment;
    const allowed = (property: string) =>
      getMetadataStorage()
        .getTargetValidationMetadatas(Environment, '', true, false)
        .find((metadata) => metadata.propertyName === property && metadata.name === 'isIn')?.constraints[0] as unknown[];
    expect(env.LOG_FORMAT).toBe('json');
    expect(allowed('LOG_FORMAT')).toContain(env.LOG_FORMAT);
    expect(allowed('LOG_LEVEL')).toContain(env.LOG_LEVEL);
  });

  it('runs the service of `npm run local` with text logs for a person, unless LOG_FORMAT says otherwise', () => {
    expect(readFileSync(join(ROOT, 'scripts', 'local.sh'), 'utf8')).toMatch(/LOG_FORMAT="\$\{LOG_FORMAT:-pretty\}" node dist\/main\.js/);
  });

  it('wires the service to the compose Kafka and Redis', () => {
    const env = compose.services['task-cache'].environment;
    expect(env.KAFKA_BROKERS).toBe('kafka:9092');
    expect(env.REDIS_URL).toBe('redis://redis:6379');
  });

  it('runs the rebuild on the very topic, group, Redis and key prefix the service uses', () => {
    const service = compose.services['task-cache'].environment;
    const rebuild = compose.services.rebuild.environment;
    for (const name of ['KAFKA_BROKERS', 'KAFKA_TOPIC', 'KAFKA_DLQ_TOPIC', 'KAFKA_GROUP_ID', 'REDIS_URL', 'REDIS_KEY_PREFIX']) {
      expect([name, rebuild[name]]).toEqual([name, service[name]]);
    }
    expect(compose.services.rebuild.entrypoint).toEqual(['node', 'dist/rebuild/main.js']);
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

/** The host path (relative to the repository) a service sees at `containerPath`, through its bind mounts. */
function hostPath(service: { volumes?: string[] }, containerPath: string): string | undefined {
  for (const volume of service.volumes ?? []) {
    const [source, target] = volume.split(':');
    if (!source.startsWith('./')) continue;
    if (containerPath === target) return source.slice(2);
    if (containerPath.startsWith(`${target}/`)) return join(source.slice(2), containerPath.slice(target.length + 1));
  }
  return undefined;
}

describe('Prometheus and Grafana (profile "observability") with the services they watch', () => {
  const prometheus = compose.services.prometheus;
  const grafana = compose.services.grafana;
  const config = parse(readFileSync(join(ROOT, 'deploy', 'prometheus', 'prometheus.yml'), 'utf8'));
  const scraped: { job: string; service: string; port: number }[] = config.scrape_configs.flatMap(
    (job: { job_name: string; dns_sd_configs?: { names: string[]; type: string; port: number }[] }) =>
      (job.dns_sd_configs ?? []).flatMap((sd) => sd.names.map((service) => ({ job: job.job_name, service, port: sd.port }))),
  );
  const withMetrics = Object.keys(compose.services).filter((name) => compose.services[name].environment?.METRICS_PORT !== undefined);

  it('runs them only with the profile, from pinned images', () => {
    expect(prometheus.profiles).toEqual(['observability']);
    expect(grafana.profiles).toEqual(['observability']);
    expect(prometheus.image).toMatch(/^prom\/prometheus:v\d+\.\d+\.\d+$/);
    expect(grafana.image).toMatch(/^grafana\/grafana:\d+\.\d+\.\d+$/);
    expect(prometheus.ports).toEqual(['127.0.0.1:9090:9090']);
    expect(grafana.ports).toEqual([expect.stringMatching(/^127\.0\.0\.1:\d+:3000$/)]);
  });

  it('mounts files that exist, read-only, where each reads them', () => {
    for (const service of [prometheus, grafana]) {
      for (const volume of service.volumes as string[]) {
        if (!volume.startsWith('./')) continue;
        expect([volume, existsSync(join(ROOT, volume.split(':')[0])), volume.endsWith(':ro')]).toEqual([volume, true, true]);
      }
    }
    const configFile = /--config\.file=(\S+)/.exec(prometheus.command.join(' '))?.[1];
    expect(hostPath(prometheus, configFile!)).toBe('deploy/prometheus/prometheus.yml');
    // rule_files are relative to the configuration file.
    for (const pattern of config.rule_files as string[]) {
      const dir = join(ROOT, dirname(hostPath(prometheus, configFile!)!), posix.dirname(pattern));
      const matches = readdirSync(dir).filter((file) => new RegExp(`^${posix.basename(pattern).replace('.', '\\.').replace('*', '.*')}$`).test(file));
      expect([pattern, matches]).toEqual([pattern, ['task-cache-alerts.yml']]);
    }

    expect(statSync(join(ROOT, hostPath(grafana, '/etc/grafana/provisioning/datasources')!)).isDirectory()).toBe(true);
    const providers = parse(readFileSync(join(ROOT, hostPath(grafana, '/etc/grafana/provisioning/dashboards/task-cache.yml')!), 'utf8')).providers;
    expect(hostPath(grafana, providers[0].options.path)).toBe('deploy/grafana/dashboards');
    const home = hostPath(grafana, grafana.environment.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH);
    expect(home).toBe('deploy/grafana/dashboards/task-cache.json');
    expect(existsSync(join(ROOT, home!))).toBe(true);
  });

  it("points Grafana's data source at the compose Prometheus", () => {
    const datasources = parse(readFileSync(join(ROOT, hostPath(grafana, '/etc/grafana/provisioning/datasources/prometheus.yml')!), 'utf8')).datasources;
    expect(datasources.map((source: { url: string }) => source.url)).toEqual([`http://prometheus:${prometheus.ports[0].split(':').pop()}`]);
    expect(prometheus.command.join(' ')).not.toContain('--web.listen-address');
  });

  it('scrapes every service that serves metrics, on its METRICS_PORT, each as a job of its own', () => {
    expect(withMetrics.sort()).toEqual(['task-cache', 'task-cache-cluster']);
    expect(scraped.map(({ service }) => service).sort()).toEqual(withMetrics);
    for (const { job, service, port } of scraped) {
      expect([job, port]).toEqual([service, compose.services[service].environment.METRICS_PORT]);
    }
  });

  it('serves metrics only on the compose network: not published, not behind HAProxy', () => {
    const servers = readFileSync(join(ROOT, 'deploy', 'haproxy', 'compose-servers.cfg'), 'utf8');
    const balancedPort = Number(/server-template\s+\S+\s+\d+\s+task-cache:(\d+)/.exec(servers)?.[1]);
    for (const name of withMetrics) {
      const { environment, ports } = compose.services[name];
      expect(environment.METRICS_PORT).not.toBe(environment.PORT);
      const published = ((ports ?? []) as string[]).map((mapping) => Number(mapping.split(':').pop()));
      expect([name, published.includes(environment.METRICS_PORT)]).toEqual([name, false]);
    }
    expect(balancedPort).toBe(compose.services['task-cache'].environment.PORT);
    expect(balancedPort).not.toBe(compose.services['task-cache'].environment.METRICS_PORT);
  });
});

/** deploy/haproxy/haproxy.cfg as directive -> arguments (the last occurrence wins, as for HAProxy). */
function haproxyDirectives(text: string): Map<string, string> {
  const directives = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') continue;
    const words = line.split(/\s+/);
    const arity = ['timeout', 'http-check', 'option'].includes(words[0]) ? 2 : 1;
    directives.set(words.slice(0, arity).join(' '), words.slice(arity).join(' '));
  }
  return directives;
}

/** An HAProxy time (milliseconds unless suffixed) in milliseconds. */
function haproxyMs(value: string | undefined): number {
  const match = /^(\d+)(us|ms|s|m|h)?$/.exec(value ?? '');
  if (!match) throw new Error(`not an HAProxy time: ${value}`);
  const unit = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] ?? 'ms'];
  return Number(match[1]) * unit!;
}

describe('HAProxy (deploy/haproxy/haproxy.cfg) with docker-compose.yml and the service', () => {
  const haproxyCfg = readFileSync(join(ROOT, 'deploy', 'haproxy', 'haproxy.cfg'), 'utf8');
  const composeServers = readFileSync(join(ROOT, 'deploy', 'haproxy', 'compose-servers.cfg'), 'utf8');
  const directives = haproxyDirectives(haproxyCfg);
  const serverDefaults = new Map<string, string>();
  const words = (directives.get('default-server') ?? '').split(/\s+/);
  for (let at = 0; at < words.length; at += 1) {
    if (['inter', 'fall', 'rise', 'pool-purge-delay'].includes(words[at])) serverDefaults.set(words[at], words[(at += 1)]);
  }
  const defaults = new Environment();
  const service = compose.services['task-cache'];
  const haproxy = compose.services.haproxy;

  it('runs the HAProxy version the local scripts expect (major.minor)', () => {
    const local = /^HAPROXY_VERSION=(\d+\.\d+)$/m.exec(readFileSync(join(ROOT, 'scripts', 'local.sh'), 'utf8'))?.[1];
    expect(local).toBeDefined();
    expect(haproxy.image).toMatch(new RegExp(`^haproxy:${local!.replace('.', '\\.')}(\\.\\d+)?$`));
  });

  it('gives compose the same configuration file as the local scripts, with the compose servers after it', () => {
    expect(haproxy.volumes).toContain('./deploy/haproxy:/usr/local/etc/haproxy:ro');
    expect(haproxy.command).toEqual(['haproxy', '-f', '/usr/local/etc/haproxy/haproxy.cfg', '-f', '/usr/local/etc/haproxy/compose-servers.cfg']);
    expect(haproxy.environment.TC_LB_BIND).toBe(':3000');
    expect(haproxy.ports).toEqual(['127.0.0.1:3000:3000']);
    expect(readFileSync(join(ROOT, 'scripts', 'local.sh'), 'utf8')).toContain('-f deploy/haproxy/haproxy.cfg -f .local/haproxy/servers.cfg');
    expect(haproxyCfg).toContain('bind "${TC_LB_BIND}"');
  });

  it('balances every compose replica, on the port the service listens on', () => {
    const template = /server-template\s+\S+\s+(\d+)\s+task-cache:(\d+)/.exec(composeServers);
    expect(template).not.toBeNull();
    expect(Number(template![1])).toBe(service.deploy.replicas);
    expect(service.deploy.replicas).toBe(3);
    expect(Number(template![2])).toBe(service.environment.PORT);
    expect(service.ports).toBeUndefined(); // only through HAProxy
  });

  it('checks readiness, and the drain outlasts the checks that take a draining instance out', () => {
    expect(directives.get('option httpchk')).toBe('');
    expect(directives.get('http-check send')).toBe('meth GET uri /health/ready');
    expect(directives.get('http-check expect')).toBe('status 200');
    const takenOutWithinMs = Number(serverDefaults.get('fall')) * haproxyMs(serverDefaults.get('inter')) + haproxyMs(directives.get('timeout check'));
    for (const drainMs of [defaults.SHUTDOWN_DRAIN_MS, service.environment.SHUTDOWN_DRAIN_MS]) {
      expect(drainMs).toBeGreaterThanOrEqual(takenOutWithinMs);
    }
    // The check's own bound is above the service's bound on the Redis PING, so a slow Redis is named.
    expect(haproxyMs(directives.get('timeout check'))).toBeGreaterThan(REDIS_PING_TIMEOUT_MS);
  });

  it('retries what failed on a server elsewhere', () => {
    expect(directives.get('retry-on')?.split(' ')).toEqual(expect.arrayContaining(['conn-failure', 'empty-response']));
    expect(directives.get('option redispatch')).toBe('1');
    expect(Number(directives.get('retries'))).toBeGreaterThanOrEqual(2);
    expect(['roundrobin', 'leastconn']).toContain(directives.get('balance'));
  });

  it("keeps its timeouts consistent with the service's", () => {
    for (const keepAliveMs of [defaults.HTTP_KEEP_ALIVE_TIMEOUT_MS, service.environment.HTTP_KEEP_ALIVE_TIMEOUT_MS]) {
      // HAProxy, not the service, closes an idle connection between them.
      expect(keepAliveMs).toBeGreaterThan(haproxyMs(directives.get('timeout http-keep-alive')));
      expect(keepAliveMs).toBeGreaterThan(4 * haproxyMs(serverDefaults.get('pool-purge-delay')));
    }
    expect(haproxyMs(directives.get('timeout http-request'))).toBe(HEADERS_TIMEOUT_MS);
    // A Redis command that times out is answered (503) before HAProxy gives up on the server.
    expect(haproxyMs(directives.get('timeout server'))).toBeGreaterThan(defaults.REDIS_COMMAND_TIMEOUT_MS);
    // The orchestrator waits longer than the service's own bound on its shutdown.
    expect(haproxyMs(service.stop_grace_period)).toBeGreaterThan(service.environment.SHUTDOWN_TIMEOUT_MS);
    expect(service.environment.SHUTDOWN_DRAIN_MS).toBeLessThan(service.environment.SHUTDOWN_TIMEOUT_MS);
  });
});

describe('the Conductor profile ("conductor")', () => {
  const conductor = compose.services.conductor;
  const bridged = compose.services['task-cache-conductor'];
  const template = readFileSync(join(ROOT, 'scripts', 'conductor', 'conductor.properties.template'), 'utf8');
  const env = conductor.environment as Record<string, string | number>;

  it('builds the server from scripts/conductor, whose pom names the version the tests run, and fills in every value of their properties', () => {
    expect(conductor.build).toBe('scripts/conductor');
    expect(readFileSync(join(ROOT, 'scripts', 'conductor', 'Dockerfile'), 'utf8')).toMatch(/COPY pom\.xml[\s\S]*dependency:copy[\s\S]*COPY conductor\.properties\.template entrypoint\.sh/);
    const placeholders = [...new Set([...template.matchAll(/@([A-Z_]+)@/g)].map((match) => match[1]))].sort();
    expect(Object.keys(env).sort()).toEqual(placeholders.map((name) => `TEMPLATE_${name}`));
    for (const service of ['conductor', 'conductor-redis', 'task-cache-conductor']) expect(compose.services[service].profiles).toEqual(['conductor']);
  });

  it("points Conductor's Redis at its own, never the service's", () => {
    expect(env.TEMPLATE_REDIS_HOST).toBe('conductor-redis');
    expect(compose.services['conductor-redis'].image).toBe(compose.services.redis.image);
  });

  it("points Conductor's webhooks at the bridged instance's webhook endpoints, with its header and token, and a read timeout above its answer timeout", () => {
    const port = bridged.environment.PORT;
    expect(env.TEMPLATE_WEBHOOK_URL).toBe(`http://task-cache-conductor:${port}/conductor/webhook`);
    expect([env.TEMPLATE_TASK_ENDPOINT, env.TEMPLATE_WORKFLOW_ENDPOINT]).toEqual(['task', 'workflow']);
    expect(env.TEMPLATE_WEBHOOK_HEADER).toBe(bridged.environment.BRIDGE_WEBHOOK_HEADER);
    expect(env.TEMPLATE_WEBHOOK_TOKEN).toBe(bridged.environment.BRIDGE_WEBHOOK_TOKEN);
    expect(String(env.TEMPLATE_WEBHOOK_TOKEN)).toMatch(/^\$\{BRIDGE_WEBHOOK_TOKEN:\?/);
    const answerTimeout = Number(bridged.environment.BRIDGE_ANSWER_TIMEOUT_MS ?? new Environment().BRIDGE_ANSWER_TIMEOUT_MS);
    expect(Number(env.TEMPLATE_READ_TIMEOUT_MS)).toBeGreaterThan(answerTimeout);
    expect(bridged.environment.CONDUCTOR_URL).toBe(`http://conductor:${env.TEMPLATE_SERVER_PORT}`);
  });

  it('runs the bridged instance as one more instance of the service: same topic, group and Redis', () => {
    for (const name of ['KAFKA_TOPIC', 'KAFKA_DLQ_TOPIC', 'KAFKA_GROUP_ID', 'REDIS_URL', 'REDIS_KEY_PREFIX']) {
      expect([name, bridged.environment[name]]).toEqual([name, compose.services['task-cache'].environment[name]]);
    }
  });
});
