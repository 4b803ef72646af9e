import { Agent } from 'node:http';
import { connect } from 'node:net';
import { AppConfig } from '../src/config/app-config.js';
import { HEADERS_TIMEOUT_MS } from '../src/http/connection-timeouts.js';
import { KafkaClient } from '../src/kafka/kafka-client.js';
import { TopicProvisioner } from '../src/kafka/topic-provisioner.js';
import { eventually } from './support/eventually.js';
import { httpGet } from './support/http-get.js';
import { TEST_TOKEN, testConfig } from './support/infra.js';
import { PrivateRedis } from './support/private-redis.js';
import { ProjectionHarness } from './support/projection-harness.js';
import { ProjectionReader } from './support/projection-reader.js';
import { sampleTaskBytes } from './support/sample-task.js';
import { freePort } from './support/server-process.js';
import { serviceEnvironment, ServiceProcess } from './support/service-process.js';
import { TestKafka } from './support/test-kafka.js';

// The built service (dist/main.js, from `npm run build`) as its own process: its health endpoints
// as a load balancer sees them, with Redis or Kafka gone, and its drain on SIGTERM.

const AUTH = { 'X-Authorization': TEST_TOKEN };
const PHASES = ['starting', 'provisioning', 'joining', 'consuming', 'retrying', 'failed', 'stopped'];

interface HealthBody {
  status: string;
  error: Record<string, { status: string; message?: string }>;
  details: Record<string, { status: string; phase?: string; message?: string; generation?: number; catchUp?: string }>;
}

const health = async (config: AppConfig, which: 'live' | 'ready') => {
  const answer = await httpGet(`http://127.0.0.1:${config.http.port}/health/${which}`);
  return { status: answer.status, headers: answer.headers, body: JSON.parse(answer.body) as HealthBody };
};

describe('health endpoints of the service process', () => {
  const services: ServiceProcess[] = [];
  const start = async (config: AppConfig, overrides: Record<string, string> = {}) => {
    const service = new ServiceProcess(serviceEnvironment(config, overrides));
    services.push(service);
    await service.waitForOutput(/task-cache listening on port/);
    return service;
  };

  afterEach(async () => {
    for (const service of services.splice(0)) await service.stop();
  });

  it('answers live and ready with 200, without a token, naming each check and the Kafka consumer state', async () => {
    const config = testConfig('health', { http: { port: await freePort() } });
    await start(config);
    const live = await health(config, 'live');
    expect(live.status).toBe(200);
    expect(live.body).toMatchObject({ status: 'ok', details: { process: { status: 'up' } } });

    const ready = await eventually('ready', async () => {
      const answer = await health(config, 'ready');
      return answer.status === 200 && answer;
    });
    expect(ready.headers['content-type']).toBe('application/json');
    expect(ready.headers['cache-control']).toBe('no-store');
    expect(ready.body.error).toEqual({});
    expect(ready.body.details).toMatchObject({
      drain: { status: 'up' },
      redis: { status: 'up' },
      projection: { status: 'up', generation: 1 },
      kafka: { status: expect.stringMatching(/^(up|degraded)$/) },
    });
    expect(PHASES).toContain(ready.body.details.kafka.phase);
    // Reads still need the token.
    expect((await httpGet(`http://127.0.0.1:${config.http.port}/tasks/any`)).status).toBe(401);
  });

  it('turns ready 503 naming redis while Redis is down, live staying 200, and ready again once it is back', async () => {
    const redis = await PrivateRedis.start();
    try {
      const config = testConfig('health-redis', { http: { port: await freePort() }, redis: { url: redis.url } });
      await start(config);
      await eventually('ready', async () => (await health(config, 'ready')).status === 200);

      await redis.kill();
      const down = await eventually('ready to turn 503', async () => {
        const answer = await health(config, 'ready');
        return answer.status === 503 && answer;
      });
      expect(Object.keys(down.body.error)).toEqual(['redis']);
      expect(down.body.error.redis.status).toBe('down');
      expect(down.body.error.redis.message).toEqual(expect.any(String));
      expect(down.body.details.drain.status).toBe('up');
      expect((await health(config, 'live')).status).toBe(200);

      await redis.start();
      await eventually('ready again', async () => (await health(config, 'ready')).status === 200, { timeoutMs: 15_000 });
    } finally {
      await redis.destroy();
    }
  });

  it('cold start: against an empty Redis while the topic holds tasks, not ready until the projection has caught up with the topic as it was at start; then every task is there', async () => {
    const config = testConfig('cold-start', { http: { port: await freePort() } });
    const kafka = await TestKafka.connect(config.kafka.brokers);
    const reader = new ProjectionReader(config.redis);
    try {
      await new TopicProvisioner(new KafkaClient(config.kafka), config.kafka).ensureTopics();
      const taskIds = Array.from({ length: 4000 }, (_, index) => `cold-${index}`);
      // kafkajs groups a send's messages in quadratic time: a few hundred per send.
      for (let start = 0; start < taskIds.length; start += 500) {
        await kafka.send(
          config.kafka.topic,
          taskIds.slice(start, start + 500).map((taskId) => ({ key: taskId, value: sampleTaskBytes(taskId, 1) })),
        );
      }
      const service = await start(config);
      const seen: string[] = [];
      const firstReady = await eventually(
        'ready',
        async () => {
          const answer = await health(config, 'ready');
          seen.push(answer.status === 200 ? 'ready' : `503 ${answer.body.error.projection?.message ?? Object.keys(answer.body.error).join(',')}`);
          return answer.status === 200 && answer;
        },
        { intervalMs: 20 },
      );
      // Every event was produced before the start: once caught up, nothing more arrives, so what
      // Redis holds now is what it held at the first 200.
      const projected = await reader.read(taskIds);
      expect(taskIds.filter((taskId) => !projected.has(taskId))).toEqual([]);
      expect(firstReady.body.details.projection).toMatchObject({ status: 'up', catchUp: 'caught-up' });
      expect(seen.some((line) => /^503 catching up: \d+ offsets behind/.test(line))).toBe(true);
      await service.waitForOutput(/projection catching up: 4000 offsets behind the source topic's high watermarks at start; not ready until then/);
      process.stdout.write(`[measure] cold start of 4,000 tasks: ${seen.length - 1} readiness answers of 503 before the first 200 (${seen.filter((line) => line.startsWith('503 catching')).length} catching up)\n`);
    } finally {
      await reader.close();
      await kafka.close();
    }
  });

  it('stays ready while Kafka is unreachable, with the consumer state in the body', async () => {
    const config = testConfig('health-no-kafka', { http: { port: await freePort() }, kafka: { brokers: [`127.0.0.1:${await freePort()}`] } });
    const service = await start(config);
    await service.waitForOutput(/ECONNREFUSED/);
    const ready = await health(config, 'ready');
    expect(ready.status).toBe(200);
    expect(ready.body.error).toEqual({});
    expect(PHASES).toContain(ready.body.details.kafka.phase);
    expect(ready.body.details.kafka.phase).not.toBe('consuming');
    process.stdout.write(`[measure] Kafka unreachable: ready ${ready.status}, kafka ${JSON.stringify(ready.body.details.kafka)}\n`);
  });

  it(`cuts off a client that trickles its headers for longer than ${HEADERS_TIMEOUT_MS} ms, with a 408`, async () => {
    const config = testConfig('health-slowloris', { http: { port: await freePort() } });
    await start(config);
    const socket = connect(config.http.port, '127.0.0.1');
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    const startedAt = Date.now();
    socket.write('GET /health/live HTTP/1.1\r\nHost: x\r\n');
    const trickle = setInterval(() => socket.writable && socket.write('X-Slow: y\r\n'), 500);
    // Bounded: a server that never cuts it off would hold the connection until the request timeout.
    const giveUp = setTimeout(() => socket.destroy(), HEADERS_TIMEOUT_MS + 10_000);
    try {
      await closed;
    } finally {
      clearInterval(trickle);
      clearTimeout(giveUp);
      socket.destroy();
    }
    process.stdout.write(`[measure] slow headers cut after ${Date.now() - startedAt} ms: ${answer.split('\r\n')[0]}\n`);
    expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 408 Request Timeout');
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS);
  });
});

describe('the drain on SIGTERM', () => {
  const DRAIN_MS = 3000;
  const TIMEOUT_MS = 10_000;
  let config: AppConfig;
  let service: ServiceProcess;
  let harness: ProjectionHarness;

  beforeAll(async () => {
    config = testConfig('drain', { http: { port: await freePort() }, lifecycle: { shutdownDrainMs: DRAIN_MS, shutdownTimeoutMs: TIMEOUT_MS } });
    harness = await ProjectionHarness.open(config.redis, config.redis.keyPrefix);
    await harness.projection.applyBatch([{ taskId: 'drain-task', value: sampleTaskBytes('drain-task'), partition: 0, offset: '1', timestamp: Date.now() }]);
    service = new ServiceProcess(serviceEnvironment(config));
    await service.waitForOutput(/task-cache listening on port/);
  });

  afterAll(async () => {
    await service?.stop();
    await harness?.close();
  });

  it('turns readiness 503 at once, keeps serving with Connection: close for the drain, then exits 0 within the bound', async () => {
    const base = `http://127.0.0.1:${config.http.port}`;
    const agent = new Agent({ keepAlive: true });
    try {
      await eventually('ready', async () => (await health(config, 'ready')).status === 200);
      const before = await httpGet(`${base}/tasks/drain-task`, AUTH, agent);
      expect(before.status).toBe(200);
      expect(before.headers.connection).toBe('keep-alive');

      const signalledAt = Date.now();
      service.signal('SIGTERM');
      await service.waitForOutput(/SIGTERM received/, 5000);
      const ready = await health(config, 'ready');
      const readyAtMs = Date.now() - signalledAt;
      expect(ready.status).toBe(503);
      expect(Object.keys(ready.body.error)).toEqual(['drain']);
      expect(ready.headers.connection).toBe('close');

      // Reads, and the framework's routes, keep being answered through the drain, each asking the
      // client to close its connection.
      const during: { atMs: number; status: number; connection?: string }[] = [];
      while (Date.now() - signalledAt < DRAIN_MS - 500) {
        for (const path of ['/tasks/drain-task', '/api/tasks/drain-task', '/health/live']) {
          const answer = await httpGet(`${base}${path}`, AUTH, agent);
          during.push({ atMs: Date.now() - signalledAt, status: answer.status, connection: answer.headers.connection });
        }
      }
      expect(during.length).toBeGreaterThan(3);
      expect(during.filter(({ status, connection }) => status !== 200 || connection !== 'close')).toEqual([]);
      expect(during.at(-1)!.atMs).toBeGreaterThanOrEqual(DRAIN_MS - 500);

      const exit = await service.exited;
      const exitedAtMs = Date.now() - signalledAt;
      process.stdout.write(
        `[measure] drain: ready 503 ${readyAtMs} ms after SIGTERM; ${during.length} requests during the drain, all 200 with Connection: close, the last at ${during.at(-1)!.atMs} ms; exited ${exit.code} after ${exitedAtMs} ms (drain ${DRAIN_MS}, bound ${TIMEOUT_MS})\n`,
      );
      expect(exit).toEqual({ code: 0, signal: null });
      expect(exitedAtMs).toBeGreaterThanOrEqual(DRAIN_MS);
      expect(exitedAtMs).toBeLessThan(TIMEOUT_MS);
      expect(service.lines(/kafka consumer stopped/)).toHaveLength(1);
      // Once the drain is over it accepts no connection.
      await expect(httpGet(`${base}/health/live`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    } finally {
      agent.destroy();
    }
  });
});
