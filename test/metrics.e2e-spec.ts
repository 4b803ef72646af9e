import { Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';
import { createApp } from '../src/app.factory.js';
import { AppConfig } from '../src/config/app-config.js';
import { MetricsServer } from '../src/metrics/metrics-server.js';
import { ProjectionKeys } from '../src/projection/projection-keys.js';
import { CapturedLogs } from './support/captured-logs.js';
import { eventually } from './support/eventually.js';
import { httpGet } from './support/http-get.js';
import { TEST_TOKEN, testConfig } from './support/infra.js';
import { untilConsuming } from './support/ingesting-app.js';
import { scrape, Scrape } from './support/metrics-scrape.js';
import { PrivateRedis } from './support/private-redis.js';
import { ProjectionReader } from './support/projection-reader.js';
import { sampleTaskBytes } from './support/sample-task.js';
import { TestKafka } from './support/test-kafka.js';

const READS = 'taskcache_read_duration_seconds_count';
const TASKS = '/tasks/{taskId}';
const API_TASKS = '/api/tasks/{taskId}';

/**
 * /metrics against real Kafka and a Redis of the suite's own (its writes are paused to hold ingest):
 * after known traffic each counter moves by exactly what that traffic should move it by; lag is
 * read while a backlog waits; freshness lands in the buckets its events' ages put it in.
 */
describe('metrics: Prometheus /metrics on METRICS_PORT', () => {
  let redis: PrivateRedis;
  let config: AppConfig;
  let app: INestApplication;
  let kafka: TestKafka;
  let reader: ProjectionReader;
  let publicUrl: string;
  let metricsPort: number;

  const metrics = () => scrape(metricsPort);
  const read = (path: string, headers: Record<string, string> = { 'X-Authorization': TEST_TOKEN }) => httpGet(`${publicUrl}${path}`, headers);

  /** Waits until the group has committed every partition of the source topic to its end: all consumed is handled. */
  async function untilHandled(): Promise<void> {
    const end = await kafka.endOffsets(config.kafka.topic);
    await eventually('every event to be handled and committed', async () => {
      const committed = await kafka.committedOffsets(config.kafka.groupId, config.kafka.topic);
      return [...end].every(([partition, offset]) => offset === 0 || committed.get(partition) === offset);
    });
  }

  beforeAll(async () => {
    redis = await PrivateRedis.start();
    config = testConfig('metrics', { redis: { url: redis.url }, kafka: { topicPartitions: 2 }, metrics: { port: 0 } });
    app = await createApp(config);
    app.useLogger(new CapturedLogs());
    await app.listen(0);
    await untilConsuming(app);
    publicUrl = `http://127.0.0.1:${((app.getHttpServer() as Server).address() as AddressInfo).port}`;
    metricsPort = app.get(MetricsServer).port!;
    kafka = await TestKafka.connect(config.kafka.brokers);
    reader = new ProjectionReader(config.redis);
  });

  afterAll(async () => {
    await app?.close();
    await kafka?.close();
    await reader?.close();
    await redis?.destroy();
  });

  it('serves /metrics on its own port only: not on the public port, nothing else on its port', async () => {
    const scraped = await metrics();
    expect(scraped.has('process_cpu_user_seconds_total')).toBe(true);
    expect(scraped.has('nodejs_eventloop_lag_seconds')).toBe(true);
    expect(String(metricsPort)).not.toBe(new URL(publicUrl).port);

    const onPublic = await read('/metrics', {});
    expect(onPublic.status).toBe(404);
    expect(onPublic.body).not.toContain('taskcache_');
    expect((await httpGet(`http://127.0.0.1:${metricsPort}/tasks/x`)).status).toBe(404);
    const post = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('reports the instance: Redis reachable, consuming, not draining, serving generation 1', async () => {
    const scraped = await metrics();
    expect(scraped.sum('taskcache_redis_up')).toBe(1);
    expect(scraped.sum('taskcache_ingest_phase', { phase: 'consuming' })).toBe(1);
    expect(scraped.sum('taskcache_ingest_phase')).toBe(1);
    expect(scraped.sum('taskcache_draining')).toBe(0);
    expect(scraped.sum('taskcache_projection_generation', { role: 'current' })).toBe(1);
    expect(scraped.has('taskcache_rebuild_phase')).toBe(false);
  });

  it('after known traffic, moves each counter by exactly the expected amount, and sees freshness in its histogram', async () => {
    const before = await metrics();
    const taskId = 'metrics-task';
    // A valid event, now: applied and fresh.
    await kafka.send(config.kafka.topic, [{ key: taskId, value: sampleTaskBytes(taskId, 1), partition: 0 }]);
    await eventually('the valid event to be projected', async () => (await reader.read([taskId])).has(taskId));
    // An invalid event: dead-lettered.
    await kafka.send(config.kafka.topic, [{ key: 'metrics-bad', value: Buffer.from('{not json'), partition: 1 }]);
    // A stale redelivery: the same task from the other partition, two minutes older than what is stored.
    await kafka.send(config.kafka.topic, [{ key: taskId, value: sampleTaskBytes(taskId, 0), partition: 1, timestamp: String(Date.now() - 120_000) }]);
    await untilHandled();
    expect((await reader.read([taskId])).get(taskId)!.partition).toBe(0);

    const etag = (await read(`/tasks/${taskId}`)).headers.etag!;
    expect((await read(`/tasks/${taskId}`)).status).toBe(200);
    expect((await read(`/api/tasks/${taskId}`, { 'X-Authorization': TEST_TOKEN, 'If-None-Match': etag })).status).toBe(304);
    expect((await read('/api/tasks/metrics-missing')).status).toBe(404);
    expect((await read('/tasks/bad%ZZ')).status).toBe(400);
    expect((await read(`/tasks/${taskId}`, { 'X-Authorization': 'not-a-token' })).status).toBe(401);
    expect((await read(`/tasks/${taskId}`, {})).status).toBe(401);
    expect((await read(`/tasks/${taskId}`, { Authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2ln' })).status).toBe(401);

    const after = await metrics();
    const moved = (name: string, labels: Record<string, string> = {}) => after.sum(name, labels) - before.sum(name, labels);
    expect({
      consumed: moved('taskcache_events_consumed_total'),
      applied: moved('taskcache_events_applied_total'),
      stale: moved('taskcache_events_stale_total'),
      deadLettered: moved('taskcache_events_dead_lettered_total'),
      deadLetteredInvalidJson: moved('taskcache_events_dead_lettered_total', { reason: 'INVALID_JSON' }),
      undeliverable: moved('taskcache_dead_letters_undeliverable_total'),
    }).toEqual({ consumed: 3, applied: 1, stale: 1, deadLettered: 1, deadLetteredInvalidJson: 1, undeliverable: 0 });
    expect({
      reads: moved(READS),
      ok: moved(READS, { route: TASKS, status: '200' }),
      notModified: moved(READS, { route: API_TASKS, status: '304' }),
      notFound: moved(READS, { route: API_TASKS, status: '404' }),
      badRequest: moved(READS, { route: TASKS, status: '400' }),
      unauthorized: moved(READS, { route: TASKS, status: '401' }),
    }).toEqual({ reads: 8, ok: 2, notModified: 1, notFound: 1, badRequest: 1, unauthorized: 3 });
    expect({
      all: moved('taskcache_auth_failures_total'),
      invalid: moved('taskcache_auth_failures_total', { reason: 'token_invalid' }),
      missing: moved('taskcache_auth_failures_total', { reason: 'token_missing' }),
    }).toEqual({ all: 3, invalid: 2, missing: 1 });
    // Freshness: the valid event was applied within seconds of being written, the stale one two minutes after.
    expect({
      observed: moved('taskcache_event_freshness_seconds_count'),
      within5s: moved('taskcache_event_freshness_seconds_bucket', { le: '5' }),
      within60s: moved('taskcache_event_freshness_seconds_bucket', { le: '60' }),
      within300s: moved('taskcache_event_freshness_seconds_bucket', { le: '300' }),
    }).toEqual({ observed: 2, within5s: 1, within60s: 1, within300s: 2 });
    expect(moved('taskcache_batch_apply_duration_seconds_count')).toBeGreaterThanOrEqual(2);
    expect(moved('taskcache_redis_command_errors_total')).toBe(0);
    // Read latency is a histogram: every read falls in some bucket, and +Inf holds them all.
    expect(moved('taskcache_read_duration_seconds_bucket', { route: TASKS, status: '200', le: '+Inf' })).toBe(2);
  });

  it('reports a backlog as lag while ingest is held, and 0 once it is applied', async () => {
    const before = await metrics();
    const admin = new Redis(redis.url);
    // Redis holds every write (the apply script included) while reads go on: ingest fetches the backlog and cannot apply it.
    await admin.call('CLIENT', 'PAUSE', '60000', 'WRITE');
    try {
      const backlog = Array.from({ length: 300 }, (_, index) => ({ key: `lag-${index}`, value: sampleTaskBytes(`lag-${index}`, 1), partition: 0 }));
      await kafka.send(config.kafka.topic, backlog);
      const held = await eventually('the lag gauge to show the backlog', async () => {
        const scraped = await metrics();
        return scraped.sum('taskcache_consumer_lag_messages', { partition: '0' }) === 300 ? scraped : undefined;
      });
      expect(held.sum('taskcache_consumer_lag_messages', { topic: config.kafka.topic })).toBe(300);
      expect(held.sum('taskcache_events_applied_total')).toBe(before.sum('taskcache_events_applied_total'));
      // The held apply times out against the command timeout, and says so.
      await eventually('an apply to fail', async () => (await metrics()).sum('taskcache_redis_command_errors_total', { operation: 'apply' }) > 0);
    } finally {
      await admin.call('CLIENT', 'UNPAUSE');
      admin.disconnect();
    }
    // Each event counts once, as applied or stale: the attempts Redis held and ran after the pause
    // changed the projection, and the retry that then succeeded found those events already there.
    const moved = (scraped: Scrape, name: string) => scraped.sum(name) - before.sum(name);
    const done = await eventually('the backlog to be handled and the lag to fall to 0', async () => {
      const scraped = await metrics();
      return scraped.sum('taskcache_consumer_lag_messages') === 0 && moved(scraped, 'taskcache_events_applied_total') + moved(scraped, 'taskcache_events_stale_total') === 300
        ? scraped
        : undefined;
    });
    expect(moved(done, 'taskcache_events_consumed_total')).toBe(300);
    expect((await reader.read(['lag-0', 'lag-299'])).size).toBe(2);
  });

  it("reports a rebuild's phase and progress as the generation pointer holds it", async () => {
    const admin = new Redis(redis.url);
    const pointer = new ProjectionKeys(config.redis.keyPrefix).generationPointer;
    const summary = { generation: 2, phase: 'replaying', percent: 40, updatedAt: Date.now() };
    await admin.hset(pointer, 'rebuild', JSON.stringify(summary));
    try {
      const scraped = await eventually('the instance to read the rebuild', async () => {
        const each = await metrics();
        return each.has('taskcache_rebuild_phase') ? each : undefined;
      });
      expect(scraped.sum('taskcache_rebuild_phase', { phase: 'replaying' })).toBe(1);
      expect(scraped.sum('taskcache_rebuild_phase')).toBe(1);
      expect(scraped.sum('taskcache_rebuild_progress_ratio', { generation: '2' })).toBeCloseTo(0.4);
    } finally {
      await admin.hdel(pointer, 'rebuild');
      admin.disconnect();
    }
  });

  it('reports Redis unreachable, and counts the reads that failed on it', async () => {
    const before = await metrics();
    await redis.kill();
    try {
      const down = await eventually('taskcache_redis_up to fall to 0', async () => {
        const scraped = await metrics();
        return scraped.sum('taskcache_redis_up') === 0 ? scraped : undefined;
      });
      expect(down.sum('taskcache_redis_up')).toBe(0);
      expect((await read('/tasks/metrics-task')).status).toBe(503);
      const after = await metrics();
      expect(after.sum(READS, { route: TASKS, status: '503' }) - before.sum(READS, { route: TASKS, status: '503' })).toBe(1);
      expect(after.sum('taskcache_redis_command_errors_total', { operation: 'read' }) - before.sum('taskcache_redis_command_errors_total', { operation: 'read' })).toBe(1);
    } finally {
      await redis.start();
    }
    await eventually('taskcache_redis_up to return to 1', async () => (await metrics()).sum('taskcache_redis_up') === 1);
  });

  it('parses as the Prometheus text format, each metric with HELP and TYPE', async () => {
    const { text } = await metrics();
    const described = new Set([...text.matchAll(/^# TYPE (\S+) (counter|gauge|histogram|summary)$/gm)].map((match) => match[1]));
    const helped = new Set([...text.matchAll(/^# HELP (\S+) /gm)].map((match) => match[1]));
    const families = new Set(Scrape.parse(text).samples.map((sample) => sample.name.replace(/_(bucket|sum|count)$/, '')));
    for (const family of families) {
      if (!family.startsWith('taskcache_')) continue;
      expect(described.has(family) || described.has(`${family}_bucket`)).toBe(true);
      expect(helped.has(family)).toBe(true);
    }
    expect([...families].filter((family) => family.startsWith('taskcache_')).length).toBeGreaterThanOrEqual(12);
  });
});
