import { setTimeout as sleep } from 'node:timers/promises';
import { BeforeApplicationShutdown, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import type { Consumer } from 'kafkajs';
import { AppConfig } from '../config/app-config.js';
import { KafkaClient } from '../kafka/kafka-client.js';
import { TopicProvisioner } from '../kafka/topic-provisioner.js';
import { IngestService } from './ingest.service.js';
import { RetryBackoff } from './retry-backoff.js';

/**
 * Batches of different partitions handled at once, so one batch's decoding overlaps another's
 * Redis round trip. Measured on 2 cores, 1, 2 and 4 were within noise of each other: ingest is
 * bound by Redis and CPU there, not by waiting.
 */
const PARTITIONS_CONSUMED_CONCURRENTLY = 2;
/** Fetch long-poll: short, so a stop does not wait long for an idle fetch to return. */
const MAX_FETCH_WAIT_MS = 1000;
/**
 * Larger fetches than kafkajs's defaults (1 MiB per partition, 10 MiB in all). A batch applies only
 * each task's last event, so while catching up on a backlog a larger batch means fewer Redis
 * writes: on 20,000 seed-shaped events for 2,000 tasks, 4 MiB batches made 4,000 script calls
 * instead of 14,000, and ingest about 1.7x as fast. The cost is memory and, after a crash, a
 * larger batch to consume again.
 */
const MAX_BYTES_PER_PARTITION = 4 * 1024 * 1024;
const MAX_BYTES_PER_FETCH = 16 * 1024 * 1024;
/**
 * A consumer that stays up this long after joining its group has shown that it works: only then
 * does the backoff between restarts start over. A crash that recurs right after every join keeps
 * growing it instead.
 */
const STABLE_AFTER_JOIN_MS = 60_000;

/**
 * The kafkajs consumer of the source topic. Thin: lifecycle and recovery only; each batch goes to
 * `IngestService`.
 *
 * Starts in the background after boot, so the read API comes up even when Kafka is down. kafkajs
 * restarts the consumer after a crash; when it will not (a non-retriable error), this restarts it
 * itself with backoff. On shutdown the batch in flight finishes, its offsets are committed, the
 * group is left and the connections close, all within a bound.
 */
@Injectable()
export class TaskEventConsumer implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('IngestConsumer');
  private readonly stopping = new AbortController();
  private readonly startBackoff = new RetryBackoff(1000, 30_000);
  private consumer: Consumer | undefined;
  private starting: Promise<void> = Promise.resolve();
  private restartTimer: NodeJS.Timeout | undefined;
  private stableTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly client: KafkaClient,
    private readonly provisioner: TopicProvisioner,
    private readonly ingest: IngestService,
    private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.starting = this.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopping.abort();
    clearTimeout(this.restartTimer);
    clearTimeout(this.stableTimer);
    this.ingest.stopRetrying();
    // Leave the rest of the shutdown budget to closing Redis and the producers.
    const boundMs = Math.floor((this.config.lifecycle.shutdownTimeoutMs * 2) / 3);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), boundMs)));
    const outcome = await Promise.race([this.stop().then(() => 'stopped' as const), timedOut]);
    clearTimeout(timer);
    if (outcome === 'timeout') this.logger.warn(`kafka consumer did not stop within ${boundMs} ms; closing anyway`);
  }

  private async stop(): Promise<void> {
    const consumer = this.consumer;
    this.consumer = undefined;
    // kafkajs lets the batch in flight finish and commits what it resolved before leaving the group.
    await consumer?.disconnect().catch((error: Error) => this.logger.warn(`kafka consumer did not disconnect cleanly: ${error.message}`));
    await this.starting;
    this.logger.log('kafka consumer stopped');
  }

  private async start(): Promise<void> {
    try {
      await untilAborted(this.provisioner.ready, this.stopping.signal);
    } catch {
      return;
    }
    const { topic, groupId } = this.config.kafka;
    while (!this.stopping.signal.aborted) {
      const consumer = this.createConsumer();
      this.consumer = consumer;
      try {
        await consumer.connect();
        await consumer.subscribe({ topics: [topic], fromBeginning: true });
        if (!this.stopping.signal.aborted) {
          await consumer.run({
            // Offsets are resolved by IngestService once a batch is stored; kafkajs commits them
            // right after each batch. Never resolve automatically: a batch abandoned at shutdown
            // must stay uncommitted.
            eachBatchAutoResolve: false,
            autoCommit: true,
            partitionsConsumedConcurrently: PARTITIONS_CONSUMED_CONCURRENTLY,
            eachBatch: (payload) => this.ingest.handleBatch(payload),
          });
        }
        // A stop during connect or run may have disconnected a consumer that kafkajs then
        // (re)connected: disconnect it again, or its connections would outlive the service.
        if (this.stopping.signal.aborted) {
          await consumer.disconnect().catch(() => undefined);
          return;
        }
        this.logger.log(`kafka consumer started: topic ${topic}, group ${groupId}`);
        return;
      } catch (error) {
        if (this.consumer === consumer) this.consumer = undefined;
        await consumer.disconnect().catch(() => undefined);
        if (this.stopping.signal.aborted) return;
        const delayMs = this.startBackoff.next();
        this.logger.warn(`kafka consumer could not start, retrying in ${delayMs} ms: ${(error as Error).message}`);
        await sleep(delayMs, undefined, { signal: this.stopping.signal }).catch(() => undefined);
      }
    }
  }

  private createConsumer(): Consumer {
    const { groupId, sessionTimeoutMs } = this.config.kafka;
    const consumer = this.client.kafka.consumer({
      groupId,
      sessionTimeout: sessionTimeoutMs,
      heartbeatInterval: Math.min(3000, Math.floor(sessionTimeoutMs / 3)),
      maxWaitTimeInMs: MAX_FETCH_WAIT_MS,
      maxBytesPerPartition: MAX_BYTES_PER_PARTITION,
      maxBytes: MAX_BYTES_PER_FETCH,
      allowAutoTopicCreation: false,
      retry: {
        retries: 5,
        // Asked after a retriable crash: restart, unless the service is stopping.
        restartOnFailure: async () => !this.stopping.signal.aborted,
      },
    });
    const { CRASH, GROUP_JOIN } = consumer.events;
    consumer.on(CRASH, ({ payload: { error, restart } }) => {
      clearTimeout(this.stableTimer);
      this.stableTimer = undefined;
      if (this.stopping.signal.aborted) return;
      if (restart) {
        this.logger.warn(`kafka consumer crashed, kafkajs restarts it: ${error.message}`);
        return;
      }
      const delayMs = this.startBackoff.next();
      this.logger.error(`kafka consumer crashed and kafkajs will not restart it; restarting in ${delayMs} ms: ${error.message}`);
      this.restartTimer = setTimeout(() => this.restart(consumer), delayMs);
    });
    consumer.on(GROUP_JOIN, ({ payload: { memberAssignment } }) => {
      if (this.startBackoff.attempts > 0 && this.stableTimer === undefined) {
        this.stableTimer = setTimeout(() => {
          this.stableTimer = undefined;
          this.startBackoff.reset();
        }, STABLE_AFTER_JOIN_MS);
      }
      const partitions = memberAssignment[this.config.kafka.topic] ?? [];
      this.logger.log(`kafka consumer joined group ${groupId}; consuming partitions [${partitions.join(', ')}]`);
    });
    return consumer;
  }

  private restart(crashed: Consumer): void {
    if (this.stopping.signal.aborted || this.consumer !== crashed) return;
    this.consumer = undefined;
    this.starting = crashed
      .disconnect()
      .catch(() => undefined)
      .then(() => this.start());
  }
}

/** `promise`, or a rejection as soon as `signal` aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
