import { IncomingMessage, ServerResponse } from 'node:http';
import { TokenVerifier } from '../auth/token-verifier.js';
import { UnauthenticatedError } from '../auth/unauthenticated.error.js';
import { DrainState } from '../lifecycle/drain-state.js';
import { TaskCacheMetrics } from '../metrics/task-cache-metrics.js';
import { TaskNotFoundError } from './task-not-found.error.js';
import { etagMatches, MAX_WAIT_SECONDS, TaskReadRoute, taskIdInPath, waitPreference } from './task-read.route.js';
import { TaskWatchers } from './task-watchers.js';
import { TasksService } from './tasks.service.js';

describe('taskIdInPath', () => {
  it.each([
    ['/tasks/t-1', 't-1'],
    ['/api/tasks/t-1', 't-1'],
    ['/tasks/t-1?x=1', 't-1'],
    ['/api/tasks/a%3Ab', 'a%3Ab'],
    ['/tasks/a b', 'a b'],
  ])('takes %s as the read of %s', (url, taskId) => {
    expect(taskIdInPath(url)).toBe(taskId);
  });

  it.each(['/tasks/', '/tasks', '/tasks/a/b', '/tasks/a/', '/api/tasks/', '/api/token', '/task/a', '/api/v1/tasks/a', '/TASKS/a', '/', ''])(
    'leaves %s to the framework',
    (url) => {
      expect(taskIdInPath(url)).toBeUndefined();
    },
  );
});

describe('etagMatches', () => {
  const etag = '"3-42"';

  it('matches the ETag itself, a list containing it, its weak form and *', () => {
    for (const header of ['"3-42"', '"1-1", "3-42"', 'W/"3-42"', '*', '"a",W/"3-42"']) expect(etagMatches(header, etag)).toBe(true);
  });

  it('does not match other versions or the bare version', () => {
    for (const header of ['"3-41"', '"3-420"', '3-42', '', '"1-1", "2-2"']) expect(etagMatches(header, etag)).toBe(false);
  });
});

describe('waitPreference', () => {
  it.each([
    ['wait=30', 30],
    ['WAIT=5', 5],
    ['wait = 7', 7],
    ['wait="12"', 12],
    ['respond-async, wait=10', 10],
    ['wait=10;foo=bar', 10],
    ['handling=lenient, wait=3, wait=9', 3],
    ['wait=61', MAX_WAIT_SECONDS],
    ['wait=999999999', MAX_WAIT_SECONDS],
    ['wait=99999999999999999999999', MAX_WAIT_SECONDS],
    ['wait=0007', 7],
  ])('takes %s as %d seconds', (prefer, seconds) => {
    expect(waitPreference(prefer)).toBe(seconds);
  });

  it.each(['', 'return=minimal', 'wait', 'wait=', 'wait=-1', 'wait=1.5', 'wait=abc', 'wait=0', 'wait=1e3', 'wait=1=2', 'wait="5', 'waits=5', '__proto__=5', 'wait=\u0000'])(
    'ignores %j (no wait)',
    (prefer) => {
      expect(waitPreference(prefer)).toBe(0);
    },
  );
});

const HTTP = { port: 8080, missingTaskStatus: 404, keepAliveTimeoutMs: 65000, maxHeldWatches: 10000 } as const;

describe('TaskReadRoute.handle', () => {
  const route = new TaskReadRoute({} as TokenVerifier, {} as TasksService, {} as TaskWatchers, new DrainState(), HTTP, new TaskCacheMetrics({}));
  const request = (method: string, url: string) => ({ method, url, headers: {} }) as IncomingMessage;

  it('leaves other methods and paths untouched for the framework', () => {
    const res = {} as ServerResponse;
    expect(route.handle(request('POST', '/tasks/t-1'), res)).toBe(false);
    expect(route.handle(request('DELETE', '/api/tasks/t-1'), res)).toBe(false);
    expect(route.handle(request('GET', '/api/token'), res)).toBe(false);
    expect(route.handle(request('GET', '/tasks/a/b'), res)).toBe(false);
  });
});

describe('TaskReadRoute metrics', () => {
  const verifier = { verifyRequest: (headers: IncomingMessage['headers']) => (headers['x-authorization'] === 'ok' ? Promise.resolve() : Promise.reject(new UnauthenticatedError('TOKEN_INVALID'))) } as TokenVerifier;
  const tasks = {
    getTask: (taskId: string) => (taskId === 'known' ? Promise.resolve({ value: Buffer.from('{}'), version: '0-1' }) : Promise.reject(new TaskNotFoundError(taskId))),
  } as TasksService;

  /** Answers one request and resolves with the status written, once the route has observed it. */
  async function read(route: TaskReadRoute, url: string, token = 'ok'): Promise<number> {
    let status = 0;
    let ended!: () => void;
    const done = new Promise<void>((resolve) => (ended = resolve));
    const res = {
      headersSent: false,
      writeHead: (code: number) => (status = code),
      end: () => ended(),
    } as unknown as ServerResponse;
    expect(route.handle({ method: 'GET', url, headers: { 'x-authorization': token } } as unknown as IncomingMessage, res)).toBe(true);
    await done;
    await new Promise((resolve) => setImmediate(resolve));
    return status;
  }

  async function counts(metrics: TaskCacheMetrics): Promise<Record<string, number>> {
    const { values } = await metrics.readDuration.get();
    return Object.fromEntries(
      values.filter((value) => value.metricName === 'taskcache_read_duration_seconds_count').map((value) => [`${value.labels.route} ${value.labels.status}`, value.value]),
    );
  }

  it('observes each read by route and status when metrics are served', async () => {
    const metrics = new TaskCacheMetrics({ port: 0 });
    const route = new TaskReadRoute(verifier, tasks, {} as TaskWatchers, new DrainState(), HTTP, metrics);
    expect(await read(route, '/tasks/known')).toBe(200);
    expect(await read(route, '/tasks/known')).toBe(200);
    expect(await read(route, '/api/tasks/missing')).toBe(404);
    expect(await read(route, '/api/tasks/known', 'bad')).toBe(401);
    expect(await counts(metrics)).toEqual({ '/tasks/{taskId} 200': 2, '/api/tasks/{taskId} 404': 1, '/api/tasks/{taskId} 401': 1 });
    metrics.registry.clear();
  });

  it('records nothing when metrics are not served', async () => {
    const metrics = new TaskCacheMetrics({});
    const route = new TaskReadRoute(verifier, tasks, {} as TaskWatchers, new DrainState(), HTTP, metrics);
    expect(await read(route, '/tasks/known')).toBe(200);
    expect(await counts(metrics)).toEqual({});
  });
});
