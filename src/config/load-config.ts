import { readFileSync } from 'node:fs';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { assertAuthConfig } from '../auth/assert-auth-config.js';
import { AppConfig, BridgeConfig, RedisClusterConfig } from './app-config.js';
import { ConfigError } from './config-error.js';
import { Environment } from './environment.js';
import { parseClusterNodes } from './redis-cluster-nodes.js';

const list = (value: string | undefined): string[] =>
  (value ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);

function readTokensFile(path: string | undefined): string[] {
  if (!path) return [];
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`AUTH_TOKENS_FILE: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !line.startsWith('#'));
}

/** What a shutdown needs after the drain: finishing in-flight requests, committing, leaving the group. */
const MIN_SHUTDOWN_AFTER_DRAIN_MS = 1000;

/**
 * Validates the environment and returns the typed configuration. Throws `ConfigError` whose
 * message is one line naming each bad variable. Values are never echoed: some are secrets.
 * `auth: false` skips the rule that some token be configured, for a process that serves no requests.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, { auth: checkAuth = true }: { auth?: boolean } = {}): AppConfig {
  const raw: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && value !== '') raw[name] = value;
  }
  const parsed = plainToInstance(Environment, raw, { exposeDefaultValues: true });
  const errors = validateSync(parsed, { whitelist: true, forbidUnknownValues: true });
  if (errors.length > 0) {
    const problems = errors.map((error) => Object.values(error.constraints ?? {}).join(", ") || `${error.property} is invalid`);
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }

  const inlineTokens = list(parsed.AUTH_TOKENS);
  const tokens = [...inlineTokens, ...readTokensFile(parsed.AUTH_TOKENS_FILE)];
  const keys = new Map(
    list(parsed.AUTH_KEYS).map((pair) => {
      const at = pair.indexOf(':');
      return [pair.slice(0, at), pair.slice(at + 1)] as const;
    }),
  );
  const auth = { tokens, keys, jwtSecret: parsed.AUTH_JWT_SECRET, jwtTtlSeconds: parsed.AUTH_JWT_TTL_SECONDS };
  // The rebuild command serves no requests: it runs with the service's environment, or without auth.
  if (checkAuth) assertAuthConfig(auth, (index) => (index < inlineTokens.length ? 'AUTH_TOKENS' : 'AUTH_TOKENS_FILE'));
  if (parsed.INGEST_RETRY_INITIAL_MS > parsed.INGEST_RETRY_MAX_MS) {
    throw new ConfigError('invalid configuration: INGEST_RETRY_INITIAL_MS must not exceed INGEST_RETRY_MAX_MS');
  }
  // The drain is part of the shutdown bound; the rest closes connections, commits and leaves the group.
  if (parsed.SHUTDOWN_DRAIN_MS > parsed.SHUTDOWN_TIMEOUT_MS - MIN_SHUTDOWN_AFTER_DRAIN_MS) {
    throw new ConfigError(
      `invalid configuration: SHUTDOWN_DRAIN_MS must be at least ${MIN_SHUTDOWN_AFTER_DRAIN_MS} ms less than SHUTDOWN_TIMEOUT_MS`,
    );
  }
  // PORT 0 (any free port) cannot collide; the same fixed port would serve /metrics publicly or not at all.
  if (parsed.METRICS_PORT !== undefined && parsed.METRICS_PORT === parsed.PORT) {
    throw new ConfigError('invalid configuration: METRICS_PORT must differ from PORT: /metrics is never served on the public port');
  }
  const cluster = parsed.REDIS_CLUSTER_NODES === undefined ? undefined : redisCluster(parsed, raw.REDIS_URL !== undefined);

  return {
    http: { port: parsed.PORT, missingTaskStatus: parsed.READ_MISSING_TASK_STATUS, keepAliveTimeoutMs: parsed.HTTP_KEEP_ALIVE_TIMEOUT_MS, maxHeldWatches: parsed.WATCH_MAX_HELD },
    kafka: {
      brokers: list(parsed.KAFKA_BROKERS),
      clientId: parsed.KAFKA_CLIENT_ID,
      topic: parsed.KAFKA_TOPIC,
      dlqTopic: parsed.KAFKA_DLQ_TOPIC,
      groupId: parsed.KAFKA_GROUP_ID,
      topicPartitions: parsed.KAFKA_TOPIC_PARTITIONS,
      replicationFactor: parsed.KAFKA_REPLICATION_FACTOR,
      sessionTimeoutMs: parsed.KAFKA_SESSION_TIMEOUT_MS,
    },
    redis: {
      url: parsed.REDIS_URL,
      keyPrefix: parsed.REDIS_KEY_PREFIX,
      commandTimeoutMs: parsed.REDIS_COMMAND_TIMEOUT_MS,
      ...(cluster && { cluster }),
    },
    projection: {
      tombstoneTtlSeconds: parsed.PROJECTION_TOMBSTONE_TTL_SECONDS,
      ...(parsed.PROJECTION_TERMINAL_TTL_SECONDS !== undefined && { terminalTtlSeconds: parsed.PROJECTION_TERMINAL_TTL_SECONDS }),
    },
    ingest: { retryInitialMs: parsed.INGEST_RETRY_INITIAL_MS, retryMaxMs: parsed.INGEST_RETRY_MAX_MS },
    auth,
    lifecycle: { shutdownTimeoutMs: parsed.SHUTDOWN_TIMEOUT_MS, shutdownDrainMs: parsed.SHUTDOWN_DRAIN_MS },
    log: { level: parsed.LOG_LEVEL, format: parsed.LOG_FORMAT },
    metrics: parsed.METRICS_PORT === undefined ? {} : { port: parsed.METRICS_PORT },
    ...(parsed.CONDUCTOR_URL !== undefined && { bridge: bridgeConfig(parsed) }),
  };
}

/** The Conductor bridge's settings: its webhooks must be authenticated, and an Orkes key comes whole. */
function bridgeConfig(parsed: Environment): BridgeConfig {
  if (parsed.BRIDGE_WEBHOOK_TOKEN === undefined) {
    throw new ConfigError('invalid configuration: CONDUCTOR_URL needs BRIDGE_WEBHOOK_TOKEN, the value Conductor sends in BRIDGE_WEBHOOK_HEADER (its header-prefer-value)');
  }
  if ((parsed.CONDUCTOR_KEY_ID === undefined) !== (parsed.CONDUCTOR_KEY_SECRET === undefined)) {
    throw new ConfigError('invalid configuration: CONDUCTOR_KEY_ID and CONDUCTOR_KEY_SECRET are set together (an Orkes access key) or not at all');
  }
  return {
    conductorUrl: parsed.CONDUCTOR_URL!.replace(/\/+$/, ''),
    ...(parsed.CONDUCTOR_KEY_ID !== undefined && { conductorKey: { id: parsed.CONDUCTOR_KEY_ID, secret: parsed.CONDUCTOR_KEY_SECRET! } }),
    conductorTimeoutMs: parsed.CONDUCTOR_TIMEOUT_MS,
    webhookHeader: parsed.BRIDGE_WEBHOOK_HEADER.toLowerCase(),
    webhookToken: parsed.BRIDGE_WEBHOOK_TOKEN,
    rereadDelayMs: parsed.BRIDGE_REREAD_DELAY_MS,
    answerTimeoutMs: parsed.BRIDGE_ANSWER_TIMEOUT_MS,
    queueLimit: parsed.BRIDGE_QUEUE_LIMIT,
    reconcileIntervalMs: parsed.BRIDGE_RECONCILE_INTERVAL_MS,
    reconcileWindowMs: parsed.BRIDGE_RECONCILE_WINDOW_MS,
    conductorRate: parsed.BRIDGE_CONDUCTOR_RATE,
  };
}

/**
 * The cluster of REDIS_CLUSTER_NODES. One Redis or the other: a REDIS_URL beside it would be
 * silently ignored. The key prefix may not hold a hash tag (`{...}`): Redis Cluster would then
 * hash every key by the tag alone, and every task would land on one master.
 */
function redisCluster(parsed: Environment, urlSet: boolean): RedisClusterConfig {
  if (urlSet) throw new ConfigError('invalid configuration: REDIS_URL and REDIS_CLUSTER_NODES are exclusive; set REDIS_URL for a standalone Redis or REDIS_CLUSTER_NODES for a cluster');
  if (hasHashTag(parsed.REDIS_KEY_PREFIX)) {
    throw new ConfigError('invalid configuration: REDIS_KEY_PREFIX may not contain a hash tag ({...}) with REDIS_CLUSTER_NODES: every key would hash to one slot');
  }
  return parseClusterNodes(parsed.REDIS_CLUSTER_NODES!);
}

/** Redis Cluster's rule: the first `{`, then the first `}` after it, with something between. */
function hasHashTag(prefix: string): boolean {
  const open = prefix.indexOf('{');
  return open !== -1 && prefix.indexOf('}', open + 1) > open + 1;
}
