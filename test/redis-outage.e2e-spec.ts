import { Server } from 'node:http';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { INestApplication } from '@nestjs/common';
import { createApp } from '../src/app.factory.js';
import { TaskProjection } from '../src/projection/task-projection.js';
import { send } from './support/http-client.js';
import { untilConsuming } from './support/ingesting-app.js';
import { TEST_TOKEN, testConfig } from './support/infra.js';
import { PrivateRedisServer, startPrivateRedis } from './support/test-redis.js';

const AUTH = { 'X-Authorization': TEST_TOKEN };
const TASK = { taskId: 't-outage', value: Buffer.from('{"taskId":"t-outage"}'), partition: 1, offset: '3', timestamp: Date.now() };

describe('reads while Redis is down (a private redis-server, or a private cluster in cluster mode, stopped and restarted)', () => {
  let redis: PrivateRedisServer;
  let app: INestApplication;
  let server: Server;

  beforeAll(async () => {
    redis = await startPrivateRedis();
    app = await createApp(testConfig('outage', { redis: redis.config }));
    await app.listen(0);
    // Closing while topics are still being created would leave a Kafka request behind the suite.
    await untilConsuming(app);
    server = app.getHttpServer() as Server;
    await app.get(TaskProjection).applyBatch([TASK]);
  });

  afterAll(async () => {
    await app?.close();
    await redis?.destroy();
  });

  it('reads while Redis is up', async () => {
    expect((await send(server, 'get', '/tasks/t-outage', AUTH)).status).toBe(200);
  });

  it('answers 503, retryable, within a second (not after a client timeout) once Redis is gone', async () => {
    await redis.kill();
    for (const path of ['/tasks/t-outage', '/api/tasks/another-task']) {
      const started = performance.now();
      const response = await send(server, 'get', path, AUTH);
      const elapsedMs = performance.now() - started;
      expect(response.status).toBe(503);
      expect(response.headers['content-type']).toBe('application/json');
      expect(response.json).toStrictEqual({
        status: 503,
        message: 'Task store unavailable; retry later',
        instance: hostname(),
        retryable: true,
      });
      expect(elapsedMs).toBeLessThan(1000);
    }
  });

  it('still checks the token first while Redis is down', async () => {
    expect((await send(server, 'get', '/tasks/t-outage', { 'X-Authorization': 'wrong' })).status).toBe(401);
  });

  it('serves again once Redis is back', async () => {
    await redis.start();
    // The client reconnects with backoff (at most 2 s apart); the restarted server is empty.
    const deadline = Date.now() + 15_000;
    let status = 503;
    while (status === 503 && Date.now() < deadline) {
      status = (await send(server, 'get', '/tasks/t-outage', AUTH)).status;
      if (status === 503) await sleep(100);
    }
    expect(status).toBe(404);
    await app.get(TaskProjection).applyBatch([TASK]);
    expect((await send(server, 'get', '/tasks/t-outage', AUTH)).status).toBe(200);
  });
});
