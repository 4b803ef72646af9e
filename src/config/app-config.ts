export abstract class HttpConfig {
  abstract readonly port: number;
  /**
   * The answer to a read of a task that is not in the projection: 404 with an ErrorResponse, as
   * Conductor since 3.21.20 answers, or 204 with no body, as earlier Conductor OSS did.
   */
  abstract readonly missingTaskStatus: 404 | 204;
  /**
   * How long an idle keep-alive connection stays open. It must outlast the idle timeout of every
   * client and load balancer in front, so that they, not the service, close an idle connection:
   * otherwise a request sent on a connection the service is closing at that moment fails.
   */
  abstract readonly keepAliveTimeoutMs: number;
  /**
   * How many watches (reads with `Prefer: wait`) the instance holds at once (WATCH_MAX_HELD); one
   * more is answered 503, retryable. Each holds a connection, so a file descriptor.
   */
  abstract readonly maxHeldWatches: number;
}

export abstract class KafkaConfig {
  abstract readonly brokers: string[];
  abstract readonly clientId: string;
  abstract readonly topic: string;
  abstract readonly dlqTopic: string;
  abstract readonly groupId: string;
  abstract readonly topicPartitions: number;
  abstract readonly replicationFactor: number;
  /** How long the group waits for a silent consumer before giving its partitions to another. */
  abstract readonly sessionTimeoutMs: number;
}

/** A Redis Cluster: where to start discovering it, and how to reach every node it has (REDIS_CLUSTER_NODES). */
export interface RedisClusterConfig {
  /** Seed nodes; the client learns the others, and who serves which slot, from them. */
  readonly nodes: readonly { readonly host: string; readonly port: number }[];
  readonly username?: string;
  readonly password?: string;
  readonly tls: boolean;
}

export abstract class RedisConfig {
  /** Standalone Redis (REDIS_URL); not used when `cluster` is set. */
  abstract readonly url: string;
  /** Redis Cluster (REDIS_CLUSTER_NODES): when set, the service uses it instead of `url`. */
  abstract readonly cluster?: RedisClusterConfig;
  abstract readonly keyPrefix: string;
  abstract readonly commandTimeoutMs: number;
}

export abstract class ProjectionConfig {
  /** How long the version marker of a task without a value (deleted, or expired on arrival) is kept. */
  abstract readonly tombstoneTtlSeconds: number;
  /**
   * Retention of finished tasks (PROJECTION_TERMINAL_TTL_SECONDS): a task whose latest event has a
   * terminal status expires this long after that event's Kafka timestamp. Unset: never.
   */
  abstract readonly terminalTtlSeconds?: number;
}

export abstract class IngestConfig {
  /** First and largest wait between attempts at a batch while Redis (or the DLQ) is unreachable. */
  abstract readonly retryInitialMs: number;
  abstract readonly retryMaxMs: number;
}

export abstract class AuthConfig {
  /** Static tokens from AUTH_TOKENS and AUTH_TOKENS_FILE, merged. */
  abstract readonly tokens: string[];
  /** keyId -> keySecret pairs that may exchange for a JWT at POST /api/token. */
  abstract readonly keys: ReadonlyMap<string, string>;
  abstract readonly jwtSecret?: string;
  abstract readonly jwtTtlSeconds: number;
}

export abstract class LifecycleConfig {
  /** Bound on a whole graceful shutdown, drain included; past it the process exits 1. */
  abstract readonly shutdownTimeoutMs: number;
  /**
   * After SIGTERM, how long the instance keeps serving (readiness already 503, every response with
   * `Connection: close`) so that load balancers notice before it stops accepting connections.
   */
  abstract readonly shutdownDrainMs: number;
}

/** Nest's level names, as LOG_LEVEL takes them, most severe first. */
export type LogLevelName = 'error' | 'warn' | 'log' | 'debug' | 'verbose';

export abstract class LogConfig {
  /** The least severe level written (LOG_LEVEL). */
  abstract readonly level: LogLevelName;
  /** `json`: one JSON object per line, for log collectors; `pretty`: text for a person at a terminal (LOG_FORMAT). */
  abstract readonly format: 'json' | 'pretty';
}

export abstract class MetricsConfig {
  /**
   * The port `/metrics` is served on (METRICS_PORT), apart from the public API so that it is never
   * exposed with it. Unset: no metrics are served and the read path records none.
   */
  abstract readonly port?: number;
}

/**
 * The bridge from a stock Conductor server (CONDUCTOR_URL; off without it): its webhooks are
 * received, each notified task is re-read from Conductor and produced to the source topic.
 */
export abstract class BridgeConfig {
  /** Conductor's base URL; its API is under `/api` (CONDUCTOR_URL). */
  abstract readonly conductorUrl: string;
  /** Orkes Conductor's access key (CONDUCTOR_KEY_ID, CONDUCTOR_KEY_SECRET), exchanged for a token; none for Conductor OSS. */
  abstract readonly conductorKey?: { readonly id: string; readonly secret: string };
  /** Each request to Conductor fails after this long (CONDUCTOR_TIMEOUT_MS). */
  abstract readonly conductorTimeoutMs: number;
  /** The header Conductor's webhooks carry (BRIDGE_WEBHOOK_HEADER, lower case) and its value (BRIDGE_WEBHOOK_TOKEN). */
  abstract readonly webhookHeader: string;
  abstract readonly webhookToken: string;
  /** A notified task is read again this long after each notification, and produced again (BRIDGE_REREAD_DELAY_MS; 0: never). */
  abstract readonly rereadDelayMs: number;
  /** How long a webhook may wait for its task to be produced before it is answered 503 (BRIDGE_ANSWER_TIMEOUT_MS). */
  abstract readonly answerTimeoutMs: number;
  /** Tasks waiting for or under a re-read; a notification past it is answered 503 (BRIDGE_QUEUE_LIMIT). */
  abstract readonly queueLimit: number;
  /** How often the tasks of recently active workflows are compared with Conductor (BRIDGE_RECONCILE_INTERVAL_MS). */
  abstract readonly reconcileIntervalMs: number;
  /** A workflow is recently active this long after its last notification (BRIDGE_RECONCILE_WINDOW_MS). */
  abstract readonly reconcileWindowMs: number;
  /** Requests per second to Conductor for workflow notifications and reconciliation (BRIDGE_CONDUCTOR_RATE). */
  abstract readonly conductorRate: number;
}

/**
 * The validated configuration of one service instance. Only `loadConfig` builds it from the
 * environment; tests build it directly. ConfigModule provides each of its slices (HttpConfig,
 * KafkaConfig, ...) by its own class token, so a class asks only for the slices it uses.
 */
export abstract class AppConfig {
  abstract readonly http: HttpConfig;
  abstract readonly kafka: KafkaConfig;
  abstract readonly redis: RedisConfig;
  abstract readonly projection: ProjectionConfig;
  abstract readonly ingest: IngestConfig;
  abstract readonly auth: AuthConfig;
  abstract readonly lifecycle: LifecycleConfig;
  abstract readonly metrics: MetricsConfig;
  abstract readonly log: LogConfig;
  /** Set only with CONDUCTOR_URL: the Conductor bridge is off otherwise. */
  abstract readonly bridge?: BridgeConfig;
}
