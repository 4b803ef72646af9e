import { Injectable, Logger } from '@nestjs/common';
import { LogThrottle } from '../common/log-throttle.js';
import { RetryBackoff } from '../common/retry-backoff.js';
import { sleep } from '../common/sleep.js';
import { KafkaConfig } from '../config/app-config.js';
import { committedOffsets, offsetsBehind, TopicRange, topicRange } from './group-offsets.js';
import { KafkaClient } from './kafka-client.js';

/** How often the group's committed offsets are compared with the target while catching up. */
const POLL_INTERVAL_MS = 1000;
/** The longest wait between checks while Kafka cannot be read. */
const MAX_RETRY_MS = 10_000;
const FAILURE_LOG_INTERVAL_MS = 30_000;

export type CatchUpPhase =
  /** The target is not known yet: Kafka has not answered since the service started. */
  | 'pending'
  /** The group's committed offsets are behind the high watermarks read at start. */
  | 'catching-up'
  /** Every partition's committed offset has reached the high watermark read at start. */
  | 'caught-up';

export interface CatchUpSnapshot {
  readonly phase: CatchUpPhase;
  /** Offsets between the group's committed offsets and the target, summed, while catching up. */
  readonly behind?: number;
}

/**
 * Whether the projection holds what the source topic held when this instance started: the cold
 * start rule (README, "Cold start"). At start the source topic's high watermarks are read once
 * (the target); the consumer group's committed offsets are then compared with them every second
 * until every partition has reached its target, which holds for good afterwards.
 *
 * The group's offsets, not this instance's: partitions are shared among the instances of the
 * group, and an offset is committed only once its batch is in Redis (or dead-lettered), so a
 * committed offset at the target means Redis holds every event before it, whoever applied it. A
 * partition's last record is in its active segment, which compaction never cleans, so the group's
 * offset always reaches the high watermark.
 */
@Injectable()
export class StartupCatchUp {
  private readonly logger = new Logger('CatchUp');
  private state: CatchUpSnapshot = { phase: 'pending' };
  private target: TopicRange | undefined;
  private running: Promise<void> | undefined;
  private readonly failureLog = new LogThrottle(FAILURE_LOG_INTERVAL_MS);

  constructor(
    private readonly client: KafkaClient,
    private readonly config: KafkaConfig,
  ) {}

  snapshot(): CatchUpSnapshot {
    return this.state;
  }

  /**
   * Reads the target, unless read already, and follows the group's offsets until they reach it,
   * in the background, through any Kafka failure (retried with backoff, said at most every 30 s)
   * until the service stops. The consumer calls it once its topics exist, and at each restart; a
   * check under way goes on.
   */
  follow(signal: AbortSignal): void {
    if (this.state.phase === 'caught-up' || this.running || signal.aborted) return;
    this.running = this.run(signal).finally(() => (this.running = undefined));
  }

  /** The check under way, for a shutdown to wait for. */
  settled(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  private async run(signal: AbortSignal): Promise<void> {
    const backoff = new RetryBackoff(POLL_INTERVAL_MS, MAX_RETRY_MS);
    while (!signal.aborted && this.state.phase !== 'caught-up') {
      try {
        await this.checkUntilCaughtUp(signal);
      } catch (error) {
        if (signal.aborted) return;
        const delayMs = backoff.next();
        if (this.failureLog.take()) this.logger.warn(`catch-up check failed, retrying in ${delayMs} ms: ${(error as Error).message}`);
        await sleep(delayMs, signal).catch(() => undefined);
      }
    }
  }

  private async checkUntilCaughtUp(signal: AbortSignal): Promise<void> {
    await this.client.withAdmin(signal, async (admin) => {
      this.target ??= await topicRange(admin, this.config.topic);
      while (!signal.aborted) {
        const behind = offsetsBehind(await committedOffsets(admin, this.config.groupId, this.config.topic), this.target);
        if (behind === 0n) {
          this.state = { phase: 'caught-up' };
          this.logger.log('projection caught up with the source topic as it was at start');
          return;
        }
        if (this.state.phase === 'pending') this.logger.log(`projection catching up: ${behind} offsets behind the source topic's high watermarks at start; not ready until then`);
        this.state = { phase: 'catching-up', behind: Number(behind) };
        await sleep(POLL_INTERVAL_MS, signal).catch(() => undefined);
      }
    });
  }
}
