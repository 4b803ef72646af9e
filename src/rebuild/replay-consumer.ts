import { Injectable, Logger } from '@nestjs/common';
import type { Admin, EachBatchPayload } from 'kafkajs';
import { LogThrottle } from '../common/log-throttle.js';
import { RetryBackoff } from '../common/retry-backoff.js';
import { sleep } from '../common/sleep.js';
import { KafkaConfig } from '../config/app-config.js';
import { IngestService } from '../ingest/ingest.service.js';
import { FETCH_SETTINGS, PARTITIONS_CONSUMED_CONCURRENTLY } from '../ingest/task-event-consumer.js';
import { committedOffsets, offsetsBehind, PartitionOffsets, TopicRange, topicRange } from '../kafka/group-offsets.js';
import { KafkaClient } from '../kafka/kafka-client.js';
import { describeKafkaError, isRetriableKafkaError } from '../kafka/kafka-errors.js';

const PROGRESS_INTERVAL_MS = 1000;
/** A dead member of a killed rebuild holds a rerun's join until its session expires: keep it short. */
const SESSION_TIMEOUT_MS = 10_000;

/** The replay's span: from each partition's first offset up to the high watermarks read once every instance wrote the building generation. */
export type ReplayRange = TopicRange;

export interface ReplayOptions extends ReplayRange {
  readonly group: string;
  /** At most this many events per second; undefined: as fast as Redis takes them. */
  readonly maxEventsPerSecond?: number;
  readonly signal: AbortSignal;
  /** Offsets replayed so far (the group's committed offsets, from `start`), every second. */
  readonly onProgress: (replayed: number) => void;
}

/**
 * A rebuild's replay: a consumer group of its own reads the source topic from the earliest offset
 * up to the high watermarks taken at the rebuild's start, and applies it through the same ingest
 * path as live instances (decoding, dead letters, the same Lua script, retries through Redis and
 * Kafka outages), into the generation `RebuildTarget` names. Done once the group's committed
 * offsets reach the target on every partition; a killed replay resumes from them.
 */
@Injectable()
export class ReplayConsumer {
  private readonly logger = new Logger('Replay');

  constructor(
    private readonly client: KafkaClient,
    private readonly ingest: IngestService,
    private readonly kafka: KafkaConfig,
  ) {}

  /** Throws, saying what to check, when the source topic does not exist. */
  async assertTopicExists(signal: AbortSignal): Promise<void> {
    const topics = await this.untilDone('list the topics', signal, (admin) => admin.listTopics());
    if (!topics.includes(this.kafka.topic)) {
      throw new Error(`the source topic ${this.kafka.topic} does not exist on ${this.kafka.brokers.join(',')}: check KAFKA_TOPIC and KAFKA_BROKERS`);
    }
  }

  /** The replay's range: the source topic's offsets now. */
  async range(signal: AbortSignal): Promise<ReplayRange> {
    return this.untilDone('read the source topic offsets', signal, (admin) => topicRange(admin, this.kafka.topic));
  }

  async replay(options: ReplayOptions): Promise<void> {
    const { group, signal } = options;
    const stopped = new AbortController();
    const stop = AbortSignal.any([signal, stopped.signal]);
    const throttle = options.maxEventsPerSecond ? new Throttle(options.maxEventsPerSecond) : undefined;
    const consumer = this.client.kafka.consumer({
      groupId: group,
      sessionTimeout: SESSION_TIMEOUT_MS,
      heartbeatInterval: 3000,
      ...FETCH_SETTINGS,
      allowAutoTopicCreation: false,
      retry: { retries: 5, restartOnFailure: async () => !stop.aborted },
    });
    let crash: Error | undefined;
    consumer.on(consumer.events.CRASH, ({ payload: { error, restart } }) => {
      if (stop.aborted) return;
      if (restart) {
        this.logger.warn(`replay consumer crashed, kafkajs restarts it: ${error.message}`);
        return;
      }
      crash = error;
      stopped.abort(error);
    });
    stop.addEventListener('abort', () => this.ingest.stopRetrying(), { once: true });
    try {
      await this.untilConnected(consumer, stop);
      await consumer.run({
        eachBatchAutoResolve: false,
        autoCommit: true,
        partitionsConsumedConcurrently: PARTITIONS_CONSUMED_CONCURRENTLY,
        eachBatch: async (payload) => {
          await this.ingest.handleBatch(payload);
          await throttle?.take(payload.batch.messages.length, payload, stop);
        },
      });
      await this.untilDone('follow the replay', stop, async (admin) => {
        for (;;) {
          const position = await committedOffsets(admin, group, this.kafka.topic);
          options.onProgress(replayed(position, options));
          if (offsetsBehind(position, options) === 0n) return;
          await sleep(PROGRESS_INTERVAL_MS, stop);
        }
      });
    } catch (error) {
      throw crash ? new Error(`the replay consumer stopped: ${describeKafkaError(crash)}`) : error;
    } finally {
      await consumer.disconnect().catch(() => undefined);
    }
  }

  /** Deletes the replay's group once the rebuild is done with it; says so if it cannot. */
  async deleteGroup(group: string): Promise<void> {
    try {
      await this.client.withAdmin(undefined, (admin) => admin.deleteGroups([group]));
    } catch (error) {
      this.logger.warn(`could not delete the replay's consumer group ${group} (harmless; delete it with kafka-consumer-groups.sh --delete): ${describeKafkaError(error)}`);
    }
  }

  private async untilConnected(consumer: ReturnType<KafkaClient['kafka']['consumer']>, stop: AbortSignal): Promise<void> {
    const backoff = new RetryBackoff(1000, 10_000);
    for (;;) {
      stop.throwIfAborted();
      try {
        await consumer.connect();
        await consumer.subscribe({ topics: [this.kafka.topic], fromBeginning: true });
        return;
      } catch (error) {
        if (!isRetriableKafkaError(error)) throw error;
        const delayMs = backoff.next();
        this.logger.warn(`replay consumer could not start, retrying in ${delayMs} ms: ${describeKafkaError(error)}`);
        await consumer.disconnect().catch(() => undefined);
        await sleep(delayMs, stop);
      }
    }
  }

  /** Runs `work` on an admin client until it succeeds, through Kafka failures that may pass. */
  private async untilDone<T>(what: string, stop: AbortSignal, work: (admin: Admin) => Promise<T>): Promise<T> {
    const backoff = new RetryBackoff(1000, 10_000);
    const failureLog = new LogThrottle(30_000);
    for (;;) {
      try {
        return await this.client.withAdmin(stop, work);
      } catch (error) {
        stop.throwIfAborted();
        if (!isRetriableKafkaError(error)) throw error;
        const delayMs = backoff.next();
        if (failureLog.take()) this.logger.warn(`could not ${what}, retrying in ${delayMs} ms: ${describeKafkaError(error)}`);
        await sleep(delayMs, stop);
      }
    }
  }
}

/** Offsets from `start` up to the group's position, capped at the target, summed. */
export function replayed(position: PartitionOffsets, { start, target }: ReplayRange): number {
  let sum = 0n;
  for (const [partition, end] of target) {
    const from = start.get(partition) ?? 0n;
    const at = position.get(partition) ?? from;
    const reached = at > end ? end : at;
    if (reached > from) sum += reached - from;
  }
  return Number(sum);
}

/** The total a replay covers. */
export function replayTotal(range: ReplayRange): number {
  return replayed(range.target, range);
}

/** At most `perSecond` events on average since the first; waits heartbeat the consumer. */
class Throttle {
  private readonly startedAt = Date.now();
  private taken = 0;

  constructor(private readonly perSecond: number) {}

  async take(events: number, payload: EachBatchPayload, stop: AbortSignal): Promise<void> {
    this.taken += events;
    for (;;) {
      const aheadMs = (this.taken / this.perSecond) * 1000 - (Date.now() - this.startedAt);
      if (aheadMs <= 0 || stop.aborted || !payload.isRunning()) return;
      await sleep(Math.min(aheadMs, 1000), stop).catch(() => undefined);
      await payload.heartbeat().catch(() => undefined);
    }
  }
}
