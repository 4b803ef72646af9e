export interface HttpConfig {
  readonly port: number;
  /**
   * The answer to a read of a task that is not in the projection: 404 with an ErrorResponse, as
   * Conductor since 3.21.20 answers, or 204 with no body, as earlier Conductor OSS did.
   */
  readonly missingTaskStatus: 404 | 204;
}

export interface KafkaConfig {
  readonly brokers: string[];
  readonly clientId: string;
  readonly topic: string;
  readonly dlqTopic: string;
  readonly groupId: string;
  readonly topicPartitions: number;
  readonly replicationFactor: number;
  /** How long the group waits for a silent consumer before giving its partitions to another. */
  readonly sessionTimeoutMs: number;
}

export interface RedisConfig {
  readonly url: string;
  readonly keyPrefix: string;
  readonly commandTimeoutMs: number;
}

export interface ProjectionConfig {
  readonly tombstoneTtlSeconds: number;
}

export interface IngestConfig {
  /** First and largest wait between attempts at a batch while Redis (or the DLQ) is unreachable. */
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
}

export interface AuthConfig {
  /** Static tokens from AUTH_TOKENS and AUTH_TOKENS_FILE, merged. */
  readonly tokens: string[];
  /** keyId -> keySecret pairs that may exchange for a JWT at POST /api/token. */
  readonly keys: ReadonlyMap<string, string>;
  readonly jwtSecret?: string;
  readonly jwtTtlSeconds: number;
}

export interface LifecycleConfig {
  readonly shutdownTimeoutMs: number;
  readonly logLevel: 'error' | 'warn' | 'log' | 'debug' | 'verbose';
}

/**
 * The validated configuration of one service instance. Only `loadConfig` builds it from the
 * environment; tests build it directly. Injected by class token.
 */
export abstract class AppConfig {
  abstract readonly http: HttpConfig;
  abstract readonly kafka: KafkaConfig;
  abstract readonly redis: RedisConfig;
  abstract readonly projection: ProjectionConfig;
  abstract readonly ingest: IngestConfig;
  abstract readonly auth: AuthConfig;
  abstract readonly lifecycle: LifecycleConfig;
}
