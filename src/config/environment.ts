import { Transform } from 'class-transformer';
import {
  IsIn,
  IsInt,
  IsNotEmpty,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
} from 'class-validator';

const toInt = ({ value }: { value: unknown }) =>
  typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : value;

const TOPIC = /^[A-Za-z0-9._-]{1,249}$/;

/**
 * The raw process environment, as the service accepts it. Every variable the service reads is
 * declared here; `loadConfig` validates it at boot and maps it into `AppConfig`.
 */
export class Environment {
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(65535)
  PORT: number = 3000;

  @IsOptional() @Transform(toInt) @IsIn([404, 204], { message: '$property must be 404 or 204' })
  READ_MISSING_TASK_STATUS: 404 | 204 = 404;

  // Longer than the balancer's idle timeouts (deploy/haproxy/haproxy.cfg; AWS ALB's default 60 s).
  @IsOptional() @Transform(toInt) @IsInt() @Min(1000) @Max(3600000)
  HTTP_KEEP_ALIVE_TIMEOUT_MS: number = 65000;

  // Each held watch is an open connection: the process's open-files limit must be above this.
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(1_000_000)
  WATCH_MAX_HELD: number = 10000;

  @IsOptional() @IsString() @Matches(/^\s*[^,\s]+:\d{1,5}\s*(,\s*[^,\s]+:\d{1,5}\s*)*$/, {
    message: '$property must be a comma-separated list of host:port',
  })
  KAFKA_BROKERS: string = 'localhost:9092';

  @IsOptional() @IsString() @Matches(TOPIC, { message: '$property must be a valid Kafka topic name' })
  KAFKA_TOPIC: string = 'task-updates';

  @IsOptional() @IsString() @Matches(TOPIC, { message: '$property must be a valid Kafka topic name' })
  KAFKA_DLQ_TOPIC: string = 'task-updates.dlq';

  @IsOptional() @IsString() @IsNotEmpty() @MaxLength(249)
  KAFKA_GROUP_ID: string = 'task-cache';

  @IsOptional() @IsString() @IsNotEmpty() @MaxLength(249)
  KAFKA_CLIENT_ID: string = 'task-cache';

  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(10000)
  KAFKA_TOPIC_PARTITIONS: number = 6;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(32767)
  KAFKA_REPLICATION_FACTOR: number = 1;

  // The broker bounds it by group.min/max.session.timeout.ms (6 s and 30 min by default).
  @IsOptional() @Transform(toInt) @IsInt() @Min(6000) @Max(1800000)
  KAFKA_SESSION_TIMEOUT_MS: number = 30000;

  @IsOptional() @IsString() @Matches(/^rediss?:\/\/[^\s]+$/, { message: '$property must be a redis:// or rediss:// URL' })
  REDIS_URL: string = 'redis://localhost:6379';

  // Its form (host:port or redis[s]:// URLs, alike) is parseClusterNodes's; exclusive with REDIS_URL.
  @IsOptional() @IsString()
  REDIS_CLUSTER_NODES?: string;

  @IsOptional() @IsString() @MaxLength(64) @Matches(/^[A-Za-z0-9_.:{}-]*$/, {
    message: '$property may only contain A-Z a-z 0-9 _ . : { } -',
  })
  REDIS_KEY_PREFIX: string = 'tc:';

  @IsOptional() @Transform(toInt) @IsInt() @Min(50) @Max(60000)
  REDIS_COMMAND_TIMEOUT_MS: number = 2000;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(365 * 24 * 3600)
  PROJECTION_TOMBSTONE_TTL_SECONDS: number = 7 * 24 * 3600;

  // Unset: finished tasks are kept forever. At most 10 years.
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(10 * 365 * 24 * 3600)
  PROJECTION_TERMINAL_TTL_SECONDS?: number;

  @IsOptional() @Transform(toInt) @IsInt() @Min(10) @Max(60000)
  INGEST_RETRY_INITIAL_MS: number = 100;

  @IsOptional() @Transform(toInt) @IsInt() @Min(10) @Max(300000)
  INGEST_RETRY_MAX_MS: number = 2000;

  @IsOptional() @IsString()
  AUTH_TOKENS?: string;

  @IsOptional() @IsString() @IsNotEmpty()
  AUTH_TOKENS_FILE?: string;

  @IsOptional() @IsString() @Matches(/^\s*[^:,\s]+:[^,\s]+\s*(,\s*[^:,\s]+:[^,\s]+\s*)*$/, {
    message: '$property must be comma-separated keyId:secret pairs',
  })
  AUTH_KEYS?: string;

  // Its rules (length, required with AUTH_KEYS) are assertAuthConfig's.
  @IsOptional() @IsString()
  AUTH_JWT_SECRET?: string;

  @IsOptional() @Transform(toInt) @IsInt() @Min(60) @Max(7 * 24 * 3600)
  AUTH_JWT_TTL_SECONDS: number = 3600;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1000) @Max(120000)
  SHUTDOWN_TIMEOUT_MS: number = 15000;

  // HAProxy's fall (2) x inter (2 s) of deploy/haproxy/haproxy.cfg, plus a second of margin.
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(119000)
  SHUTDOWN_DRAIN_MS: number = 5000;

  // Unset: no metrics. Never the public PORT (load-config.ts).
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(65535)
  METRICS_PORT?: number;

  @IsOptional() @IsIn(['error', 'warn', 'log', 'debug', 'verbose'])
  LOG_LEVEL: 'error' | 'warn' | 'log' | 'debug' | 'verbose' = 'log';

  @IsOptional() @IsIn(['json', 'pretty'], { message: '$property must be json or pretty' })
  LOG_FORMAT: 'json' | 'pretty' = 'json';

  // The Conductor bridge: on with CONDUCTOR_URL, which then requires BRIDGE_WEBHOOK_TOKEN (load-config.ts).
  @IsOptional() @IsString() @MaxLength(2048) @Matches(/^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/, { message: '$property must be an http:// or https:// URL without query or fragment' })
  CONDUCTOR_URL?: string;

  @IsOptional() @IsString() @MaxLength(256)
  CONDUCTOR_KEY_ID?: string;

  @IsOptional() @IsString() @MaxLength(1024)
  CONDUCTOR_KEY_SECRET?: string;

  @IsOptional() @Transform(toInt) @IsInt() @Min(100) @Max(60000)
  CONDUCTOR_TIMEOUT_MS: number = 2000;

  @IsOptional() @IsString() @Matches(/^[A-Za-z0-9-]{1,64}$/, { message: '$property must be a header name (letters, digits, -)' })
  BRIDGE_WEBHOOK_HEADER: string = 'X-Webhook-Token';

  @IsOptional() @IsString() @Matches(/^[\x21-\x7e]{16,256}$/, { message: '$property must be 16 to 256 printable ASCII characters without spaces' })
  BRIDGE_WEBHOOK_TOKEN?: string;

  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(60000)
  BRIDGE_REREAD_DELAY_MS: number = 1000;

  @IsOptional() @Transform(toInt) @IsInt() @Min(100) @Max(60000)
  BRIDGE_ANSWER_TIMEOUT_MS: number = 4000;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(1_000_000)
  BRIDGE_QUEUE_LIMIT: number = 1000;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1000) @Max(86_400_000)
  BRIDGE_RECONCILE_INTERVAL_MS: number = 30000;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1000) @Max(7 * 86_400_000)
  BRIDGE_RECONCILE_WINDOW_MS: number = 600000;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(100000)
  BRIDGE_CONDUCTOR_RATE: number = 50;
}
