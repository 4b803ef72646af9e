import { readFileSync } from 'node:fs';
import { Server } from 'node:http';
import { join } from 'node:path';
import { INestApplication } from '@nestjs/common';
import type { OpenAPIObject } from '@nestjs/swagger';
import { SignJWT } from 'jose';
import { createApp } from '../src/app.factory.js';
import { AppConfig } from '../src/config/app-config.js';
import { eventually } from './support/eventually.js';
import { RawResponse, send } from './support/http-client.js';
import { ROOT, TEST_TOKEN, testConfig } from './support/infra.js';
import { untilConsuming } from './support/ingesting-app.js';
import { OpenApiContract } from './support/openapi-contract.js';
import { sampleTaskBytes } from './support/sample-task.js';
import { TestKafka } from './support/test-kafka.js';
import { PrivateRedisServer, startPrivateRedis } from './support/test-redis.js';

// Real responses held against the OpenAPI document the service serves: every status documented,
// every body valid by its schema, every documented header present, and every documented answer
// given by some real request here, so the document can keep no dead entry.

const KEY_ID = 'openapi-app';
const KEY_SECRET = 'openapi-app-secret';
const JWT_SECRET = 'openapi-e2e-jwt-secret-0123456789-abcdef';
const AUTH = { 'X-Authorization': TEST_TOKEN };
const TASK_ID = 'openapi-task-1';
const READ_PATHS = (taskId: string) => [`/tasks/${taskId}`, `/api/tasks/${taskId}`];
const READ_METHODS = ['get', 'head'] as const;

describe('the OpenAPI document against real responses', () => {
  let config: AppConfig;
  let app: INestApplication;
  let server: Server;
  /** Static tokens only, missing tasks as 204, on a Redis of its own that the suite takes down. */
  let redis: PrivateRedisServer;
  let otherApp: INestApplication;
  let otherServer: Server;
  let kafka: TestKafka;
  let contract: OpenApiContract;

  /** Checks a real response against the document, and returns it. */
  const expectDocumented = (method: 'get' | 'head' | 'post', path: string, response: RawResponse): RawResponse => {
    expect([method, path, response.status, contract.problems(method, path, response)]).toEqual([method, path, response.status, []]);
    return response;
  };
  const read = async (target: Server, method: 'get' | 'head', path: string, headers: Record<string, string> = AUTH) =>
    expectDocumented(method, path, await send(target, method, path, headers));
  const postToken = async (target: Server, body: string, contentType = 'application/json') =>
    expectDocumented('post', '/api/token', await send(target, 'post', '/api/token', { 'Content-Type': contentType }, body));
  const postBatch = async (target: Server, body: string, headers: Record<string, string> = AUTH, contentType = 'application/json') =>
    expectDocumented('post', '/api/tasks/batch', await send(target, 'post', '/api/tasks/batch', { 'Content-Type': contentType, ...headers }, body));
  const health = async (target: Server, which: 'live' | 'ready') => expectDocumented('get', `/health/${which}`, await send(target, 'get', `/health/${which}`));

  beforeAll(async () => {
    config = testConfig('openapi', { auth: { keys: new Map([[KEY_ID, KEY_SECRET]]), jwtSecret: JWT_SECRET } });
    app = await createApp(config);
    await app.listen(0);
    redis = await startPrivateRedis();
    otherApp = await createApp(testConfig('openapi-204', { redis: redis.config, http: { missingTaskStatus: 204 } }));
    await otherApp.listen(0);
    // Closing while topics are still being created would leave a Kafka request behind the suite.
    await untilConsuming(app);
    await untilConsuming(otherApp);
    server = app.getHttpServer() as Server;
    otherServer = otherApp.getHttpServer() as Server;
    kafka = await TestKafka.connect(config.kafka.brokers);

    const served = await send(server, 'get', '/api-docs-json');
    expect([served.status, served.headers['content-type']]).toEqual([200, 'application/json; charset=utf-8']);
    contract = new OpenApiContract(served.json as OpenAPIObject);
  });

  afterAll(async () => {
    await app?.close();
    await otherApp?.close();
    await kafka?.close();
    await redis?.destroy();
  });

  describe('serving', () => {
    it("serves the document without a token, with the service's version", () => {
      const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
      expect(contract.document.openapi).toMatch(/^3\.0\./);
      expect(contract.document.info).toMatchObject({ title: 'task-cache', version });
    });

    it('serves Swagger UI without a token, and every asset its page loads', async () => {
      for (const page of ['/api-docs', '/api-docs/']) {
        const html = await send(server, 'get', page);
        expect([page, html.status, html.headers['content-type']]).toEqual([page, 200, 'text/html; charset=utf-8']);
        const assets = [...html.body.toString().matchAll(/(?:href|src)=["']([^"']+)["']/g)].map(([, ref]) => new URL(ref, `http://service${page}`).pathname);
        expect(assets).toEqual(
          expect.arrayContaining(['/api-docs/swagger-ui.css', '/api-docs/swagger-ui-bundle.js', '/api-docs/swagger-ui-standalone-preset.js', '/api-docs/swagger-ui-init.js']),
        );
        for (const asset of assets) {
          const response = await send(server, 'get', asset);
          const type = asset.endsWith('.css') ? /^text\/css/ : asset.endsWith('.js') ? /javascript/ : /^image\/png/;
          expect([asset, response.status, type.test(response.headers['content-type'])]).toEqual([asset, 200, true]);
          expect(response.body.length).toBeGreaterThan(0);
        }
      }
      // The page's script carries the document itself.
      const init = await send(server, 'get', '/api-docs/swagger-ui-init.js');
      expect(init.body.toString()).toContain('"/api/tasks/{taskId}"');
    });
  });

  describe('the task read', () => {
    it('200 for a task produced through Kafka, with its ETag and as application/json; 304 with If-None-Match; GET and HEAD under both paths', async () => {
      await kafka.send(config.kafka.topic, [{ key: TASK_ID, value: sampleTaskBytes(TASK_ID, 1) }]);
      const first = await eventually('the produced task to be served', async () => {
        const response = await send(server, 'get', `/api/tasks/${TASK_ID}`, AUTH);
        return response.status === 200 && response;
      });
      expect(first.headers['content-type']).toBe('application/json');
      for (const path of READ_PATHS(TASK_ID)) {
        for (const method of READ_METHODS) {
          const ok = await read(server, method, path);
          expect([ok.status, ok.headers.etag]).toEqual([200, first.headers.etag]);
          const notModified = await read(server, method, path, { ...AUTH, 'If-None-Match': first.headers.etag });
          expect(notModified.status).toBe(304);
        }
      }
    });

    it('watches (Prefer: wait): 200 at once for a client behind, 304 and 404 with Preference-Applied when the wait ends, GET and HEAD under both paths', async () => {
      const current = await read(server, 'get', `/api/tasks/${TASK_ID}`);
      const each = (taskId: string, headers: Record<string, string>) =>
        Promise.all(READ_PATHS(taskId).flatMap((path) => READ_METHODS.map(async (method) => {
          const answer = await read(server, method, path, { ...AUTH, ...headers });
          return [answer.status, answer.headers['preference-applied']];
        })));
      // Held at once, side by side: the waits run together.
      const [behind, unchanged, missing] = await Promise.all([
        each(TASK_ID, { 'If-None-Match': '"0-0"', Prefer: 'wait=1' }),
        each(TASK_ID, { 'If-None-Match': current.headers.etag!, Prefer: 'wait=1' }),
        each('openapi-never-there', { Prefer: 'wait=1' }),
      ]);
      expect(behind).toEqual(Array(4).fill([200, 'wait=1']));
      expect(unchanged).toEqual(Array(4).fill([304, 'wait=1']));
      expect(missing).toEqual(Array(4).fill([404, 'wait=1']));
    });

    it('400 for a malformed taskId', async () => {
      for (const path of READ_PATHS('bad%20id')) {
        for (const method of READ_METHODS) expect((await read(server, method, path)).status).toBe(400);
      }
    });

    it('401 without a token, with a wrong one and with an expired JWT, each with its token error code', async () => {
      const expired = await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuer('task-cache')
        .setSubject(KEY_ID)
        .setIssuedAt()
        .setExpirationTime(Math.floor(Date.now() / 1000) - 10)
        .sign(new TextEncoder().encode(JWT_SECRET));
      const refusals = [
        [{}, 'INVALID_TOKEN'],
        [{ 'X-Authorization': 'not-a-token' }, 'INVALID_TOKEN'],
        [{ Authorization: 'Bearer not-a-token' }, 'INVALID_TOKEN'],
        [{ 'X-Authorization': expired }, 'EXPIRED_TOKEN'],
      ] as const;
      for (const path of READ_PATHS(TASK_ID)) {
        for (const method of READ_METHODS) {
          for (const [headers, code] of refusals) {
            const response = await read(server, method, path, headers);
            expect(response.status).toBe(401);
            if (method === 'get') expect((response.json as { error: string }).error).toBe(code);
          }
        }
      }
    });

    it('404 for a task that is not there', async () => {
      for (const path of READ_PATHS('no-such-task')) {
        for (const method of READ_METHODS) expect((await read(server, method, path)).status).toBe(404);
      }
    });

    it('204 for a task that is not there, with READ_MISSING_TASK_STATUS=204', async () => {
      for (const path of READ_PATHS('no-such-task')) {
        for (const method of READ_METHODS) expect((await read(otherServer, method, path)).status).toBe(204);
      }
    });
  });

  describe('POST /api/tasks/batch', () => {
    it('200 with the tasks found and the ids missing', async () => {
      const response = await postBatch(server, JSON.stringify({ taskIds: [TASK_ID, 'no-such-task'] }));
      expect(response.status).toBe(200);
      const answer = response.json as { tasks: object; missing: string[]; unprocessed: string[] };
      expect([Object.keys(answer.tasks), answer.missing, answer.unprocessed]).toEqual([[TASK_ID], ['no-such-task'], []]);
    });

    it('400 for a malformed body or a bad taskId, 401 without a token', async () => {
      for (const body of ['{"taskIds": [', '{}', '{"taskIds":["bad id"]}']) expect((await postBatch(server, body)).status).toBe(400);
      expect((await postBatch(server, JSON.stringify({ taskIds: [TASK_ID] }), {})).status).toBe(401);
    });

    it('413 for a body over the limit, 415 for one that is not JSON', async () => {
      expect((await postBatch(server, JSON.stringify({ taskIds: [TASK_ID], padding: 'p'.repeat(300_000) }))).status).toBe(413);
      expect((await postBatch(server, 'taskIds=a', AUTH, 'text/plain')).status).toBe(415);
    });
  });

  describe('POST /api/token', () => {
    it('200 with a token for a valid key', async () => {
      const response = await postToken(server, JSON.stringify({ keyId: KEY_ID, keySecret: KEY_SECRET }));
      expect(response.status).toBe(200);
      // The token it documents reads.
      const { token } = response.json as { token: string };
      expect((await read(server, 'get', `/tasks/${TASK_ID}`, { Authorization: `Bearer ${token}` })).status).toBe(200);
    });

    it('400 for a malformed body, and for missing or mistyped fields', async () => {
      for (const body of ['{"keyId": ', '{}', JSON.stringify({ keyId: KEY_ID, keySecret: 12345 })]) {
        expect((await postToken(server, body)).status).toBe(400);
      }
    });

    it('401 for a wrong secret', async () => {
      expect((await postToken(server, JSON.stringify({ keyId: KEY_ID, keySecret: 'wrong' }))).status).toBe(401);
    });

    it('413 for a body over the limit, 415 for one that is not JSON', async () => {
      expect((await postToken(server, JSON.stringify({ keyId: KEY_ID, keySecret: 'x'.repeat(5000) }))).status).toBe(413);
      expect((await postToken(server, 'keyId=a', 'application/x-www-form-urlencoded')).status).toBe(415);
    });

    it('404 when token issuing is off (no access keys)', async () => {
      expect((await postToken(otherServer, JSON.stringify({ keyId: KEY_ID, keySecret: KEY_SECRET }))).status).toBe(404);
    });
  });

  describe('health', () => {
    it('live 200, ready 200', async () => {
      expect((await health(server, 'live')).status).toBe(200);
      await eventually('ready', async () => (await send(server, 'get', '/health/ready')).status === 200);
      expect((await health(server, 'ready')).status).toBe(200);
    });
  });

  describe('with Redis unreachable', () => {
    beforeAll(async () => {
      await redis.kill();
    });

    it('503 for a read, retryable', async () => {
      for (const path of READ_PATHS(TASK_ID)) {
        for (const method of READ_METHODS) {
          const response = await read(otherServer, method, path);
          expect(response.status).toBe(503);
          if (method === 'get') expect((response.json as { retryable: boolean }).retryable).toBe(true);
        }
      }
    });

    it('503 for a batch read, retryable', async () => {
      const response = await postBatch(otherServer, JSON.stringify({ taskIds: [TASK_ID] }));
      expect([response.status, (response.json as { retryable: boolean }).retryable]).toEqual([503, true]);
    });

    it('ready 503 naming redis, live still 200', async () => {
      await eventually('ready to turn 503', async () => (await send(otherServer, 'get', '/health/ready')).status === 503);
      const ready = await health(otherServer, 'ready');
      expect([ready.status, Object.keys((ready.json as { error: object }).error)]).toEqual([503, ['redis']]);
      expect((await health(otherServer, 'live')).status).toBe(200);
    });
  });

  describe('the check itself', () => {
    let task: RawResponse;

    beforeAll(async () => {
      task = await send(server, 'get', `/tasks/${TASK_ID}`, AUTH);
      expect(task.status).toBe(200);
    });

    it('fails a task whose status is not one of the statuses, or of the wrong type', () => {
      for (const status of [42, 'DONE', null]) {
        const body = Buffer.from(JSON.stringify({ ...(task.json as object), status }));
        const problems = contract.problems('get', `/tasks/${TASK_ID}`, { ...task, body });
        expect(problems.length).toBeGreaterThan(0);
        expect(problems.filter((problem) => !problem.startsWith('GET /tasks/{taskId} 200: body/status must be'))).toEqual([]);
      }
      const mistyped = Buffer.from(JSON.stringify({ ...(task.json as object), retryCount: '0', inputData: [] }));
      expect(contract.problems('get', `/tasks/${TASK_ID}`, { ...task, body: mistyped })).toHaveLength(2);
    });

    it('fails a batch answer without its unprocessed ids, or with one that is not a taskId', () => {
      const answer = (body: object) => ({ status: 200, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(body)) });
      expect(contract.problems('post', '/api/tasks/batch', answer({ tasks: {}, missing: [], unprocessed: ['a'] }))).toEqual([]);
      expect(contract.problems('post', '/api/tasks/batch', answer({ tasks: {}, missing: [] })).length).toBeGreaterThan(0);
      expect(contract.problems('post', '/api/tasks/batch', answer({ tasks: {}, missing: [], unprocessed: ['bad id'] })).length).toBeGreaterThan(0);
    });

    it('fails a missing or malformed ETag, another Content-Type, an error body without its fields, and an undocumented status', () => {
      const { etag, ...withoutEtag } = task.headers;
      expect(contract.problems('get', `/tasks/${TASK_ID}`, { ...task, headers: withoutEtag })).toEqual([expect.stringContaining('header ETag is missing')]);
      expect(contract.problems('get', `/tasks/${TASK_ID}`, { ...task, headers: { ...task.headers, etag: etag.slice(1, -1) } })).toEqual([
        expect.stringContaining('header ETag must match pattern'),
      ]);
      expect(contract.problems('get', `/tasks/${TASK_ID}`, { ...task, headers: { ...task.headers, 'preference-applied': 'wait=soon' } })).toEqual([
        expect.stringContaining('header Preference-Applied must match pattern'),
      ]);
      expect(contract.problems('get', `/tasks/${TASK_ID}`, { ...task, headers: { ...task.headers, 'content-type': 'text/html' } })).toEqual([
        expect.stringContaining('Content-Type text/html'),
      ]);
      const nestError = { status: 401, headers: { 'content-type': 'application/json' }, body: Buffer.from('{"statusCode":401,"message":"Unauthorized"}') };
      expect(contract.problems('get', `/tasks/${TASK_ID}`, nestError).length).toBeGreaterThan(0);
      const wrongStatus = { ...nestError, body: Buffer.from(JSON.stringify({ status: 404, message: 'm', instance: 'i', retryable: false, error: 'INVALID_TOKEN' })) };
      expect(contract.problems('get', `/tasks/${TASK_ID}`, wrongStatus)).toEqual([expect.stringContaining('body/status must be equal to one of the allowed values')]);
      expect(contract.problems('get', `/tasks/${TASK_ID}`, { ...task, status: 500 })).toEqual(['GET /tasks/{taskId} 500 is not documented']);
      expect(contract.problems('post', `/tasks/${TASK_ID}`, task)).toEqual(['POST /tasks/{taskId} is not documented']);
    });
  });

  // Last: the requests above are what answered.
  describe('no dead entries', () => {
    it('every operation and status the document lists was answered by a real request above', () => {
      expect(contract.documentedAnswers.length).toBeGreaterThan(30);
      expect(contract.unanswered()).toEqual([]);
    });
  });
});
