import { Server } from 'node:http';
import { hostname } from 'node:os';
import { INestApplication } from '@nestjs/common';
import { SignJWT } from 'jose';
import { createApp } from '../src/app.factory.js';
import { TaskProjection } from '../src/projection/task-projection.js';
import { send } from './support/http-client.js';
import { TEST_TOKEN, testConfig } from './support/infra.js';
import { untilConsuming } from './support/ingesting-app.js';

describe('without access keys (static tokens only), as Conductor OSS', () => {
  let app: INestApplication;
  let server: Server;

  beforeAll(async () => {
    app = await createApp(testConfig('auth-static'));
    await app.listen(0);
    // Closing while topics are still being created would leave a Kafka request behind the suite.
    await untilConsuming(app);
    server = app.getHttpServer() as Server;
    await app.get(TaskProjection).applyBatch([
      { taskId: 't-static', value: Buffer.from('{"taskId":"t-static"}'), partition: 0, offset: '1', timestamp: Date.now() },
    ]);
  });

  afterAll(async () => {
    await app?.close();
  });

  it('answers POST /api/token with the 404 of an unknown route, whatever the body', async () => {
    const expected = { status: 404, message: 'Cannot POST /api/token', instance: hostname(), retryable: false };
    for (const body of [JSON.stringify({ keyId: 'k', keySecret: 's' }), '{not json']) {
      const response = await send(server, 'post', '/api/token', { 'Content-Type': 'application/json' }, body);
      expect([response.status, response.headers['content-type'], response.json]).toStrictEqual([404, 'application/json', expected]);
    }
  });

  it('reads with a static token and refuses any JWT, whoever signed it', async () => {
    expect((await send(server, 'get', '/tasks/t-static', { 'X-Authorization': TEST_TOKEN })).status).toBe(200);
    const jwt = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('task-cache')
      .setExpirationTime('10m')
      .sign(new TextEncoder().encode('any-secret-0123456789-0123456789-abc'));
    expect((await send(server, 'get', '/tasks/t-static', { 'X-Authorization': jwt })).status).toBe(401);
  });
});

describe('starting without a safe way to authenticate', () => {
  // The environment is validated before this (see the process test in app.e2e-spec.ts); these
  // hold for any AppConfig given to createApp. Nothing has connected when it refuses.
  it('refuses no static token and no access key', async () => {
    await expect(createApp(testConfig('auth-none', { auth: { tokens: [] } }))).rejects.toThrow(/no way to authenticate/);
  });

  it('refuses access keys without a JWT secret', async () => {
    const config = testConfig('auth-nosecret', { auth: { keys: new Map([['k', 's']]) } });
    await expect(createApp(config)).rejects.toThrow(/AUTH_JWT_SECRET is required/);
  });

  it('refuses a JWT secret shorter than 32 characters', async () => {
    const config = testConfig('auth-short', { auth: { keys: new Map([['k', 's']]), jwtSecret: 'x'.repeat(31) } });
    await expect(createApp(config)).rejects.toThrow(/at least 32 characters/);
  });
});
