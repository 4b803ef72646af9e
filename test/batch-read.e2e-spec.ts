import { once } from 'node:events';
import { Server } from 'node:http';
import { hostname } from 'node:os';
import { connect, createServer, Server as TcpServer, Socket } from 'node:net';
import { INestApplication } from '@nestjs/common';
import { Cluster, Redis } from 'ioredis';
import { createApp } from '../src/app.factory.js';
import { AppConfig } from '../src/config/app-config.js';
import { TaskCacheMetrics } from '../src/metrics/task-cache-metrics.js';
import { BATCH_READ_ANSWER_BUDGET_BYTES, BATCH_READ_BODY_LIMIT_BYTES, MAX_BATCH_READ_IDS } from '../src/tasks/batch-read-request.js';
import { eventually } from './support/eventually.js';
import { RawResponse, send } from './support/http-client.js';
import { TEST_TOKEN, testConfig } from './support/infra.js';
import { untilConsuming } from './support/ingesting-app.js';
import { sampleTask, sampleTaskBytes } from './support/sample-task.js';
import { TestKafka } from './support/test-kafka.js';
import { PrivateRedisServer, REDIS_MODE, redisClient, startPrivateRedis } from './support/test-redis.js';

const AUTH = { 'X-Authorization': TEST_TOKEN };
const BATCH = '/api/tasks/batch';
const INSTANCE = hostname();

// Pretty-printed, with non-ASCII text and a trailing newline: any parse and re-serialization on the
// way out would change these bytes.
const PRETTY = Buffer.from(`${JSON.stringify(sampleTask('batch-1', 1, { note: 'é ✓ \u2028 "quoted"' }), null, 2)}\n`);
const FOUND = ['batch-1', 'ns:batch.2_b-c', 'batch-3', '__proto__', 'constructor'];

const batch = (server: Server, body: unknown, headers: Record<string, string> = AUTH, contentType = 'application/json') =>
  send(server, 'post', BATCH, { 'Content-Type': contentType, ...headers }, typeof body === 'string' ? body : JSON.stringify(body));

const badRequest = (message: string) => ({ status: 400, message, instance: INSTANCE, retryable: false });

/** Calls of `command` Redis has served so far, over every master of a cluster, those made by scripts included. */
async function commandCalls(client: Redis | Cluster, command: string): Promise<number> {
  const nodes = client instanceof Cluster ? client.nodes('master') : [client];
  let calls = 0;
  for (const node of nodes) calls += Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(await node.info('commandstats'))?.[1] ?? 0);
  return calls;
}

/**
 * Reads by read-task-within.lua (the only caller of HSTRLEN) and HMGETs of their own (Redis counts
 * the script's HMGET too, one per script call) since `before`.
 */
async function readCalls(client: Redis | Cluster, before?: { scripted: number; hmget: number }) {
  const scripted = await commandCalls(client, 'hstrlen');
  const hmget = (await commandCalls(client, 'hmget')) - scripted;
  return before === undefined ? { scripted, hmget } : { scripted: scripted - before.scripted, hmget: hmget - before.hmget };
}

type BatchAnswer = { tasks: Record<string, unknown>; missing: string[]; unprocessed: string[] };

/** Forwards to Redis with `delayMs` added each way per chunk, in order: a far Redis, whose round trips are visible. */
class SlowLink {
  private constructor(
    private readonly server: TcpServer,
    private readonly sockets: Set<Socket>,
    readonly port: number,
  ) {}

  static async start(target: URL, delayMs: number): Promise<SlowLink> {
    const sockets = new Set<Socket>();
    const forward = (from: Socket, to: Socket) => from.on('data', (chunk: Buffer) => setTimeout(() => to.destroyed || to.write(chunk), delayMs));
    const server = createServer((client) => {
      const upstream = connect(Number(target.port), target.hostname);
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on('error', () => undefined);
        socket.on('close', () => sockets.delete(socket));
      }
      forward(client, upstream);
      forward(upstream, client);
      client.on('close', () => setTimeout(() => upstream.destroy(), delayMs));
      upstream.on('close', () => setTimeout(() => client.destroy(), delayMs));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return new SlowLink(server, sockets, (server.address() as { port: number }).port);
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.server.close();
    await once(this.server, 'close');
  }
}

describe('POST /api/tasks/batch on real Kafka and Redis', () => {
  let config: AppConfig;
  let app: INestApplication;
  let server: Server;
  let kafka: TestKafka;
  let redis: Redis | Cluster;
  /** Each found task's bytes as the single read serves them. */
  const single = new Map<string, Buffer>();

  beforeAll(async () => {
    config = testConfig('batch-read', { metrics: { port: 0 } });
    app = await createApp(config);
    await app.listen(0);
    await untilConsuming(app);
    server = app.getHttpServer() as Server;
    kafka = await TestKafka.connect(config.kafka.brokers);
    redis = redisClient(config.redis);
    await kafka.send(
      config.kafka.topic,
      FOUND.map((taskId) => ({ key: taskId, value: taskId === 'batch-1' ? PRETTY : sampleTaskBytes(taskId, 1) })),
    );
    for (const taskId of FOUND) {
      const response = await eventually(`${taskId} to be served`, async () => {
        const read = await send(server, 'get', `/api/tasks/${taskId}`, AUTH);
        return read.status === 200 && read;
      });
      single.set(taskId, response.body);
    }
  });

  afterAll(async () => {
    await app?.close();
    await kafka?.close();
    redis?.disconnect();
  });

  describe('200', () => {
    it("answers each task found with the single read's bytes, by id in request order, and the missing ids in request order, each once", async () => {
      const response = await batch(server, { taskIds: ['nope-1', 'batch-3', 'batch-1', 'nope-2', 'batch-3', 'ns:batch.2_b-c', 'nope-1'] });
      expect(response.status).toBe(200);
      expect(response.headers['content-type']).toBe('application/json');
      expect(response.headers['content-length']).toBe(String(response.body.length));
      const expected = Buffer.concat([
        Buffer.from('{"tasks":{"batch-3":'),
        single.get('batch-3')!,
        Buffer.from(',"batch-1":'),
        single.get('batch-1')!,
        Buffer.from(',"ns:batch.2_b-c":'),
        single.get('ns:batch.2_b-c')!,
        Buffer.from('},"missing":["nope-1","nope-2"],"unprocessed":[]}'),
      ]);
      expect(response.body.toString()).toBe(expected.toString());
      expect(response.body.equals(expected)).toBe(true);
      expect(single.get('batch-1')!.equals(PRETTY)).toBe(true);
    });

    it('accepts Authorization: Bearer, ignores other fields, and serves ids named like prototype members as ordinary ids', async () => {
      const response = await batch(server, '{"__proto__":{"taskIds":["x"]},"constructor":1,"taskIds":["__proto__","constructor","toString"]}', {
        Authorization: `Bearer ${TEST_TOKEN}`,
      });
      expect(response.status).toBe(200);
      const body = JSON.parse(response.body.toString()) as BatchAnswer;
      expect(Object.keys(body.tasks)).toEqual(['__proto__', 'constructor']);
      expect(Object.hasOwn(body.tasks, '__proto__')).toBe(true);
      expect(body.tasks.constructor).toEqual(JSON.parse(single.get('constructor')!.toString()));
      expect(body.missing).toEqual(['toString']);
    });

    it('answers an empty list with empty results', async () => {
      const response = await batch(server, { taskIds: [] });
      expect([response.status, response.body.toString()]).toEqual([200, '{"tasks":{},"missing":[],"unprocessed":[]}']);
    });

    it(`reads ${MAX_BATCH_READ_IDS} ids of 128 characters in a body under the limit`, async () => {
      const taskIds = [...FOUND, ...Array.from({ length: MAX_BATCH_READ_IDS - FOUND.length }, (_, i) => `m${i}`.padEnd(128, 'x'))];
      const body = JSON.stringify({ taskIds });
      expect(body.length).toBeLessThan(BATCH_READ_BODY_LIMIT_BYTES);
      const response = await batch(server, body);
      expect(response.status).toBe(200);
      const answer = response.json as BatchAnswer;
      expect(Object.keys(answer.tasks)).toEqual(FOUND);
      expect(answer.missing).toEqual(taskIds.slice(FOUND.length));
      expect(answer.unprocessed).toEqual([]);
    });

    it('reads each distinct id with one script call, and nothing more when every task fits its share: one round trip', async () => {
      const taskIds = [...FOUND, ...Array.from({ length: 95 }, (_, i) => `absent-${i}`)];
      const before = await readCalls(redis);
      expect((await batch(server, { taskIds: [...taskIds, ...taskIds] })).status).toBe(200);
      const calls = await readCalls(redis, before);
      expect(calls.scripted).toBe(taskIds.length);
      // No second round trip. The instance's own generation-pointer check (an HMGET every few seconds) may fall in between.
      expect(calls.hmget).toBeLessThanOrEqual(2);
    });
  });

  describe('400, 413, 415', () => {
    it.each([
      ['malformed JSON', '{"taskIds": [', 'Malformed JSON body'],
      ['JSON nested too deep', `{"taskIds":${'['.repeat(40)}${']'.repeat(40)}}`, 'JSON body nested deeper than 32 levels'],
      ['a body that is not an object', '["batch-1"]', 'The body must be a JSON object: {"taskIds": [...]}'],
      ['null', 'null', 'The body must be a JSON object: {"taskIds": [...]}'],
      ['taskIds missing', '{}', 'taskIds must be an array of taskIds'],
      ['taskIds only under __proto__', '{"__proto__":{"taskIds":["batch-1"]}}', 'taskIds must be an array of taskIds'],
      ['taskIds not an array', '{"taskIds":"batch-1"}', 'taskIds must be an array of taskIds'],
      ['an element not a string', '{"taskIds":["batch-1",7]}', 'taskIds[1] must be a string'],
      ['an invalid taskId', JSON.stringify({ taskIds: ['batch-1', 'batch-3', `bad id ${'z'.repeat(500)}`] }), 'taskIds[2] is not a valid taskId: expected 1 to 128 characters of A-Z a-z 0-9 _ . : -'],
      ['a taskId over 128 characters', JSON.stringify({ taskIds: ['x'.repeat(129)] }), 'taskIds[0] is not a valid taskId: expected 1 to 128 characters of A-Z a-z 0-9 _ . : -'],
      ['too many ids', JSON.stringify({ taskIds: Array.from({ length: MAX_BATCH_READ_IDS + 1 }, () => 'batch-1') }), `taskIds holds ${MAX_BATCH_READ_IDS + 1} ids; at most ${MAX_BATCH_READ_IDS} per request`],
    ])('400 for %s, saying what is wrong without echoing values', async (_what, body, message) => {
      const response = await batch(server, body);
      expect(response.status).toBe(400);
      expect(response.json).toStrictEqual(badRequest(message));
    });

    it('413 for a body over the limit, 415 for one that is not JSON', async () => {
      const tooLarge = await batch(server, JSON.stringify({ taskIds: ['batch-1'], padding: 'p'.repeat(BATCH_READ_BODY_LIMIT_BYTES) }));
      expect(tooLarge.json).toStrictEqual({ status: 413, message: `Body larger than ${BATCH_READ_BODY_LIMIT_BYTES} bytes`, instance: INSTANCE, retryable: false });
      const notJson = await batch(server, 'taskIds=batch-1', AUTH, 'text/plain');
      expect(notJson.json).toStrictEqual({ status: 415, message: 'Content-Type must be application/json', instance: INSTANCE, retryable: false });
    });
  });

  describe('401', () => {
    it('refuses a missing or wrong token before reading the body', async () => {
      for (const headers of [{}, { 'X-Authorization': 'wrong' }, { Authorization: 'Bearer wrong' }] as Record<string, string>[]) {
        for (const body of ['{"taskIds":["batch-1"]}', '{"taskIds": [', 'x'.repeat(BATCH_READ_BODY_LIMIT_BYTES + 1)]) {
          const response = await batch(server, body, headers);
          expect(response.status).toBe(401);
          expect(response.json).toMatchObject({ status: 401, retryable: false });
        }
      }
    });
  });

  describe('metrics', () => {
    it('times every batch read by status and sizes the valid ones', async () => {
      const metrics = app.get(TaskCacheMetrics);
      const { values: durations } = await metrics.batchReadDuration.get();
      const count = (status: string) => durations.find((value) => value.metricName === 'taskcache_batch_read_duration_seconds_count' && value.labels.status === status)?.value;
      expect([count('200'), count('400'), count('401'), count('413'), count('415')]).toEqual([
        expect.any(Number),
        expect.any(Number),
        9,
        1,
        1,
      ]);
      const { values: sizes } = await metrics.batchReadSize.get();
      const bucket = (le: number) => sizes.find((value) => value.metricName === 'taskcache_batch_read_size_bucket' && value.labels.le === le)?.value;
      // Five valid reads: 4 ids, 3, none, 1,000 and 100; so one at most 1, four at most 100.
      expect([bucket(1), bucket(100), bucket(1000)]).toEqual([1, 4, 5]);
      const { values: unprocessed } = await metrics.batchReadUnprocessed.get();
      expect(unprocessed).toEqual([expect.objectContaining({ value: 0 })]);
    });
  });

  describe('an answer past its budget', () => {
    // 40 tasks of about 600 KiB: 24 MiB asked for, 16 MiB answered. Each is over its share of the
    // budget (16 MiB / 42 ids), so round trip 1 measures them and round trip 2 fetches those that fit.
    const LARGE = Array.from({ length: 40 }, (_, i) => `large-${i}`);
    const PAD = 600 * 1024;
    const large = new Map<string, Buffer>();

    beforeAll(async () => {
      // One event per request: a record batch of several would pass the broker's 1 MB default.
      for (const taskId of LARGE) await kafka.sendOne(config.kafka.topic, { key: taskId, value: sampleTaskBytes(taskId, 1, { outputData: { pad: 'p'.repeat(PAD) } }) });
      for (const taskId of LARGE) {
        const response = await eventually(`${taskId} to be served`, async () => {
          const read = await send(server, 'get', `/api/tasks/${taskId}`, AUTH);
          return read.status === 200 && read;
        });
        large.set(taskId, response.body);
      }
    });

    it('answers the large tasks in request order up to the budget, the rest as unprocessed; the small ones fit in round trip 1', async () => {
      const metrics = app.get(TaskCacheMetrics);
      const taskIds = [...LARGE, 'nope-1', 'batch-3'];
      const before = await readCalls(redis);
      const response = await batch(server, { taskIds });
      const calls = await readCalls(redis, before);
      expect(response.status).toBe(200);
      const answer = response.json as BatchAnswer;

      const size = large.get(LARGE[0])!.length;
      const fitting = Math.floor((BATCH_READ_ANSWER_BUDGET_BYTES - single.get('batch-3')!.length) / size);
      expect(size).toBeGreaterThan(PAD);
      expect(fitting).toBeGreaterThan(20);
      expect(fitting).toBeLessThan(LARGE.length);
      expect(Object.keys(answer.tasks)).toEqual([...LARGE.slice(0, fitting), 'batch-3']);
      expect(answer.missing).toEqual(['nope-1']);
      expect(answer.unprocessed).toEqual(LARGE.slice(fitting));
      // The tasks' bytes, as the single read serves them, in at most the budget.
      const expected = Buffer.concat([
        Buffer.from('{"tasks":{'),
        ...[...LARGE.slice(0, fitting), 'batch-3'].flatMap((taskId, i) => [Buffer.from(`${i === 0 ? '' : ','}${JSON.stringify(taskId)}:`), large.get(taskId) ?? single.get(taskId)!]),
        Buffer.from(`},"missing":["nope-1"],"unprocessed":${JSON.stringify(LARGE.slice(fitting))}}`),
      ]);
      expect(response.body.equals(expected)).toBe(true);
      expect(fitting * size + single.get('batch-3')!.length).toBeLessThanOrEqual(BATCH_READ_ANSWER_BUDGET_BYTES);
      // Round trip 1: a script call per id; round trip 2: an HMGET per large task answered (the pointer check aside).
      expect(calls.scripted).toBe(taskIds.length);
      expect(calls.hmget).toBeGreaterThanOrEqual(fitting);
      expect(calls.hmget).toBeLessThanOrEqual(fitting + 2);
      const { values } = await metrics.batchReadUnprocessed.get();
      expect(values).toEqual([expect.objectContaining({ value: LARGE.length - fitting })]);

      // Asked for again, the unprocessed ones are answered, with the same bytes.
      const again = await batch(server, { taskIds: answer.unprocessed });
      expect(again.status).toBe(200);
      const rest = again.json as BatchAnswer;
      expect([Object.keys(rest.tasks), rest.missing, rest.unprocessed]).toEqual([answer.unprocessed, [], []]);
      const restExpected = Buffer.concat([
        Buffer.from('{"tasks":{'),
        ...answer.unprocessed.flatMap((taskId, i) => [Buffer.from(`${i === 0 ? '' : ','}${JSON.stringify(taskId)}:`), large.get(taskId)!]),
        Buffer.from('},"missing":[],"unprocessed":[]}'),
      ]);
      expect(again.body.equals(restExpected)).toBe(true);
    });

    it('answers a large task asked for alone in one round trip: its share is the whole budget', async () => {
      const before = await readCalls(redis);
      const response = await batch(server, { taskIds: [LARGE[0]] });
      const calls = await readCalls(redis, before);
      expect(response.status).toBe(200);
      expect(calls.scripted).toBe(1);
      expect(calls.hmget).toBeLessThanOrEqual(2);
      expect(response.body.equals(Buffer.concat([Buffer.from(`{"tasks":{"${LARGE[0]}":`), large.get(LARGE[0])!, Buffer.from('},"missing":[],"unprocessed":[]}')]))).toBe(true);
    });
  });
});

describe('POST /api/tasks/batch with Redis unreachable (a private Redis, killed)', () => {
  let redis: PrivateRedisServer;
  let app: INestApplication;
  let server: Server;

  beforeAll(async () => {
    redis = await startPrivateRedis();
    app = await createApp(testConfig('batch-read-outage', { redis: redis.config }));
    await app.listen(0);
    await untilConsuming(app);
    server = app.getHttpServer() as Server;
    await eventually('reads to be served', async () => (await batch(server, { taskIds: ['a'] })).status === 200);
    await redis.kill();
  });

  afterAll(async () => {
    await app?.close();
    await redis?.destroy();
  });

  it('answers 503, retryable, within a second', async () => {
    const started = performance.now();
    const response = await batch(server, { taskIds: ['a', 'b', 'c'] });
    expect(performance.now() - started).toBeLessThan(1000);
    expect(response.status).toBe(503);
    expect(response.json).toStrictEqual({ status: 503, message: 'Task store unavailable; retry later', instance: INSTANCE, retryable: true });
  });

  it('still checks the token and the body first', async () => {
    expect((await batch(server, { taskIds: ['a'] }, {})).status).toBe(401);
    expect((await batch(server, { taskIds: [7] })).status).toBe(400);
  });
});

// A far Redis makes round trips visible: 100 ids in one cost one, as a single read does. Standalone
// only: a cluster's clients follow the nodes' own addresses, past any proxy.
(REDIS_MODE === 'standalone' ? describe : describe.skip)('POST /api/tasks/batch across a slow link to Redis', () => {
  const DELAY_MS = 100;
  let link: SlowLink;
  let app: INestApplication;
  let server: Server;

  beforeAll(async () => {
    const base = testConfig('batch-read-slow');
    link = await SlowLink.start(new URL(base.redis.url), DELAY_MS);
    app = await createApp({ ...base, redis: { ...base.redis, url: `redis://127.0.0.1:${link.port}`, commandTimeoutMs: 5000 } });
    await app.listen(0);
    await untilConsuming(app);
    server = app.getHttpServer() as Server;
  });

  afterAll(async () => {
    await app?.close();
    await link?.close();
  });

  const timed = async (request: () => Promise<RawResponse>) => {
    const started = performance.now();
    const response = await request();
    expect(response.status).toBe(200);
    return performance.now() - started;
  };

  it('reads 100 ids in one round trip', async () => {
    await eventually('reads to be served', async () => (await batch(server, { taskIds: ['warm-up'] })).status === 200);
    const taskIds = Array.from({ length: 100 }, (_, i) => `slow-${i}`);
    const elapsed = await timed(() => batch(server, { taskIds }));
    // One round trip is 2 × 100 ms; two would be 400 ms, 100 sequential ones 20 s.
    expect(elapsed).toBeGreaterThanOrEqual(2 * DELAY_MS - 5);
    expect(elapsed).toBeLessThan(4 * DELAY_MS);
  });
});
