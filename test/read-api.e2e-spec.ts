import { Server } from 'node:http';
import { hostname } from 'node:os';
import { jest } from '@jest/globals';
import { INestApplication } from '@nestjs/common';
import { SignJWT } from 'jose';
import { createApp } from '../src/app.factory.js';
import { TaskEvent } from '../src/projection/task-event.js';
import { TaskProjection } from '../src/projection/task-projection.js';
import { send } from './support/http-client.js';
import { TEST_TOKEN, testConfig } from './support/infra.js';
import { untilConsuming } from './support/ingesting-app.js';
import { LogTap } from './support/log-tap.js';
import { sampleTask } from './support/sample-task.js';

const KEY_ID = 'reader-app';
const KEY_SECRET = 'reader-app-secret';
const JWT_SECRET = 'e2e-jwt-secret-0123456789-abcdefghij';
const INSTANCE = hostname();
const AUTH = { 'X-Authorization': TEST_TOKEN };

// Pretty-printed, with non-ASCII text and a trailing newline: any parse and re-serialization
// on the way out would change these bytes.
const STORED = Buffer.from(`${JSON.stringify(sampleTask('task-e2e-1', 3, { note: 'é ✓ \u2028 "quoted"' }), null, 2)}\n`);

const event = (taskId: string, value: Buffer, offset: number, partition = 2): TaskEvent => ({
  taskId,
  value,
  partition,
  offset: String(offset),
  timestamp: Date.now(),
});

const errorBody = (status: number, message: string, extra: Record<string, unknown> = {}) => ({
  status,
  message,
  instance: INSTANCE,
  retryable: false,
  ...extra,
});

const sign = (claims: { exp: number }, secret = JWT_SECRET, alg = 'HS256') =>
  new SignJWT({}).setProtectedHeader({ alg }).setIssuer('task-cache').setSubject(KEY_ID).setIssuedAt().setExpirationTime(claims.exp).sign(new TextEncoder().encode(secret));

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Where the apps of this suite log (every app of it: the first one's destination is kept). */
const logTap = new LogTap();

/** Everything the app logs, and the process prints to stdout and stderr, until `restore()`. */
function captureOutput() {
  const printed: string[] = [];
  const spies = [process.stdout, process.stderr].map((stream) =>
    jest.spyOn(stream, 'write').mockImplementation((chunk: unknown) => {
      printed.push(String(chunk));
      return true;
    }),
  );
  const logged = logTap.capture();
  return {
    text: () => [...logged.lines(), ...printed].join('\n'),
    /** The app's log lines, each parsed: every one must be JSON. */
    records: () => logged.lines().map((line) => JSON.parse(line) as { level: string; msg: string }),
    restore: () => {
      logged.stop();
      spies.forEach((spy) => spy.mockRestore());
    },
  };
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

describe('the read API on real Redis and Kafka', () => {
  let app: INestApplication;
  let server: Server;
  let projection: TaskProjection;

  beforeAll(async () => {
    app = await createApp(testConfig('read-api', { auth: { keys: new Map([[KEY_ID, KEY_SECRET]]), jwtSecret: JWT_SECRET } }), { logTo: logTap });
    await app.listen(0);
    // Closing while topics are still being created would leave a Kafka request behind the suite.
    await untilConsuming(app);
    server = app.getHttpServer() as Server;
    projection = app.get(TaskProjection);
    await projection.applyBatch([
      event('task-e2e-1', STORED, 17),
      event('ns:task.e2e_2', Buffer.from('{"taskId":"ns:task.e2e_2"}'), 5, 0),
    ]);
  });

  afterAll(async () => {
    await app?.close();
  });

  describe('200', () => {
    it('answers X-Authorization with the stored bytes as they are, as application/json, with an ETag from the version', async () => {
      const response = await send(server, 'get', '/tasks/task-e2e-1', AUTH);
      expect(response.status).toBe(200);
      expect(response.headers['content-type']).toBe('application/json');
      expect(response.headers.etag).toBe('"2-17"');
      expect(response.headers['content-length']).toBe(String(STORED.length));
      expect(response.body.equals(STORED)).toBe(true);
    });

    it('accepts the token as Authorization: Bearer', async () => {
      const response = await send(server, 'get', '/tasks/task-e2e-1', { Authorization: `Bearer ${TEST_TOKEN}` });
      expect(response.status).toBe(200);
      expect(response.body.equals(STORED)).toBe(true);
    });

    it('serves the same under the /api prefix, where Conductor clients call it', async () => {
      const response = await send(server, 'get', '/api/tasks/task-e2e-1', AUTH);
      expect(response.status).toBe(200);
      expect(response.headers.etag).toBe('"2-17"');
      expect(response.body.equals(STORED)).toBe(true);
    });

    it('decodes a percent-encoded taskId, as clients encode ":"', async () => {
      const response = await send(server, 'get', '/api/tasks/ns%3Atask.e2e_2', AUTH);
      expect(response.status).toBe(200);
      expect(response.body.toString()).toBe('{"taskId":"ns:task.e2e_2"}');
    });

    it('answers HEAD with the headers of GET and no body', async () => {
      const response = await send(server, 'head', '/tasks/task-e2e-1', AUTH);
      expect(response.status).toBe(200);
      expect(response.headers.etag).toBe('"2-17"');
      expect(response.headers['content-length']).toBe(String(STORED.length));
      expect(response.body).toHaveLength(0);
    });
  });

  describe('ETag and If-None-Match', () => {
    it('answers 304 with no body when If-None-Match holds the current ETag', async () => {
      const response = await send(server, 'get', '/tasks/task-e2e-1', { ...AUTH, 'If-None-Match': '"2-17"' });
      expect(response.status).toBe(304);
      expect(response.headers.etag).toBe('"2-17"');
      expect(response.body).toHaveLength(0);
    });

    it('answers 200 with the new bytes and a new ETag once a newer event is applied', async () => {
      await projection.applyBatch([event('task-e2e-3', Buffer.from('{"v":1}'), 40)]);
      const first = await send(server, 'get', '/tasks/task-e2e-3', AUTH);
      expect(first.headers.etag).toBe('"2-40"');
      await projection.applyBatch([event('task-e2e-3', Buffer.from('{"v":2}'), 41)]);
      const second = await send(server, 'get', '/tasks/task-e2e-3', { ...AUTH, 'If-None-Match': first.headers.etag });
      expect(second.status).toBe(200);
      expect(second.headers.etag).toBe('"2-41"');
      expect(second.body.toString()).toBe('{"v":2}');
    });
  });

  describe('401', () => {
    const unauthorized = (message: string, error = 'INVALID_TOKEN') => errorBody(401, message, { error });
    const MISSING = 'Missing token: send X-Authorization: <token> or Authorization: Bearer <token>';

    it('refuses a request without a token', async () => {
      const response = await send(server, 'get', '/tasks/task-e2e-1');
      expect(response.status).toBe(401);
      expect(response.headers['content-type']).toBe('application/json');
      expect(response.json).toStrictEqual(unauthorized(MISSING));
    });

    it('refuses an empty token, in either header', async () => {
      expect((await send(server, 'get', '/tasks/task-e2e-1', { 'X-Authorization': '' })).json).toStrictEqual(unauthorized(MISSING));
      expect((await send(server, 'get', '/tasks/task-e2e-1', { Authorization: 'Bearer ' })).json).toStrictEqual(unauthorized(MISSING));
    });

    it('refuses a wrong token, in either header', async () => {
      for (const headers of [{ 'X-Authorization': `${TEST_TOKEN}x` }, { Authorization: 'Bearer not-the-token' }] as Record<string, string>[]) {
        const response = await send(server, 'get', '/tasks/task-e2e-1', headers);
        expect(response.status).toBe(401);
        expect(response.json).toStrictEqual(unauthorized('Invalid token'));
      }
    });

    it('refuses an expired JWT as expired, so clients know to fetch a new one', async () => {
      const expired = await sign({ exp: nowSeconds() - 10 });
      const response = await send(server, 'get', '/api/tasks/task-e2e-1', { 'X-Authorization': expired });
      expect(response.status).toBe(401);
      expect(response.json).toStrictEqual(unauthorized('Token expired', 'EXPIRED_TOKEN'));
    });

    it('refuses a JWT with a forged signature, or signed with another secret or algorithm', async () => {
      const valid = await sign({ exp: nowSeconds() + 600 });
      const [header, payload, signature] = valid.split('.');
      const forged = `${header}.${payload}.${signature.startsWith('A') ? 'B' : 'A'}${signature.slice(1)}`;
      const otherSecret = await sign({ exp: nowSeconds() + 600 }, 'another-secret-0123456789-abcdefghijk');
      const otherAlgorithm = await sign({ exp: nowSeconds() + 600 }, JWT_SECRET, 'HS384');
      for (const token of [forged, otherSecret, otherAlgorithm]) {
        const response = await send(server, 'get', '/tasks/task-e2e-1', { 'X-Authorization': token });
        expect(response.json).toStrictEqual(unauthorized('Invalid token'));
      }
      expect((await send(server, 'get', '/tasks/task-e2e-1', { 'X-Authorization': valid })).status).toBe(200);
    });

    it('refuses other spellings of a valid JWT and tokens over 4096 characters', async () => {
      const valid = await sign({ exp: nowSeconds() + 600 });
      const [header, payload, signature] = valid.split('.');
      const spellings = [
        `${valid}${'='.repeat(8000)}`,
        `${valid}=`,
        ...['!', '~', '*', '%'].map((c) => `${header}.${payload}.${signature.slice(0, 20)}${c}${signature.slice(20)}`),
        // The same signature bytes: the last character's lowest bit is one of its two unused ones.
        `${header}.${payload}.${signature.slice(0, -1)}${BASE64URL[BASE64URL.indexOf(signature.at(-1)!) ^ 1]}`,
        TEST_TOKEN.padEnd(4097, 'x'),
      ];
      for (const token of spellings) {
        const response = await send(server, 'get', '/tasks/task-e2e-1', { 'X-Authorization': token });
        expect([token.length, response.status, response.json]).toStrictEqual([token.length, 401, unauthorized('Invalid token')]);
      }
      expect((await send(server, 'get', '/tasks/task-e2e-1', { 'X-Authorization': valid })).status).toBe(200);
    });

    it('checks the token before anything else, so without one nothing is told about the taskId', async () => {
      for (const path of ['/tasks/no-such-task', '/tasks/bad%20id', '/api/tasks/task-e2e-1']) {
        expect((await send(server, 'get', path, { 'X-Authorization': 'wrong' })).status).toBe(401);
      }
    });
  });

  describe('404', () => {
    it("answers an unknown task with Conductor's message", async () => {
      const response = await send(server, 'get', '/api/tasks/no-such-task', AUTH);
      expect(response.status).toBe(404);
      expect(response.headers['content-type']).toBe('application/json');
      expect(response.json).toStrictEqual(errorBody(404, 'Task not found for taskId: no-such-task'));
    });

    it('answers a deleted task as an unknown one', async () => {
      await projection.applyBatch([event('task-e2e-4', Buffer.from('{"taskId":"task-e2e-4"}'), 50), { ...event('task-e2e-4', Buffer.alloc(0), 51), value: null }]);
      const response = await send(server, 'get', '/api/tasks/task-e2e-4', AUTH);
      expect([response.status, response.json]).toStrictEqual([404, errorBody(404, 'Task not found for taskId: task-e2e-4')]);
    });
  });

  describe('400', () => {
    const INVALID = errorBody(400, 'Invalid taskId: expected 1 to 128 characters of A-Z a-z 0-9 _ . : -');

    it('answers a taskId longer than 128 characters, and takes one of exactly 128', async () => {
      const tooLong = await send(server, 'get', `/tasks/${'a'.repeat(129)}`, AUTH);
      expect(tooLong.status).toBe(400);
      expect(tooLong.json).toStrictEqual(INVALID);
      expect((await send(server, 'get', `/tasks/${'a'.repeat(128)}`, AUTH)).status).toBe(404);
    });

    it('answers a taskId with characters outside the contract, or broken percent-encoding', async () => {
      for (const id of ['a%20b', 'a%2Fb', 'a*b', 'caf%C3%A9', '%E0%A4%A', 'a%']) {
        const response = await send(server, 'get', `/tasks/${id}`, AUTH);
        expect([id, response.status, response.json]).toStrictEqual([id, 400, INVALID]);
      }
    });
  });

  describe('500', () => {
    it('answers an unexpected failure with a generic 500, and logs it without the token', async () => {
      const get = jest.spyOn(projection, 'get').mockRejectedValueOnce(new Error('boom: an internal detail'));
      const logged = captureOutput();
      try {
        const response = await send(server, 'get', '/tasks/task-e2e-1', AUTH);
        expect(response.status).toBe(500);
        expect(response.json).toStrictEqual(errorBody(500, 'Internal server error'));
        expect(response.body.toString()).not.toContain('boom');
      } finally {
        logged.restore();
        get.mockRestore();
      }
      expect(logged.records()).toEqual([expect.objectContaining({ level: 'error', context: 'HttpErrors', msg: 'GET /tasks/task-e2e-1 failed: boom: an internal detail' })]);
      expect(logged.records()[0]).toMatchObject({ err: { message: 'boom: an internal detail', stack: expect.stringContaining('Error: boom: an internal detail\n') } });
      expect(logged.text()).not.toContain(TEST_TOKEN);
    });
  });

  describe('POST /api/token', () => {
    const post = (body: string, contentType = 'application/json') => send(server, 'post', '/api/token', { 'Content-Type': contentType }, body);

    it('exchanges a keyId and keySecret for a token, without needing a token itself', async () => {
      const response = await post(JSON.stringify({ keyId: KEY_ID, keySecret: KEY_SECRET }));
      expect(response.status).toBe(200);
      expect(response.headers['content-type']).toMatch(/^application\/json/);
      expect(Object.keys(response.json as object)).toEqual(['token']);
    });

    it('issues a token that then reads, in either header, under either prefix', async () => {
      const { token } = (await post(JSON.stringify({ keyId: KEY_ID, keySecret: KEY_SECRET }))).json as { token: string };
      const viaConductorHeader = await send(server, 'get', '/api/tasks/task-e2e-1', { 'X-Authorization': token });
      expect(viaConductorHeader.status).toBe(200);
      expect(viaConductorHeader.body.equals(STORED)).toBe(true);
      expect((await send(server, 'get', '/tasks/task-e2e-1', { Authorization: `Bearer ${token}` })).status).toBe(200);
    });

    it('refuses a wrong keySecret or an unknown keyId with a 401', async () => {
      const expected = errorBody(401, 'Invalid keyId or keySecret');
      const wrongSecret = await post(JSON.stringify({ keyId: KEY_ID, keySecret: `${KEY_SECRET}x` }));
      expect([wrongSecret.status, wrongSecret.json]).toStrictEqual([401, expected]);
      const unknownKey = await post(JSON.stringify({ keyId: 'someone', keySecret: KEY_SECRET }));
      expect([unknownKey.status, unknownKey.json]).toStrictEqual([401, expected]);
    });

    it('answers a malformed JSON body with a 400 ErrorResponse, not an HTML page', async () => {
      const response = await post('{"keyId": "reader-app", ');
      expect(response.status).toBe(400);
      expect(response.headers['content-type']).toBe('application/json');
      expect(response.json).toStrictEqual(errorBody(400, 'Malformed JSON body'));
    });

    it('answers missing or mistyped fields with a 400 that names them, never their values', async () => {
      const response = await post(JSON.stringify({ keyId: KEY_ID, keySecret: 12345678 }));
      expect(response.status).toBe(400);
      expect((response.json as { message: string }).message).toMatch(/^keySecret must be/);
      expect(response.body.toString()).not.toContain('12345678');
      expect((await post('{}')).status).toBe(400);
    });

    it('answers a body nested 1,500 levels deep with a 400, and logs nothing at ERROR', async () => {
      const logged = captureOutput();
      try {
        for (const deep of [`${'['.repeat(1500)}${']'.repeat(1500)}`, `{"keyId":${'{"a":'.repeat(600)}1${'}'.repeat(600)},"keySecret":"s"}`]) {
          const response = await post(deep);
          expect([response.status, response.headers['content-type'], response.json]).toStrictEqual([
            400,
            'application/json',
            errorBody(400, 'JSON body nested deeper than 32 levels'),
          ]);
        }
      } finally {
        logged.restore();
      }
      expect(logged.records().filter(({ level }) => level === 'error' || level === 'fatal')).toEqual([]);
      expect(logged.text()).not.toMatch(/ERROR|RangeError|Maximum call stack/);
    });

    it('takes a body nested 32 levels deep, and refuses one of 33', async () => {
      const nested = (depth: number) => JSON.stringify({ keyId: KEY_ID, keySecret: KEY_SECRET, extra: JSON.parse(`${'['.repeat(depth - 1)}${']'.repeat(depth - 1)}`) });
      expect((await post(nested(32))).status).toBe(200);
      expect((await post(nested(33))).status).toBe(400);
    });

    it.each([
      ['{"__proto__":{"keyId":"%K","keySecret":"%S"}}', 400],
      ['{"__proto__":null,"keyId":"%K","keySecret":"%S"}', 200],
      ['{"__proto__":{"polluted":true},"keyId":"%K","keySecret":"%S"}', 200],
      ['{"constructor":null,"keyId":"%K","keySecret":"%S"}', 200],
      ['{"constructor":{"prototype":{"keyId":"other"}},"keyId":"%K","keySecret":"%S"}', 200],
      ['{"toString":null,"keyId":"%K","keySecret":"%S"}', 200],
      ['{"hasOwnProperty":"x","keyId":"%K","keySecret":"%S"}', 200],
      ['{"valueOf":{},"keyId":"%K","keySecret":"%S"}', 200],
      ['{"keyId":{"toString":"%K"},"keySecret":"%S"}', 400],
      ['{"keyId":"%K","keySecret":{"valueOf":"%S","__proto__":[]}}', 400],
    ])('answers %s with %i, as JSON, and leaves Object.prototype alone', async (template, status) => {
      const response = await post(template.replace('%K', KEY_ID).replace('%S', KEY_SECRET));
      expect(response.status).toBe(status);
      expect(response.headers['content-type']).toMatch(/^application\/json/);
      if (status === 400) expect(response.json).toMatchObject({ status: 400, instance: INSTANCE, retryable: false });
      else expect(Object.keys(response.json as object)).toEqual(['token']);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });

    it('refuses other content types and bodies over the limit, as JSON', async () => {
      const text = await post('keyId=a&keySecret=b', 'application/x-www-form-urlencoded');
      expect([text.status, text.json]).toStrictEqual([415, errorBody(415, 'Content-Type must be application/json')]);
      const large = await post(JSON.stringify({ keyId: KEY_ID, keySecret: 'x'.repeat(5000) }));
      expect([large.status, large.json]).toStrictEqual([413, errorBody(413, 'Body larger than 4096 bytes')]);
    });
  });

  describe('no HTML anywhere', () => {
    it('answers unknown routes, and methods the read route does not take, with a JSON 404', async () => {
      for (const [method, path] of [
        ['get', '/'],
        ['get', '/nowhere'],
        ['get', '/tasks/a/b'],
        ['get', '/tasks/'],
        ['delete', '/tasks/task-e2e-1'],
        ['post', '/api/tasks/task-e2e-1'],
        ['get', '/%zz'],
      ] as const) {
        const response = await send(server, method, path, AUTH);
        expect([method, path, response.status, response.headers['content-type']]).toEqual([method, path, 404, 'application/json']);
        expect(response.json).toMatchObject({ status: 404, instance: INSTANCE, retryable: false });
        expect(response.body.toString()).not.toMatch(/<html|<!DOCTYPE|<pre>/i);
      }
    });
  });
});

describe('the read API with READ_MISSING_TASK_STATUS=204', () => {
  let app: INestApplication;
  let server: Server;

  beforeAll(async () => {
    app = await createApp(testConfig('read-204', { http: { missingTaskStatus: 204 } }), { logTo: logTap });
    await app.listen(0);
    await untilConsuming(app);
    server = app.getHttpServer() as Server;
    await app.get(TaskProjection).applyBatch([
      event('kept', Buffer.from('{"taskId":"kept"}'), 1),
      event('deleted', Buffer.from('{"taskId":"deleted"}'), 2),
      { taskId: 'deleted', value: null, partition: 2, offset: '3', timestamp: Date.now() },
    ]);
  });

  afterAll(async () => {
    await app?.close();
  });

  it('answers a task never seen, or deleted, with 204, no body and no JSON Content-Type, to GET and HEAD', async () => {
    for (const [method, path] of [
      ['get', '/tasks/never-seen'],
      ['get', '/api/tasks/never-seen'],
      ['get', '/api/tasks/deleted'],
      ['head', '/api/tasks/never-seen'],
    ] as const) {
      const response = await send(server, method, path, AUTH);
      expect([method, path, response.status, response.body.length, response.headers['content-type']]).toEqual([method, path, 204, 0, undefined]);
      expect(response.headers.etag).toBeUndefined();
    }
  });

  it('answers everything else as before: the task, a bad id, a missing token', async () => {
    expect((await send(server, 'get', '/api/tasks/kept', AUTH)).body.toString()).toBe('{"taskId":"kept"}');
    expect((await send(server, 'get', '/api/tasks/a*b', AUTH)).status).toBe(400);
    expect((await send(server, 'get', '/api/tasks/never-seen')).status).toBe(401);
  });
});
