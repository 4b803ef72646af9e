import { mkdtempSync, readFileSync } from 'node:fs';
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type DestinationStream } from 'pino';
import { pinoHttp } from 'pino-http';
import { LogConfig, LogLevelName } from '../config/app-config.js';
import { logDestination, pinoHttpOptions, pinoLevel, pinoOptions } from './pino-settings.js';

const JSON_LOG: LogConfig = { level: 'log', format: 'json' };

/** A destination keeping every line pino writes. */
function captured(): DestinationStream & { lines: string[]; records: () => Record<string, unknown>[] } {
  const lines: string[] = [];
  return { lines, write: (line: string) => void lines.push(line), records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

describe('pinoLevel', () => {
  it.each([
    ['error', 'error'],
    ['warn', 'warn'],
    ['log', 'info'],
    ['debug', 'debug'],
    ['verbose', 'trace'],
  ] as const)('maps LOG_LEVEL=%s to pino %s', (level, expected) => {
    expect(pinoLevel(level)).toBe(expected);
  });

  it.each([
    ['error', ['error']],
    ['warn', ['error', 'warn']],
    ['log', ['error', 'warn', 'info']],
    ['verbose', ['error', 'warn', 'info', 'debug', 'trace']],
  ] as [LogLevelName, string[]][])('with LOG_LEVEL=%s writes %j', (level, written) => {
    const out = captured();
    const logger = pino(pinoOptions({ level, format: 'json' }), out);
    for (const method of ['trace', 'debug', 'info', 'warn', 'error'] as const) logger[method](method);
    expect(out.records().map((record) => record.level)).toEqual([...written].reverse());
  });
});

describe('pinoOptions', () => {
  it('writes one JSON object per line: level by name, ISO time, the text as msg, fields beside it', () => {
    const out = captured();
    pino(pinoOptions(JSON_LOG), out).warn({ topic: 'task-updates', partition: 3, offset: '42' }, 'dead-lettered task-updates partition 3 offset 42: INVALID_JSON');
    expect(out.lines).toHaveLength(1);
    expect(out.lines[0].endsWith('\n')).toBe(true);
    expect(out.records()[0]).toMatchObject({
      level: 'warn',
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      topic: 'task-updates',
      partition: 3,
      offset: '42',
      msg: 'dead-lettered task-updates partition 3 offset 42: INVALID_JSON',
    });
  });

  it('writes an error under err, with its stack', () => {
    const out = captured();
    pino(pinoOptions(JSON_LOG), out).error({ err: new Error('boom') }, 'failed');
    expect(out.records()[0].err).toMatchObject({ type: 'Error', message: 'boom', stack: expect.stringContaining('Error: boom\n    at ') });
  });

  it('redacts credential headers of a request-like object, wherever it is logged', () => {
    const out = captured();
    const logger = pino(pinoOptions(JSON_LOG), out);
    const headers = { authorization: 'Bearer bearer-secret-1', 'x-authorization': 'conductor-secret-2', cookie: 'session=cookie-secret-3', host: 'task-cache:3000' };
    logger.info({ req: { method: 'GET', url: '/tasks/t-1', headers } }, 'a request');
    logger.info({ headers }, 'headers alone');
    logger.info({ request: { headers, rawHeaders: ['Authorization', 'Bearer bearer-secret-1'] } }, 'a raw request');
    logger.info({ context: { req: { headers } } }, 'two levels down');
    // As a client library spells them, in an error's own fields.
    logger.error({ err: Object.assign(new Error('upstream refused'), { config: { headers: { Authorization: 'Bearer bearer-secret-1' } } }) }, 'an error');
    // As pino-http binds a request to a child logger.
    logger.child({ req: { method: 'GET', headers } }).warn('in a child');
    const text = out.lines.join('');
    for (const secret of ['bearer-secret-1', 'conductor-secret-2', 'cookie-secret-3']) expect(text).not.toContain(secret);
    const [request, alone, raw, nested, failure, child] = out.records() as Record<string, any>[];
    const redacted = { authorization: '[Redacted]', 'x-authorization': '[Redacted]', cookie: '[Redacted]', host: 'task-cache:3000' };
    expect(request.req).toEqual({ method: 'GET', url: '/tasks/t-1', headers: redacted });
    expect(alone.headers).toEqual(redacted);
    expect(raw.request).toEqual({ headers: redacted, rawHeaders: '[Redacted]' });
    expect(nested.context.req.headers).toEqual(redacted);
    expect(failure.err).toMatchObject({ message: 'upstream refused', stack: expect.stringContaining('Error: upstream refused\n'), config: { headers: { Authorization: '[Redacted]' } } });
    expect(child.req).toEqual({ method: 'GET', headers: redacted });
  });

  it('writes no secret however deep it lies, nor through a cycle', () => {
    const out = captured();
    let deep: Record<string, unknown> = { password: 'deep-secret', token: 'deep-token' };
    for (let level = 0; level < 30; level += 1) deep = { level, inner: deep, headers: { cookie: `cookie-${level}` } };
    const cyclic: Record<string, unknown> = { keySecret: 'cyclic-secret' };
    cyclic.again = { back: cyclic };
    pino(pinoOptions(JSON_LOG), out).warn({ deep, cyclic }, 'deep');
    expect(out.lines[0]).not.toMatch(/deep-secret|deep-token|cookie-\d|cyclic-secret/);
    expect(out.records()[0].msg).toBe('deep');
  });

  it('redacts the secrets of the configuration and the environment, and the credentials in Redis URLs', () => {
    const out = captured();
    const logger = pino(pinoOptions(JSON_LOG), out);
    const auth = { tokens: ['static-secret'], keys: { reader: 'key-secret' }, jwtSecret: 'jwt-secret-0123456789', jwtTtlSeconds: 3600 };
    const redis = { url: 'redis://reader:redis-password@redis-a:6379/0', keyPrefix: 'tc:', cluster: { nodes: [{ host: 'redis-b', port: 7000 }], password: 'cluster-password', tls: false } };
    logger.info({ auth, redis }, 'a config');
    logger.info({ config: { auth, redis } }, 'a config, one level down');
    logger.info(auth, 'an auth slice');
    logger.info({ env: { AUTH_TOKENS: 'env-token', AUTH_KEYS: 'a:env-key', AUTH_JWT_SECRET: 'env-jwt', REDIS_URL: 'rediss://u:env-redis@r:6380', REDIS_CLUSTER_NODES: 'redis://u:node-1@a:7000,redis://u:node-2@b:7000', PORT: '3000' } }, 'an environment');
    logger.info({ body: { keyId: 'reader', keySecret: 'exchange-secret' }, token: 'issued.jwt.token' }, 'a token exchange');
    const text = out.lines.join('');
    for (const secret of ['static-secret', 'key-secret', 'jwt-secret', 'redis-password', 'cluster-password', 'env-token', 'env-key', 'env-jwt', 'env-redis', 'node-1', 'node-2', 'exchange-secret', 'issued.jwt.token']) {
      expect([secret, text.includes(secret)]).toEqual([secret, false]);
    }
    const [config, nested, slice, env] = out.records() as Record<string, Record<string, unknown>>[];
    expect(config.auth).toEqual({ tokens: '[Redacted]', keys: '[Redacted]', jwtSecret: '[Redacted]', jwtTtlSeconds: 3600 });
    // Where a URL points is kept: only its credentials go.
    expect(config.redis).toMatchObject({ url: 'redis://[Redacted]@redis-a:6379/0', keyPrefix: 'tc:', cluster: { password: '[Redacted]' } });
    expect((nested.config as { redis: { url: string } }).redis.url).toBe('redis://[Redacted]@redis-a:6379/0');
    expect(slice).toMatchObject({ tokens: '[Redacted]', jwtSecret: '[Redacted]', jwtTtlSeconds: 3600 });
    expect(env.env).toEqual({
      AUTH_TOKENS: '[Redacted]',
      AUTH_KEYS: '[Redacted]',
      AUTH_JWT_SECRET: '[Redacted]',
      REDIS_URL: 'rediss://[Redacted]@r:6380',
      REDIS_CLUSTER_NODES: 'redis://[Redacted]@a:7000,redis://[Redacted]@b:7000',
      PORT: '3000',
    });
  });
});

describe('pinoHttpOptions', () => {
  /** A request through pino-http's middleware as Express would pass it, with a token, answered 200 and 500. */
  function throughMiddleware(status: number, log: (req: IncomingMessage) => void): string[] {
    const out = captured();
    const middleware = pinoHttp(pinoHttpOptions(JSON_LOG), out);
    const req = new IncomingMessage(new Socket());
    req.method = 'GET';
    req.url = '/health/ready';
    req.headers = { authorization: 'Bearer request-secret', 'x-authorization': 'request-secret-2' };
    const res = new ServerResponse(req);
    middleware(req, res, () => log(req));
    res.statusCode = status;
    res.emit('finish');
    return out.lines;
  }

  it('writes no line per request, answered or failed', () => {
    expect(throughMiddleware(200, () => undefined)).toEqual([]);
    expect(throughMiddleware(500, () => undefined)).toEqual([]);
  });

  it('gives a line logged during a request its id, and never the request', () => {
    const lines = throughMiddleware(200, (req) => (req as IncomingMessage & { log: pino.Logger }).log.warn('not ready'));
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0])).toEqual({ level: 'warn', time: expect.any(String), pid: process.pid, hostname: expect.any(String), reqId: expect.anything(), msg: 'not ready' });
    expect(lines[0]).not.toContain('request-secret');
  });
});

describe('logDestination', () => {
  const file = () => join(mkdtempSync(join(tmpdir(), 'task-cache-log-')), 'out.log');

  it('json: writes each line before the call returns', () => {
    const path = file();
    pino(pinoOptions(JSON_LOG), logDestination(JSON_LOG, path)).warn({ topic: 't', partition: 0, offset: '1' }, 'held');
    // Synchronous: nothing is left to flush, as at a process.exit right after logging.
    expect(JSON.parse(readFileSync(path, 'utf8'))).toMatchObject({ level: 'warn', topic: 't', partition: 0, offset: '1', msg: 'held' });
  });

  it('pretty: time, level, [context] and text on one line, the fields below it, written before the call returns', () => {
    const path = file();
    const pretty: LogConfig = { level: 'log', format: 'pretty' };
    pino(pinoOptions(pretty), logDestination(pretty, path)).warn({ context: 'DeadLetters', topic: 'task-updates', partition: 2, offset: '7' }, 'dead-lettered task-updates partition 2 offset 7: INVALID_JSON');
    const [first, ...rest] = readFileSync(path, 'utf8').trimEnd().split('\n');
    expect(first).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: \[DeadLetters\] dead-lettered task-updates partition 2 offset 7: INVALID_JSON$/);
    expect(rest.map((line) => line.trim())).toEqual(['topic: "task-updates"', 'partition: 2', 'offset: "7"']);
  });
});
