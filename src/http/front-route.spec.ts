import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import { FrontRoute, mountInFront } from './front-route.js';

/** A response that records the headers set on it. */
const response = () => {
  const headers = new Map<string, string>();
  return { headers, setHeader: (name: string, value: string) => headers.set(name.toLowerCase(), value) };
};

describe('mountInFront', () => {
  const taken: string[] = [];
  const framework: string[] = [];
  const route: FrontRoute = {
    handle: (req) => {
      if (req.url !== '/tasks/t1') return false;
      taken.push(req.url);
      return true;
    },
  };
  const drain = { draining: false };
  const server = createServer((req) => framework.push(req.url ?? ''));
  mountInFront(server, route, drain);
  const request = (url: string) => {
    const res = response();
    server.emit('request', { url } as IncomingMessage, res as unknown as ServerResponse);
    return res.headers;
  };

  it('gives the route what it takes and the framework the rest, with nothing added', () => {
    expect(request('/tasks/t1').size).toBe(0);
    expect(request('/health/ready').size).toBe(0);
    expect(taken).toEqual(['/tasks/t1']);
    expect(framework).toEqual(['/health/ready']);
  });

  it('asks every client to close its connection while draining, on the route and in the framework', () => {
    drain.draining = true;
    expect(request('/tasks/t1').get('connection')).toBe('close');
    expect(request('/health/ready').get('connection')).toBe('close');
  });

  it('refuses a server with other than one request listener', () => {
    expect(() => mountInFront(createServer(), route, drain)).toThrow(/expected one request listener, found 0/);
  });
});
