// The read floor: the least a server can do to answer GET /tasks/:taskId (and /api/tasks/:taskId)
// from this Redis. A bare node:http server, a plain token comparison, one Redis GET of the stored
// bytes, the bytes out. It is no part of the product; bench:read measures the service against it.
// It imports nothing of the bench or the product, so its process loads only node:http and ioredis.
//
// Settings (environment): FLOOR_PORT, REDIS_URL, FLOOR_KEY_PREFIX, FLOOR_TOKEN.
// It exits when its stdin closes, so it never outlives the benchmark that started it.
import http from 'node:http';
import { Redis } from 'ioredis';

const { FLOOR_PORT, REDIS_URL, FLOOR_KEY_PREFIX, FLOOR_TOKEN } = process.env;
if (!FLOOR_PORT || !REDIS_URL || !FLOOR_KEY_PREFIX || !FLOOR_TOKEN) {
  process.stderr.write('floor-read-server: FLOOR_PORT, REDIS_URL, FLOOR_KEY_PREFIX and FLOOR_TOKEN are required\n');
  process.exit(2);
}

// The same client settings as the service's connection: auto-pipelining, no offline queue.
const redis = new Redis(REDIS_URL, { lazyConnect: true, enableAutoPipelining: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 2000 });
const NOT_FOUND = Buffer.from('{"status":404,"message":"not found","retryable":false}');
const UNAUTHORIZED = Buffer.from('{"status":401,"message":"unauthorized","retryable":false}');

function send(response: http.ServerResponse, status: number, body: Buffer): void {
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length });
  response.end(body);
}

function taskIdOf(url: string): string | undefined {
  const at = url.startsWith('/tasks/') ? 7 : url.startsWith('/api/tasks/') ? 11 : -1;
  if (at < 0) return undefined;
  const id = url.slice(at);
  return id.length > 0 && !id.includes('/') && !id.includes('?') ? id : undefined;
}

const server = http.createServer((request, response) => {
  if (request.headers['x-authorization'] !== FLOOR_TOKEN) return send(response, 401, UNAUTHORIZED);
  const taskId = request.method === 'GET' ? taskIdOf(request.url!) : undefined;
  if (taskId === undefined) return send(response, 404, NOT_FOUND);
  redis.getBuffer(FLOOR_KEY_PREFIX + taskId).then(
    (bytes) => (bytes ? send(response, 200, bytes) : send(response, 404, NOT_FOUND)),
    () => send(response, 503, Buffer.from('{"status":503,"message":"redis unavailable","retryable":true}')),
  );
});
server.keepAliveTimeout = 65_000;

await redis.connect();
server.listen(Number(FLOOR_PORT), '127.0.0.1');

const stop = (): void => {
  server.close();
  server.closeAllConnections();
  redis.disconnect();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
