import { sleep } from '../common/sleep.js';
import { Injectable, Logger } from '@nestjs/common';
import type { Batch, EachBatchPayload, KafkaMessage } from 'kafkajs';
import { LogThrottle } from '../common/log-throttle.js';
import { IngestConfig } from '../config/app-config.js';
import { TaskCacheMetrics } from '../metrics/task-cache-metrics.js';
import type { TaskEvent } from '../projection/task-event.js';
import { ApplyResult, TaskProjection } from '../projection/task-projection.js';
import { NoTaskChangeNotifier, TaskChangeNotifier } from '../changes/task-change-notifier.js';
import { DeadLetter } from './dead-letter.js';
import { DeadLetterPublisher } from './dead-letter-publisher.js';
import { InvalidTaskEventError } from './invalid-task-event.error.js';
import { RetryBackoff } from '../common/retry-backoff.js';
import { TaskEventDecoder } from './task-event-decoder.js';

/** Waits longer than this are cut into slices with a heartbeat between them. */
const HEARTBEAT_SLICE_MS = 1000;
/**
 * Events applied per round trip to Redis, with a heartbeat between round trips. A batch may hold
 * hundreds of thousands of small events (a compressed batch of 200,000 tombstones is about 1 MiB):
 * sent at once, the last of them would wait past the command timeout on every attempt, and the
 * batch would be retried forever. Ordinary batches (a few thousand events) take one round trip.
 */
const APPLY_SLICE_EVENTS = 5000;
/** While a batch keeps failing, say so at most this often. */
const FAILURE_LOG_INTERVAL_MS = 10_000;

/**
 * Applies one fetched batch of the source topic: decode and validate every event, apply the valid
 * ones to the projection in one round trip, dead-letter the invalid ones, and only then resolve
 * the batch's offsets (kafkajs commits them as soon as this returns).
 *
 * The rule: only a reachability failure of Redis or Kafka may hold a partition. Whatever is
 * deterministic about one event (its bytes, fields, headers or size, or a decoder defect on it)
 * dead-letters that event; the dead-letter publisher itself steps down to a smaller letter rather
 * than fail on one. A failure that is neither (Redis refusing writes, no permission on the
 * dead-letter topic) is retried like an outage, with growing backoff, logged once per interval.
 *
 * If the projection or the dead-letter topic cannot be reached, the same batch is retried with
 * capped exponential backoff, heartbeating meanwhile. Nothing is resolved and kafkajs fetches
 * nothing more for this consumer until it succeeds, so an outage skips nothing. On shutdown the
 * retries stop and the batch is left uncommitted, to be consumed again.
 *
 * Once a slice is applied, the tasks it changed are announced (`TaskChangeNotifier`) to the
 * watches of every instance; not awaited, and not retried with the slice.
 *
 * Metrics, all from the batch in hand (no round trip of their own): events consumed, applied and
 * stale, finished tasks written with an expiry or already expired; each valid event's freshness once applied (now minus its Kafka timestamp); the batch's
 * duration; and the partition's lag, from the batch's high watermark: the whole batch counts as
 * lag until it is applied, then only what lies beyond it. Dead letters are counted where they are
 * published.
 */
@Injectable()
export class IngestService {
  private readonly logger = new Logger('Ingest');
  private readonly stopping = new AbortController();

  constructor(
    private readonly decoder: TaskEventDecoder,
    private readonly projection: TaskProjection,
    private readonly deadLetters: DeadLetterPublisher,
    private readonly config: IngestConfig,
    private readonly metrics: TaskCacheMetrics = new TaskCacheMetrics({}),
    private readonly changes: TaskChangeNotifier = new NoTaskChangeNotifier(),
  ) {}

  async handleBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const started = performance.now();
    const lag = { topic: batch.topic, partition: batch.partition };
    const firstOffset = batch.firstOffset();
    if (firstOffset !== null) this.metrics.consumerLag.set(lag, Number(batch.highWatermark) - Number(firstOffset));
    this.metrics.batchHeld.set(lag, 0);
    this.metrics.eventsConsumed.inc(batch.messages.length);
    const events: TaskEvent[] = [];
    const letters: DeadLetter[] = [];
    for (const message of batch.messages) {
      try {
        events.push(this.decoder.decode(message, batch.partition));
      } catch (error) {
        letters.push({ topic: batch.topic, partition: batch.partition, message, reason: this.rejectionOf(error, batch, message) });
      }
    }
    await payload.heartbeat();

    const applied = { applied: 0, stale: 0, retained: 0, expiredOnArrival: 0 };
    for (let start = 0; start < events.length; start += APPLY_SLICE_EVENTS) {
      const slice = events.slice(start, start + APPLY_SLICE_EVENTS);
      let result: ApplyResult | undefined;
      if (!(await this.untilDone('projection', payload, async () => (result = await this.projection.applyBatch(slice))))) return;
      applied.applied += result!.applied;
      applied.stale += result!.stale;
      applied.retained += result!.retained;
      applied.expiredOnArrival += result!.expiredOnArrival;
      this.recordApplied(slice, result!);
      this.changes.notify(result!.changed);
      if (start + APPLY_SLICE_EVENTS < events.length) await payload.heartbeat();
    }
    if (letters.length > 0 && !(await this.untilDone('dead-letter topic', payload, () => this.deadLetters.publish(letters, () => payload.heartbeat())))) return;

    payload.resolveOffset(batch.lastOffset());
    this.metrics.consumerLag.set(lag, Number(batch.offsetLag()));
    this.metrics.batchApplyDuration.observe((performance.now() - started) / 1000);
    await payload.heartbeat();
    this.logger.debug(
      { ...where(batch), lastOffset: batch.lastOffset() },
      `${batch.topic} partition ${batch.partition} to offset ${batch.lastOffset()}: ${events.length} valid (${applied.applied} applied, ${applied.stale} stale or superseded, ${applied.retained} with an expiry, ${applied.expiredOnArrival} already expired), ${letters.length} dead-lettered`,
    );
  }

  /**
   * Counts a slice once it is applied: outside the retried step, so that nothing about counting
   * can make an applied slice look like a failing one. An event whose timestamp is not a number
   * (a record without one) has no freshness to observe.
   */
  private recordApplied(slice: readonly TaskEvent[], result: ApplyResult): void {
    this.metrics.eventsApplied.inc(result.applied);
    this.metrics.eventsStale.inc(result.stale);
    this.metrics.eventsRetained.inc(result.retained);
    this.metrics.eventsExpiredOnArrival.inc(result.expiredOnArrival);
    const now = Date.now();
    for (const { timestamp } of slice) {
      if (Number.isFinite(timestamp)) this.metrics.eventFreshness.observe(Math.max(0, now - timestamp) / 1000);
    }
  }

  /**
   * Why the event is dead-lettered. Decoding depends on the event's bytes alone, so whatever it
   * throws would be thrown again on every redelivery: an error other than `InvalidTaskEventError`
   * is a defect of the decoder, logged with its stack, and still dead-letters the one event
   * rather than stalling its partition or crashing the consumer.
   */
  private rejectionOf(error: unknown, batch: Batch, message: KafkaMessage): string {
    if (error instanceof InvalidTaskEventError) return error.message;
    const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    this.logger.error(
      { topic: batch.topic, partition: batch.partition, offset: message.offset, err: error },
      `decoding ${batch.topic} partition ${batch.partition} offset ${message.offset} failed unexpectedly; dead-lettering it: ${detail}`,
    );
    return new InvalidTaskEventError('UNDECODABLE', `decoding failed unexpectedly (${detail.slice(0, 200)})`).message;
  }

  /** Ends the waits between retries at once. A batch that was waiting stays uncommitted. */
  stopRetrying(): void {
    this.stopping.abort();
  }

  /**
   * Runs `step` until it succeeds; false if the consumer stops first. While it fails, the
   * partition counts as held (`taskcache_batch_held`), until the step succeeds or the batch is
   * given up (a stop, a rebalance).
   */
  private async untilDone(target: string, payload: EachBatchPayload, step: () => Promise<unknown>): Promise<boolean> {
    const { topic, partition } = payload.batch;
    let backoff: RetryBackoff | undefined;
    let failingSince = 0;
    const failureLog = new LogThrottle(FAILURE_LOG_INTERVAL_MS);
    try {
      for (;;) {
        try {
          await step();
          if (backoff) {
            this.logger.log(
              where(payload.batch),
              `${target} reachable again: ${topic} partition ${partition} resumes after ${Date.now() - failingSince} ms and ${backoff.attempts} retries`,
            );
          }
          return true;
        } catch (error) {
          if (this.mustStop(payload)) return this.leaveUncommitted(target, payload);
          if (!backoff) {
            backoff = new RetryBackoff(this.config.retryInitialMs, this.config.retryMaxMs);
            this.metrics.batchHeld.set({ topic, partition }, 1);
          }
          failingSince ||= Date.now();
          const delayMs = backoff.next();
          if (failureLog.take()) {
            this.logger.warn(
              { ...where(payload.batch), err: error },
              `${target} failing (unreachable or refusing); holding ${topic} partition ${partition} from offset ${payload.batch.firstOffset()} uncommitted, retrying in ${delayMs} ms: ${(error as Error).message}`,
            );
          }
          await this.wait(delayMs, payload);
          if (this.mustStop(payload)) return this.leaveUncommitted(target, payload);
        }
      }
    } finally {
      if (backoff) this.metrics.batchHeld.set({ topic, partition }, 0);
    }
  }

  /** Waits, heartbeating so the group keeps this member; a rebalance ends the wait by throwing. */
  private async wait(delayMs: number, payload: EachBatchPayload): Promise<void> {
    const until = Date.now() + delayMs;
    for (let left = delayMs; left > 0; left = until - Date.now()) {
      await sleep(Math.min(left, HEARTBEAT_SLICE_MS), this.stopping.signal).catch(() => undefined);
      if (this.mustStop(payload)) return;
      await payload.heartbeat();
    }
  }

  private mustStop(payload: EachBatchPayload): boolean {
    return this.stopping.signal.aborted || !payload.isRunning() || payload.isStale();
  }

  private leaveUncommitted(target: string, payload: EachBatchPayload): false {
    const { topic, partition } = payload.batch;
    this.logger.warn(
      where(payload.batch),
      `stopping while the ${target} is failing: ${topic} partition ${partition} from offset ${payload.batch.firstOffset()} stays uncommitted and will be consumed again`,
    );
    return false;
  }
}

/** A batch's place, as fields of a log line: its topic, partition and first offset. */
function where(batch: Batch): { topic: string; partition: number; offset: string | null } {
  return { topic: batch.topic, partition: batch.partition, offset: batch.firstOffset() };
}
