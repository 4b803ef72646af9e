import { Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { MetricsConfig } from '../config/app-config.js';
import { ReadLatencyHistogram } from './read-latency-histogram.js';

/** Why a request was refused a token, or POST /api/token refused credentials (`reason` label). */
export type AuthFailureReason = 'token_missing' | 'token_invalid' | 'token_expired' | 'invalid_credentials';

/**
 * How a watch (a read with `Prefer: wait`) ended (`outcome` label): changed (answered because
 * the task differed from the client's copy, at once, while held or when released), unchanged (its
 * wait ended), drained (released unchanged by a drain), abandoned (the client went away), failed
 * (Redis could not be read), refused (the instance held its limit of watches).
 */
export type WatchOutcome = 'changed' | 'unchanged' | 'drained' | 'abandoned' | 'failed' | 'refused';

/** What a Redis command was doing when it failed (`operation` label). */
export type RedisOperation = 'read' | 'apply' | 'pointer';

const BATCH_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Distinct taskIds per batch read, up to its limit (MAX_BATCH_READ_IDS). */
const BATCH_READ_SIZE_BUCKETS = [1, 10, 50, 100, 250, 500, 1000];
/** A batch read takes about a read's time plus its ids' share of one round trip. */
const BATCH_READ_DURATION_BUCKETS = [0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
/** From tens of milliseconds (live) to an hour (catching up on a backlog). */
const FRESHNESS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

/**
 * The service's Prometheus metrics, one registry per instance of the application. Each part of the
 * service counts what it alone knows, here: the read route its reads, the token verifier its
 * refusals, ingest its events and batches, the projection its Redis failures. Gauges of state
 * (lag aside) are read when scraped (see `InstanceGauges`); `/metrics` is served apart from the
 * public API, on METRICS_PORT (see `MetricsServer`).
 *
 * Without METRICS_PORT nothing is served, process metrics are not collected and the read route
 * records nothing (`recordsReads`): the read path then does no metrics work at all. Everything
 * else counts anyway: its cost is per batch or per refusal, not per read.
 */
@Injectable()
export class TaskCacheMetrics {
  readonly registry = new Registry();
  /** Whether the read route observes its reads: only when they can be scraped. */
  readonly recordsReads: boolean;

  /** Task reads by route and status; its `_count` is the read count. Measured on the front route itself. */
  readonly readDuration = new ReadLatencyHistogram();
  readonly authFailures: Counter<'reason'>;
  /** Batch reads by status, timed on the route; recorded with or without METRICS_PORT (per request of up to 1,000 ids, not per read). */
  readonly batchReadDuration: Histogram<'status'>;
  readonly batchReadSize: Histogram;
  readonly batchReadUnprocessed: Counter;
  readonly watchesHeld: Gauge;
  readonly watches: Counter<'outcome'>;
  readonly taskChangesPublished: Counter;
  readonly taskChangePublishFailures: Counter;
  readonly taskChangesReceived: Counter;
  readonly taskChangeSubscriptions: Counter;

  readonly eventsConsumed: Counter;
  readonly eventsApplied: Counter;
  readonly eventsStale: Counter;
  readonly eventsRetained: Counter;
  readonly eventsExpiredOnArrival: Counter;
  readonly eventsDeadLettered: Counter<'reason'>;
  readonly deadLettersUndeliverable: Counter<'reason'>;
  readonly batchApplyDuration: Histogram;
  readonly consumerLag: Gauge<'topic' | 'partition'>;
  readonly batchHeld: Gauge<'topic' | 'partition'>;
  readonly eventFreshness: Histogram;

  readonly redisCommandErrors: Counter<'operation'>;

  readonly bridgeNotifications: Counter<'kind' | 'outcome'>;
  readonly bridgeNotificationDuration: Histogram<'kind'>;
  readonly bridgeRereads: Counter<'reason' | 'outcome'>;
  readonly bridgeFailures: Counter;
  readonly bridgeQueued: Gauge;
  readonly bridgeRecentWorkflows: Gauge;

  constructor(config: MetricsConfig) {
    this.recordsReads = config.port !== undefined;
    const registers = [this.registry];
    if (config.port !== undefined) collectDefaultMetrics({ register: this.registry });

    this.registry.registerMetric(this.readDuration.asMetric());
    this.authFailures = new Counter({
      name: 'taskcache_auth_failures_total',
      help: 'Requests refused for their token (token_missing, token_invalid, token_expired), and POST /api/token refused for its credentials (invalid_credentials)',
      labelNames: ['reason'],
      registers,
    });

    this.batchReadDuration = new Histogram({
      name: 'taskcache_batch_read_duration_seconds',
      help: 'Batch reads (POST /api/tasks/batch) by status, timed from the request reaching the route to its response being written',
      labelNames: ['status'],
      buckets: BATCH_READ_DURATION_BUCKETS,
      registers,
    });
    this.batchReadSize = new Histogram({
      name: 'taskcache_batch_read_size',
      help: 'Distinct taskIds read per valid batch read (POST /api/tasks/batch), duplicates counted once',
      buckets: BATCH_READ_SIZE_BUCKETS,
      registers,
    });
    this.batchReadUnprocessed = new Counter({
      name: 'taskcache_batch_read_unprocessed_total',
      help: 'TaskIds a batch read answered as unprocessed, its answer budget (16 MiB of task values) spent, for the client to ask again',
      registers,
    });

    this.watchesHeld = new Gauge({
      name: 'taskcache_watches_held',
      help: 'Reads with Prefer: wait held open on this instance, waiting for their task to change',
      registers,
    });
    this.watches = new Counter({
      name: 'taskcache_watches_total',
      help: 'Reads with Prefer: wait (watches), by how they ended: changed, unchanged (the wait ended), drained (released unchanged by a drain), abandoned (client gone), failed (Redis unreadable), refused (WATCH_MAX_HELD reached)',
      labelNames: ['outcome'],
      registers,
    });
    this.taskChangesPublished = new Counter({
      name: 'taskcache_task_changes_published_total',
      help: 'TaskIds ingest announced as changed on the change channels (SPUBLISH), for the watches of every instance',
      registers,
    });
    this.taskChangePublishFailures = new Counter({
      name: 'taskcache_task_change_publish_failures_total',
      help: 'TaskIds whose change could not be announced (Redis unreachable); watches of them see the change when their wait ends',
      registers,
    });
    this.taskChangesReceived = new Counter({
      name: 'taskcache_task_changes_received_total',
      help: 'TaskIds received on the change channels, watched here or not',
      registers,
    });
    this.taskChangeSubscriptions = new Counter({
      name: 'taskcache_task_change_subscriptions_total',
      help: 'Times a connection (re)subscribed to change channels: at start, after every reconnect or change of master; each re-checks every held watch against Redis',
      registers,
    });

    this.eventsConsumed = new Counter({
      name: 'taskcache_events_consumed_total',
      help: 'Task-update events fetched from the source topic and handed to ingest (a batch consumed again after a rebalance or restart counts again)',
      registers,
    });
    this.eventsApplied = new Counter({
      name: 'taskcache_events_applied_total',
      help: 'Events that changed the projection (once per generation written, two during a rebuild)',
      registers,
    });
    this.eventsStale = new Counter({
      name: 'taskcache_events_stale_total',
      help: 'Valid events that did not change the projection: older than the stored version, superseded by a later event of the same task in their batch, or already applied by an attempt that timed out and that Redis carried out anyway',
      registers,
    });
    this.eventsRetained = new Counter({
      name: 'taskcache_events_retained_total',
      help: 'Applied events of finished tasks written with an expiry (PROJECTION_TERMINAL_TTL_SECONDS), once per generation written; Redis deletes them at their expiry (INFO stats expired_keys)',
      registers,
    });
    this.eventsExpiredOnArrival = new Counter({
      name: 'taskcache_events_expired_on_arrival_total',
      help: 'Applied events of finished tasks already past their retention (a replay, a rebuild, a consumer behind by more than the retention): their value is not written, only their version is kept, once per generation written',
      registers,
    });
    this.eventsDeadLettered = new Counter({
      name: 'taskcache_events_dead_lettered_total',
      help: 'Events published to the dead-letter topic, by the reason code of their x-dlq-reason header',
      labelNames: ['reason'],
      registers,
    });
    this.deadLettersUndeliverable = new Counter({
      name: 'taskcache_dead_letters_undeliverable_total',
      help: 'Invalid events the dead-letter topic refused even without value and headers, by reason code: skipped (logged at error), still in the source topic',
      labelNames: ['reason'],
      registers,
    });
    this.batchApplyDuration = new Histogram({
      name: 'taskcache_batch_apply_duration_seconds',
      help: 'Time from a fetched batch reaching ingest to its offsets being resolved: decoding, applying to Redis and dead-lettering, retries during an outage included',
      buckets: BATCH_BUCKETS,
      registers,
    });
    this.consumerLag = new Gauge({
      name: 'taskcache_consumer_lag_messages',
      help: "Offsets of the source topic not yet applied, per partition this instance consumes: the high watermark of the partition's last fetched batch minus the next offset to apply",
      labelNames: ['topic', 'partition'],
      registers,
    });
    this.batchHeld = new Gauge({
      name: 'taskcache_batch_held',
      help: 'Whether a batch of the partition is held uncommitted, retried because Redis or the dead-letter topic fails (1), or not (0); per partition this instance consumes, from its first batch on',
      labelNames: ['topic', 'partition'],
      registers,
    });
    this.eventFreshness = new Histogram({
      name: 'taskcache_event_freshness_seconds',
      help: 'Time from an event being written to Kafka (its message timestamp) to it being applied to Redis (readable), per valid event',
      buckets: FRESHNESS_BUCKETS,
      registers,
    });

    this.redisCommandErrors = new Counter({
      name: 'taskcache_redis_command_errors_total',
      help: 'Redis commands that failed (unreachable, timed out or refused), by what they were for: read (a task read), apply (an ingest batch), pointer (the generation pointer)',
      labelNames: ['operation'],
      registers,
    });

    this.bridgeNotifications = new Counter({
      name: 'taskcache_bridge_notifications_total',
      help: "Conductor webhooks received by the bridge (CONDUCTOR_URL), by kind (task, workflow) and outcome: accepted (200), unauthorized (no or wrong shared header), invalid (no valid id), busy (BRIDGE_QUEUE_LIMIT reached), timeout (not produced within BRIDGE_ANSWER_TIMEOUT_MS), failed (Conductor or Kafka failing)",
      labelNames: ['kind', 'outcome'],
      registers,
    });
    this.bridgeNotificationDuration = new Histogram({
      name: 'taskcache_bridge_notification_duration_seconds',
      help: "Time from a Conductor webhook reaching the bridge to its answer, by kind (task: the task re-read and acknowledged by Kafka; workflow: its tasks read). Conductor's webhook read timeout must stay above its tail (it is 300 ms unless set)",
      labelNames: ['kind'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 4, 8],
      registers,
    });
    this.bridgeRereads = new Counter({
      name: 'taskcache_bridge_rereads_total',
      help: "Tasks the bridge re-read from Conductor, by reason (notification, reread: the one that follows a notification, workflow, reconcile) and outcome: produced, unchanged (the projection already serves those bytes), missing (Conductor has no such task), refused (over 1 MiB, or not that task's JSON: not produced), failed, skipped (queue full)",
      labelNames: ['reason', 'outcome'],
      registers,
    });
    this.bridgeFailures = new Counter({
      name: 'taskcache_bridge_failures_total',
      help: 'Failed attempts of the bridge at reading Conductor or producing to Kafka, each retried with backoff',
      registers,
    });
    this.bridgeQueued = new Gauge({
      name: 'taskcache_bridge_queued_tasks',
      help: 'Tasks waiting for a re-read by the bridge or under one, or waiting for the re-read that follows a notification',
      registers,
    });
    this.bridgeRecentWorkflows = new Gauge({
      name: 'taskcache_bridge_recent_workflows',
      help: 'Workflows notified within BRIDGE_RECONCILE_WINDOW_MS, whose tasks the bridge reconciles every BRIDGE_RECONCILE_INTERVAL_MS',
      registers,
    });
  }

  /** The text a scrape answers, in Prometheus's exposition format. */
  exposition(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
