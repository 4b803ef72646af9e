import { IncomingMessage, Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { orkesConductorClient, TaskClient } from '@io-orkes/conductor-javascript';
import { jest } from '@jest/globals';
import { INestApplication } from '@nestjs/common';
import { createApp } from '../src/app.factory.js';
import { AppConfig } from '../src/config/app-config.js';
import { TaskProjection } from '../src/projection/task-projection.js';
import { TEST_TOKEN, testConfig } from './support/infra.js';
import { untilConsuming } from './support/ingesting-app.js';
import { SEED_TASK, sampleTaskBytes } from './support/sample-task.js';

const KEY_ID = 'sdk-app';
const KEY_SECRET = 'sdk-app-secret-value';
const JWT_SECRET = 'sdk-e2e-jwt-secret-0123456789-abcdefgh';

/**
 * The service with access keys, as an Orkes-style client meets it, and every request it sees
 * (with whether it carried a token).
 */
async function startService(label: string, auth: Partial<AppConfig['auth']> = {}, http: Partial<AppConfig['http']> = {}) {
  const app = await createApp(
    testConfig(label, { http, auth: { tokens: [], keys: new Map([[KEY_ID, KEY_SECRET]]), jwtSecret: JWT_SECRET, ...auth } }),
  );
  await app.listen(0);
  await untilConsuming(app);
  const server = app.getHttpServer() as Server;
  const requests: string[] = [];
  const tokens: (string | undefined)[] = [];
  server.prependListener('request', (req: IncomingMessage) => {
    requests.push(`${req.method} ${req.url}`);
    tokens.push((req.headers['x-authorization'] as string | undefined) ?? req.headers.authorization);
  });
  const address = server.address();
  const serverUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  return { app, serverUrl, requests, tokens };
}

// The SDK's own options, nothing patched: refreshTokenInterval 0 only turns off its background
// refresh timer, which it offers no way to stop and which would outlive the suite.
const sdkClient = (serverUrl: string) => orkesConductorClient({ serverUrl, keyId: KEY_ID, keySecret: KEY_SECRET, refreshTokenInterval: 0 });

describe('the official Conductor JavaScript SDK against the service', () => {
  let app: INestApplication | undefined;

  beforeEach(() => {
    // The SDK warns about its unset environment variables on every client it builds.
    jest.spyOn(console, 'warn').mockImplementation(() => undefined);
  });

  afterEach(async () => {
    jest.restoreAllMocks();
    await app?.close();
    app = undefined;
  });

  it('authenticates with keyId and keySecret and reads a task unchanged with its task client', async () => {
    const service = await startService('sdk-read');
    app = service.app;
    // The seed's own task, its id percent-encoded by the SDK (':' becomes %3A).
    const taskId = 'sdk:0c658ed7-becd-11ef-a89d-86a819bd92bf';
    const bytes = sampleTaskBytes(taskId, 1);
    await app.get(TaskProjection).applyBatch([{ taskId, value: bytes, partition: 3, offset: '7', timestamp: Date.now() }]);

    const task = await new TaskClient(await sdkClient(service.serverUrl)).getTask(taskId);

    expect(task).toStrictEqual(JSON.parse(bytes.toString('utf8')));
    expect(Object.keys(task as object)).toEqual(Object.keys({ ...SEED_TASK, taskId }));
    expect(service.requests).toEqual(['POST /api/token', `GET /api/tasks/${encodeURIComponent(taskId)}`]);
  });

  it("throws on a missing task with the service's message, answered by default with a 404", async () => {
    const service = await startService('sdk-missing');
    app = service.app;
    const tasks = new TaskClient(await sdkClient(service.serverUrl));
    await expect(tasks.getTask('no-such-task')).rejects.toThrow("Failed to get task 'no-such-task': Task not found for taskId: no-such-task");
  });

  it('fails every call with 401 "Missing token" when the service has static tokens only, as the README says', async () => {
    // Without AUTH_KEYS, POST /api/token is a 404, as on Conductor OSS: the SDK then sends no
    // token at all, and it has no setting for a static one.
    const service = await startService('sdk-static', { tokens: [TEST_TOKEN], keys: new Map(), jwtSecret: undefined });
    app = service.app;
    await app.get(TaskProjection).applyBatch([{ taskId: 'sdk-t3', value: Buffer.from('{"taskId":"sdk-t3"}'), partition: 0, offset: '1', timestamp: Date.now() }]);
    const tasks = new TaskClient(await orkesConductorClient({ serverUrl: service.serverUrl, keyId: 'ops', keySecret: TEST_TOKEN, refreshTokenInterval: 0 }));

    await expect(tasks.getTask('sdk-t3')).rejects.toThrow(
      "Failed to get task 'sdk-t3': Missing token: send X-Authorization: <token> or Authorization: Bearer <token>",
    );
    expect(service.requests).toEqual(['POST /api/token', 'GET /api/tasks/sdk-t3']);
    expect(service.tokens).toEqual([undefined, undefined]);
  });

  it('resolves a missing task to null when the service answers it with 204, as Conductor OSS before 3.21.20 did', async () => {
    const service = await startService('sdk-204', {}, { missingTaskStatus: 204 });
    app = service.app;
    const tasks = new TaskClient(await sdkClient(service.serverUrl));
    await expect(tasks.getTask('no-such-task')).resolves.toBeNull();
    expect(service.requests).toEqual(['POST /api/token', 'GET /api/tasks/no-such-task']);
  });

  it('fetches a new token and retries when the service says its token expired', async () => {
    // exp is whole seconds after iat, itself rounded down: a token lives between ttl - 1 and ttl
    // seconds. Two seconds leave the re-issued token at least one, for the retry to arrive in.
    const service = await startService('sdk-expiry', { jwtTtlSeconds: 2 });
    app = service.app;
    await app.get(TaskProjection).applyBatch([{ taskId: 'sdk-t2', value: Buffer.from('{"taskId":"sdk-t2"}'), partition: 0, offset: '1', timestamp: Date.now() }]);
    const tasks = new TaskClient(await sdkClient(service.serverUrl));
    await expect(tasks.getTask('sdk-t2')).resolves.toEqual({ taskId: 'sdk-t2' });

    await sleep(3100);
    await expect(tasks.getTask('sdk-t2')).resolves.toEqual({ taskId: 'sdk-t2' });
    expect(service.requests).toEqual([
      'POST /api/token',
      'GET /api/tasks/sdk-t2',
      'GET /api/tasks/sdk-t2', // 401 EXPIRED_TOKEN
      'POST /api/token',
      'GET /api/tasks/sdk-t2',
    ]);
  });
});
