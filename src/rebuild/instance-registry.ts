import { Injectable, Logger } from '@nestjs/common';
import { sleep } from '../common/sleep.js';
import { RedisConfig } from '../config/app-config.js';
import { InstanceHeartbeat } from '../projection/instance-heartbeat.js';
import { ProjectionKeys } from '../projection/projection-keys.js';
import { RedisConnection } from '../redis/redis-connection.js';

const POLL_MS = 25;
const WAITING_LOG_INTERVAL_MS = 10_000;
const GUARD_INTERVAL_MS = 1000;

/**
 * The running instances, by their heartbeats. An instance that is gone stops counting once its
 * heartbeat expires (HEARTBEAT_TTL_MS), and is then dropped from the index of ids.
 */
@Injectable()
export class InstanceRegistry {
  private readonly logger = new Logger('Instances');
  private readonly keys: ProjectionKeys;

  constructor(
    private readonly redis: RedisConnection,
    config: RedisConfig,
  ) {
    this.keys = new ProjectionKeys(config.keyPrefix);
  }

  /** The instances whose heartbeat is alive; `prune` also drops the others from the index. */
  async live({ prune = true }: { prune?: boolean } = {}): Promise<InstanceHeartbeat[]> {
    const client = this.redis.client;
    const ids = await client.zrange(this.keys.instances, '0', '-1');
    const beats = await Promise.all(ids.map((id) => client.get(this.keys.instance(id))));
    const gone = ids.filter((_, index) => beats[index] === null);
    if (prune && gone.length > 0) await client.zrem(this.keys.instances, ...gone);
    return beats.filter((beat): beat is string => beat !== null).map((beat) => JSON.parse(beat) as InstanceHeartbeat);
  }

  /**
   * Waits until every live instance's heartbeat satisfies `confirms` (no instance at all counts as
   * confirmed), checking every 25 ms; says which ones it waits for every 10 s. Returns how long it
   * waited and how many instances confirmed. `guard`, run every second, ends the wait by throwing
   * when what it waits for can no longer come.
   */
  async waitUntilAll(
    what: string,
    confirms: (beat: InstanceHeartbeat) => boolean,
    signal: AbortSignal,
    guard?: () => Promise<void>,
  ): Promise<{ waitedMs: number; instances: number }> {
    const started = Date.now();
    let lastSaid = started;
    let guardedAt = started;
    for (;;) {
      signal.throwIfAborted();
      if (guard && Date.now() - guardedAt >= GUARD_INTERVAL_MS) {
        guardedAt = Date.now();
        await guard();
      }
      let beats: InstanceHeartbeat[] | undefined;
      try {
        beats = await this.live();
      } catch (error) {
        if (Date.now() - lastSaid >= WAITING_LOG_INTERVAL_MS) {
          lastSaid = Date.now();
          this.logger.warn(`waiting for instances to ${what}: cannot read their heartbeats: ${(error as Error).message}`);
        }
      }
      if (beats) {
        const waiting = beats.filter((beat) => !confirms(beat));
        if (waiting.length === 0) return { waitedMs: Date.now() - started, instances: beats.length };
        if (Date.now() - lastSaid >= WAITING_LOG_INTERVAL_MS) {
          lastSaid = Date.now();
          this.logger.warn(
            `still waiting for ${waiting.length} of ${beats.length} instances to ${what}: ${waiting.map((beat) => `${beat.id} (reads ${beat.current}, writes ${beat.writes.join(',')})`).join('; ')}; an instance that is gone stops counting when its heartbeat expires`,
          );
        }
      }
      await sleep(POLL_MS, signal);
    }
  }
}
