import { IncomingMessage, ServerResponse } from 'node:http';
import { TokenVerifier } from '../auth/token-verifier.js';
import { etagMatches, TaskReadRoute, taskIdInPath } from './task-read.route.js';
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

describe('TaskReadRoute.handle', () => {
  const route = new TaskReadRoute({} as TokenVerifier, {} as TasksService, { port: 8080, missingTaskStatus: 404, keepAliveTimeoutMs: 65000 });
  const request = (method: string, url: string) => ({ method, url, headers: {} }) as IncomingMessage;

  it('leaves other methods and paths untouched for the framework', () => {
    const res = {} as ServerResponse;
    expect(route.handle(request('POST', '/tasks/t-1'), res)).toBe(false);
    expect(route.handle(request('DELETE', '/api/tasks/t-1'), res)).toBe(false);
    expect(route.handle(request('GET', '/api/token'), res)).toBe(false);
    expect(route.handle(request('GET', '/tasks/a/b'), res)).toBe(false);
  });
});
