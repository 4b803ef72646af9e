import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from './config-error.js';
import { loadConfig } from './load-config.js';

const AUTH = { AUTH_TOKENS: 'token-a' };

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const config = loadConfig({ ...AUTH });
    expect(config.http.port).toBe(3000);
    expect(config.http.missingTaskStatus).toBe(404);
    expect(config.kafka).toMatchObject({
      brokers: ['localhost:9092'],
      topic: 'task-updates',
      dlqTopic: 'task-updates.dlq',
      groupId: 'task-cache',
    });
    expect(config.redis).toMatchObject({ url: 'redis://localhost:6379', keyPrefix: 'tc:' });
    expect(config.auth.tokens).toEqual(['token-a']);
    expect(config.kafka.sessionTimeoutMs).toBe(30000);
    expect(config.ingest).toEqual({ retryInitialMs: 100, retryMaxMs: 2000 });
    expect(config.http.keepAliveTimeoutMs).toBe(65000);
    expect(config.lifecycle).toMatchObject({ shutdownTimeoutMs: 15000, shutdownDrainMs: 5000 });
    expect(config.log).toEqual({ level: 'log', format: 'json' });
  });

  it('reads the log level and format into the log slice', () => {
    expect(loadConfig({ ...AUTH, LOG_LEVEL: 'verbose', LOG_FORMAT: 'pretty' }).log).toEqual({ level: 'verbose', format: 'pretty' });
  });

  it('parses lists and numbers', () => {
    const config = loadConfig({
      ...AUTH,
      PORT: '8080',
      KAFKA_BROKERS: 'k1:9092, k2:9093',
      AUTH_TOKENS: 'a, b,,c',
      AUTH_KEYS: 'key1:secret1,key2:se:cret2',
      AUTH_JWT_SECRET: 'x'.repeat(32),
    });
    expect(config.http.port).toBe(8080);
    expect(config.kafka.brokers).toEqual(['k1:9092', 'k2:9093']);
    expect(config.auth.tokens).toEqual(['a', 'b', 'c']);
    expect([...config.auth.keys]).toEqual([
      ['key1', 'secret1'],
      ['key2', 'se:cret2'],
    ]);
  });

  it.each([
    ['PORT', 'eighty', /PORT/],
    ['PORT', '70000', /PORT/],
    ['KAFKA_BROKERS', 'no-port', /KAFKA_BROKERS must be a comma-separated list of host:port/],
    ['KAFKA_TOPIC', 'bad topic', /KAFKA_TOPIC must be a valid Kafka topic name/],
    ['REDIS_URL', 'http://x', /REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL/],
    ['AUTH_KEYS', 'no-secret', /AUTH_KEYS must be comma-separated keyId:secret pairs/],
    ['AUTH_JWT_SECRET', 'short', /AUTH_JWT_SECRET must be at least 32 characters long/],
    ['LOG_LEVEL', 'loud', /LOG_LEVEL/],
    ['LOG_LEVEL', 'info', /LOG_LEVEL/],
    ['LOG_FORMAT', 'text', /LOG_FORMAT must be json or pretty/],
    ['READ_MISSING_TASK_STATUS', '200', /READ_MISSING_TASK_STATUS must be 404 or 204/],
    ['READ_MISSING_TASK_STATUS', 'none', /READ_MISSING_TASK_STATUS must be 404 or 204/],
    ['KAFKA_SESSION_TIMEOUT_MS', '1000', /KAFKA_SESSION_TIMEOUT_MS/],
    ['INGEST_RETRY_MAX_MS', 'soon', /INGEST_RETRY_MAX_MS/],
  ])('rejects %s=%s with a message naming it', (name, value, message) => {
    expect(() => loadConfig({ ...AUTH, [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ ...AUTH, [name]: value })).toThrow(message);
  });

  describe('REDIS_CLUSTER_NODES', () => {
    const cluster = (nodes: string, extra: Record<string, string> = {}) => loadConfig({ ...AUTH, REDIS_CLUSTER_NODES: nodes, ...extra }).redis.cluster;

    it('is off by default: standalone REDIS_URL', () => {
      expect(loadConfig({ ...AUTH }).redis.cluster).toBeUndefined();
    });

    it('takes host:port seeds, spaces and IPv6 brackets allowed', () => {
      expect(cluster('10.0.0.1:7000, redis-b:7001,[::1]:7002')).toEqual({
        nodes: [
          { host: '10.0.0.1', port: 7000 },
          { host: 'redis-b', port: 7001 },
          { host: '::1', port: 7002 },
        ],
        tls: false,
      });
    });

    it('takes redis:// and rediss:// seeds with credentials for every node, decoded as REDIS_URL is', () => {
      expect(cluster('rediss://app:p%40ss@a:6380,rediss://app:p%40ss@b:6380/0')).toEqual({
        nodes: [
          { host: 'a', port: 6380 },
          { host: 'b', port: 6380 },
        ],
        username: 'app',
        password: 'p@ss',
        tls: true,
      });
      expect(cluster('redis://:secret@a:7000')).toEqual({ nodes: [{ host: 'a', port: 7000 }], password: 'secret', tls: false });
    });

    it.each([
      ['a', /REDIS_CLUSTER_NODES entry 1 is neither host:port nor a redis:\/\/ or rediss:\/\/ URL/],
      ['a:7000,b', /REDIS_CLUSTER_NODES entry 2 is neither/],
      ['a:7000,,b:7001', /REDIS_CLUSTER_NODES has an empty entry \(number 2\)/],
      ['a:70000', /REDIS_CLUSTER_NODES entry 1 has a port outside 1-65535/],
      ['redis://a', /REDIS_CLUSTER_NODES entry 1 is neither/],
      ['http://a:7000', /REDIS_CLUSTER_NODES entry 1 is neither/],
      ['redis://a:7000/2', /REDIS_CLUSTER_NODES names a database other than 0/],
      ['redis://a:7000?tls=true', /REDIS_CLUSTER_NODES entry 1 is neither/],
      ['rediss://a:7000,b:7001', /REDIS_CLUSTER_NODES entries differ in scheme or credentials/],
      ['redis://u:secret1@a:7000,redis://u:secret2@b:7001', /REDIS_CLUSTER_NODES entries differ in scheme or credentials/],
    ])('refuses %s with a message naming it, never the value', (nodes, message) => {
      expect(() => cluster(nodes)).toThrow(ConfigError);
      expect(() => cluster(nodes)).toThrow(message);
      expect(() => cluster(nodes)).toThrow(/^(?!.*secret)/s);
    });

    it('is exclusive with REDIS_URL', () => {
      expect(() => cluster('a:7000', { REDIS_URL: 'redis://b:6379' })).toThrow(/REDIS_URL and REDIS_CLUSTER_NODES are exclusive/);
    });

    it('refuses a key prefix with a hash tag, which would put every key in one slot; empty braces are no tag', () => {
      expect(() => cluster('a:7000', { REDIS_KEY_PREFIX: 'tc:{app}:' })).toThrow(/REDIS_KEY_PREFIX may not contain a hash tag/);
      expect(() => cluster('a:7000', { REDIS_KEY_PREFIX: 'tc{}:{app}:' })).not.toThrow();
      expect(loadConfig({ ...AUTH, REDIS_KEY_PREFIX: 'tc:{app}:' }).redis.keyPrefix).toBe('tc:{app}:');
    });
  });

  it('keeps finished tasks forever unless PROJECTION_TERMINAL_TTL_SECONDS is set, from 1 s to 10 years', () => {
    expect(loadConfig({ ...AUTH }).projection).toEqual({ tombstoneTtlSeconds: 604800 });
    expect(loadConfig({ ...AUTH, PROJECTION_TERMINAL_TTL_SECONDS: '' }).projection.terminalTtlSeconds).toBeUndefined();
    expect(loadConfig({ ...AUTH, PROJECTION_TERMINAL_TTL_SECONDS: '86400' }).projection).toEqual({ tombstoneTtlSeconds: 604800, terminalTtlSeconds: 86400 });
    expect(loadConfig({ ...AUTH, PROJECTION_TERMINAL_TTL_SECONDS: '1' }).projection.terminalTtlSeconds).toBe(1);
    expect(loadConfig({ ...AUTH, PROJECTION_TERMINAL_TTL_SECONDS: String(10 * 365 * 24 * 3600) }).projection.terminalTtlSeconds).toBe(315360000);
    for (const bad of ['0', '-5', '1.5', '30s', String(10 * 365 * 24 * 3600 + 1)]) {
      expect(() => loadConfig({ ...AUTH, PROJECTION_TERMINAL_TTL_SECONDS: bad })).toThrow(/PROJECTION_TERMINAL_TTL_SECONDS/);
    }
  });

  it('reads the answer to a missing task', () => {
    expect(loadConfig({ ...AUTH, READ_MISSING_TASK_STATUS: '204' }).http.missingTaskStatus).toBe(204);
    expect(loadConfig({ ...AUTH, READ_MISSING_TASK_STATUS: ' 404 ' }).http.missingTaskStatus).toBe(404);
  });

  it('reads the ingest retry bounds and refuses a first wait longer than the cap', () => {
    expect(loadConfig({ ...AUTH, INGEST_RETRY_INITIAL_MS: '50', INGEST_RETRY_MAX_MS: '800' }).ingest).toEqual({
      retryInitialMs: 50,
      retryMaxMs: 800,
    });
    expect(() => loadConfig({ ...AUTH, INGEST_RETRY_INITIAL_MS: '900', INGEST_RETRY_MAX_MS: '800' })).toThrow(
      /INGEST_RETRY_INITIAL_MS must not exceed INGEST_RETRY_MAX_MS/,
    );
  });

  it('reads the drain and refuses one that leaves less than a second of the shutdown bound', () => {
    expect(loadConfig({ ...AUTH, SHUTDOWN_DRAIN_MS: '0' }).lifecycle.shutdownDrainMs).toBe(0);
    expect(loadConfig({ ...AUTH, SHUTDOWN_DRAIN_MS: '9000', SHUTDOWN_TIMEOUT_MS: '10000' }).lifecycle).toMatchObject({
      shutdownDrainMs: 9000,
      shutdownTimeoutMs: 10000,
    });
    for (const drain of ['9001', '10000', '20000']) {
      expect(() => loadConfig({ ...AUTH, SHUTDOWN_DRAIN_MS: drain, SHUTDOWN_TIMEOUT_MS: '10000' })).toThrow(
        /SHUTDOWN_DRAIN_MS must be at least 1000 ms less than SHUTDOWN_TIMEOUT_MS/,
      );
    }
    expect(() => loadConfig({ ...AUTH, SHUTDOWN_DRAIN_MS: 'soon' })).toThrow(/SHUTDOWN_DRAIN_MS/);
  });

  it('reads the watch limit, 10,000 by default', () => {
    expect(loadConfig({ ...AUTH }).http.maxHeldWatches).toBe(10000);
    expect(loadConfig({ ...AUTH, WATCH_MAX_HELD: '50' }).http.maxHeldWatches).toBe(50);
    expect(() => loadConfig({ ...AUTH, WATCH_MAX_HELD: '0' })).toThrow(/WATCH_MAX_HELD/);
  });

  describe('the Conductor bridge', () => {
    const BRIDGE = { CONDUCTOR_URL: 'http://conductor:8080/', BRIDGE_WEBHOOK_TOKEN: 'a-shared-secret-123' };

    it('is off without CONDUCTOR_URL', () => {
      expect(loadConfig({ ...AUTH }).bridge).toBeUndefined();
    });

    it('is on with CONDUCTOR_URL and a webhook token, with the documented defaults', () => {
      expect(loadConfig({ ...AUTH, ...BRIDGE }).bridge).toEqual({
        conductorUrl: 'http://conductor:8080',
        conductorTimeoutMs: 2000,
        webhookHeader: 'x-webhook-token',
        webhookToken: 'a-shared-secret-123',
        rereadDelayMs: 1000,
        answerTimeoutMs: 4000,
        queueLimit: 1000,
        reconcileIntervalMs: 30000,
        reconcileWindowMs: 600000,
        conductorRate: 50,
      });
      expect(loadConfig({ ...AUTH, ...BRIDGE, CONDUCTOR_KEY_ID: 'k', CONDUCTOR_KEY_SECRET: 's' }).bridge?.conductorKey).toEqual({ id: 'k', secret: 's' });
    });

    it('refuses a bridge whose webhooks anyone could call, half an Orkes key, or a URL that is not one', () => {
      expect(() => loadConfig({ ...AUTH, CONDUCTOR_URL: 'http://conductor:8080' })).toThrow(/BRIDGE_WEBHOOK_TOKEN/);
      expect(() => loadConfig({ ...AUTH, ...BRIDGE, BRIDGE_WEBHOOK_TOKEN: 'short' })).toThrow(/BRIDGE_WEBHOOK_TOKEN/);
      expect(() => loadConfig({ ...AUTH, ...BRIDGE, CONDUCTOR_KEY_ID: 'k' })).toThrow(/CONDUCTOR_KEY_SECRET/);
      for (const url of ['conductor:8080', 'ftp://conductor', 'http://conductor/api?x=1', 'http://a b']) {
        expect(() => loadConfig({ ...AUTH, ...BRIDGE, CONDUCTOR_URL: url })).toThrow(/CONDUCTOR_URL/);
      }
      expect(() => loadConfig({ ...AUTH, ...BRIDGE, BRIDGE_WEBHOOK_HEADER: 'X Token' })).toThrow(/BRIDGE_WEBHOOK_HEADER/);
    });
  });

  it('reads the keep-alive timeout', () => {
    expect(loadConfig({ ...AUTH, HTTP_KEEP_ALIVE_TIMEOUT_MS: '620000' }).http.keepAliveTimeoutMs).toBe(620000);
    expect(() => loadConfig({ ...AUTH, HTTP_KEEP_ALIVE_TIMEOUT_MS: '10' })).toThrow(/HTTP_KEEP_ALIVE_TIMEOUT_MS/);
  });

  it('never echoes a rejected value, which may be a secret', () => {
    expect(() => loadConfig({ ...AUTH, AUTH_JWT_SECRET: 'hunter2' })).toThrow(/^(?!.*hunter2)/s);
  });

  it('refuses to start with no way to authenticate', () => {
    expect(() => loadConfig({})).toThrow(/no way to authenticate/);
  });

  it('requires a JWT secret when keys are configured', () => {
    expect(() => loadConfig({ AUTH_KEYS: 'k:s' })).toThrow(/AUTH_JWT_SECRET is required/);
  });

  it('reads tokens from AUTH_TOKENS_FILE, skipping blanks and comments', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'tc-')), 'tokens');
    writeFileSync(file, '# ops tokens\nfile-token-1\n\n  file-token-2  \n');
    expect(loadConfig({ AUTH_TOKENS_FILE: file }).auth.tokens).toEqual(['file-token-1', 'file-token-2']);
  });

  it('refuses a static token longer than a request may present, naming where it came from but not the token', () => {
    const long = 't'.repeat(4097);
    expect(() => loadConfig({ AUTH_TOKENS: `ok,${long}` })).toThrow(/AUTH_TOKENS holds a token longer than 4096 characters/);
    expect(() => loadConfig({ AUTH_TOKENS: `ok,${long}` })).toThrow(/^(?!.*tttt)/s);
    const file = join(mkdtempSync(join(tmpdir(), 'tc-')), 'tokens');
    writeFileSync(file, `ok\n${long}\n`);
    expect(() => loadConfig({ AUTH_TOKENS_FILE: file })).toThrow(/AUTH_TOKENS_FILE holds a token longer than 4096 characters/);
    expect(loadConfig({ AUTH_TOKENS: 't'.repeat(4096) }).auth.tokens).toEqual(['t'.repeat(4096)]);
  });

  it('names AUTH_TOKENS_FILE when it cannot be read', () => {
    expect(() => loadConfig({ AUTH_TOKENS_FILE: '/nonexistent/tokens' })).toThrow(/AUTH_TOKENS_FILE: cannot read/);
  });
});
