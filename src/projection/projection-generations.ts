import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { Cluster, Redis } from 'ioredis';
import { LogThrottle } from '../common/log-throttle.js';
import { RedisConfig } from '../config/app-config.js';
import { TaskCacheMetrics } from '../metrics/task-cache-metrics.js';
import { clusterNodeConnection, RedisClient, RedisConnection } from '../redis/redis-connection.js';
import { GenerationSource } from './generation-source.js';
import { ProjectionKeys } from './projection-keys.js';
import { ProjectionUnavailableError } from './projection-unavailable.error.js';
import { InstanceHeartbeat, RebuildSummary } from './instance-heartbeat.js';

/** The periodic re-read of the pointer, besides the one a pub/sub message triggers. */
export const POINTER_REFRESH_MS = 1000;
/**
 * A heartbeat outlives ten reads of the pointer. Heartbeats show a rebuild (and `status`) which
 * instance has followed a change, and time the flip's propagation; the rebuild's correctness rests
 * on the age rules below, not on them.
 */
export const HEARTBEAT_TTL_MS = 10_000;
/**
 * Writes stop (the batch is retried) when the last read of the pointer began longer ago than this.
 * So whatever an instance writes at a time t, it writes on a pointer read after t - 5 s, heartbeat
 * or not: a rebuild that waits this long (and a margin) after a change knows every write from then
 * on follows it (REBUILD_SETTLE_MS).
 */
export const WRITE_POINTER_MAX_AGE_MS = 5_000;
/**
 * Reads fail (503, and the instance is unready) when the last read of the pointer began longer ago
 * than this: an instance cut off from the pointer must not serve a generation a rebuild may be
 * deleting.
 */
export const READ_POINTER_MAX_AGE_MS = 8_000;
/** A rebuild waits this long after each pointer change before relying on it (see above). */
export const REBUILD_SETTLE_MS = { writes: WRITE_POINTER_MAX_AGE_MS + 1_000, reads: READ_POINTER_MAX_AGE_MS + 1_000 } as const;
const INSTANCE_INDEX_RETENTION_MS = 86_400_000;

/**
 * Follows the generation pointer: `current` is what reads use; `building` (during a rebuild) and
 * `previous` (after a rebuild's flip, until every instance has moved on) are written by live
 * ingest too. Cached in process, so a read costs no extra round trip for it; re-read every second
 * and at once when the rebuild publishes a change (one subscriber connection per instance; after
 * every (re)subscribe the pointer is re-read, since pub/sub loses what was sent meanwhile).
 *
 * After every read of the pointer the instance writes its heartbeat: which generations it reads
 * and writes. A rebuild moves on once every live heartbeat confirms the change it made, and not
 * before the age rules below make it hold for every instance, heartbeat or not.
 */
@Injectable()
export class ProjectionGenerations extends GenerationSource implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(ProjectionGenerations.name);
  private readonly keys: ProjectionKeys;
  readonly instanceId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private current: number | undefined;
  private building: number | undefined;
  private previous: number | undefined;
  private rebuild: RebuildSummary | undefined;
  private currentSince = 0;
  /** When the last successful read of the pointer began (performance.now()). */
  private readAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private subscriber: Redis | undefined;
  private refreshing: Promise<void> | undefined;
  private refreshAgain = false;
  private stopped = false;
  private readonly failureLog = new LogThrottle(10_000);
  private readonly currentListeners: (() => void)[] = [];

  constructor(
    private readonly redis: RedisConnection,
    private readonly config: RedisConfig,
    private readonly metrics: TaskCacheMetrics = new TaskCacheMetrics({}),
  ) {
    super();
    this.keys = new ProjectionKeys(config.keyPrefix);
  }

  async onModuleInit(): Promise<void> {
    await this.refresh().catch((error: Error) => this.logger.warn(`generation pointer not read yet: ${error.message}`));
    // A failing read says why (Redis down, or a pointer that holds no generation), at most every 10 s:
    // after 5 s writes wait and after 8 s reads answer 503, and the operator must see the cause.
    this.timer = setInterval(
      () =>
        void this.refresh().catch((error: Error) => {
          if (this.failureLog.take()) this.logger.warn(`cannot read the generation pointer: ${error.message}`);
        }),
      POINTER_REFRESH_MS,
    );
    this.timer.unref();
    this.subscribe();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.subscriber?.disconnect();
    // Stops counting at once rather than when the heartbeat expires; best effort.
    const client = this.redis.client;
    if (client.status === 'ready') await Promise.all([client.del(this.keys.instance(this.instanceId)), client.zrem(this.keys.instances, this.instanceId)]).catch(() => undefined);
  }

  currentGeneration(): number {
    if (this.current === undefined) throw new ProjectionUnavailableError('generation pointer not read yet');
    const age = Math.round(performance.now() - this.readAt);
    if (age > READ_POINTER_MAX_AGE_MS) throw new ProjectionUnavailableError(`generation pointer last read ${age} ms ago; reads wait for a fresh read`);
    return this.current;
  }

  writeGenerations(): number[] {
    const current = this.currentGeneration();
    const age = Math.round(performance.now() - this.readAt);
    if (age > WRITE_POINTER_MAX_AGE_MS) throw new ProjectionUnavailableError(`generation pointer last read ${age} ms ago; writes wait for a fresh read`);
    return [...new Set([this.building, current, this.previous].filter((generation) => generation !== undefined))].sort((a, b) => b - a);
  }

  /** Calls `listener` whenever the generation served changes (a rebuild's flip, or a rollback). */
  onCurrentChange(listener: () => void): void {
    this.currentListeners.push(listener);
  }

  /** The pointer as this instance last read it, for the readiness body. */
  snapshot(): { current?: number; building?: number; previous?: number; rebuild?: RebuildSummary } {
    return { current: this.current, building: this.building, previous: this.previous, rebuild: this.rebuild };
  }

  /** Re-reads the pointer; a call while a read is under way makes it read once more after. */
  refresh(): Promise<void> {
    if (this.refreshing) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshing = this.read()
      .catch((error: unknown) => {
        if (!(error instanceof PointerHoldsNoGenerationError)) this.metrics.redisCommandErrors.inc({ operation: 'pointer' });
        throw error;
      })
      .finally(() => {
        this.refreshing = undefined;
        if (this.refreshAgain && !this.stopped) {
          this.refreshAgain = false;
          void this.refresh().catch(() => undefined);
        }
      });
    return this.refreshing;
  }

  private async read(): Promise<void> {
    // When the read began, not when its answer came: the answer is at least as new as that.
    const startedAt = performance.now();
    const client = this.redis.client;
    const pointer = this.keys.generationPointer;
    let [current, building, previous, rebuild] = await client.hmget(pointer, 'current', 'building', 'previous', 'rebuild');
    if (current === null) {
      // The first instance to start sets generation 1; later ones keep what is there.
      await client.hsetnx(pointer, 'current', '1');
      [current, building, previous, rebuild] = await client.hmget(pointer, 'current', 'building', 'previous', 'rebuild');
    }
    const next = generationOf(current);
    // A pointer that is not a generation must not send reads and writes to made-up keys.
    if (next === undefined) throw new PointerHoldsNoGenerationError(`generation pointer ${pointer} holds no generation: current=${current}`);
    const nextBuilding = generationOf(building);
    if (nextBuilding !== this.building) {
      this.logger.log(nextBuilding === undefined ? `no longer writing generation ${this.building}` : `rebuild under way: writing generation ${nextBuilding} too`);
    }
    if (this.current !== undefined && next !== this.current) this.logger.log(`serving generation ${next} (was ${this.current})`);
    const changed = this.current !== undefined && next !== this.current;
    if (next !== this.current) this.currentSince = Date.now();
    this.current = next;
    this.building = nextBuilding;
    this.previous = generationOf(previous);
    this.rebuild = summaryOf(rebuild);
    this.readAt = startedAt;
    if (changed) for (const listener of this.currentListeners) listener();
    await this.beat(client);
  }

  private async beat(client: RedisClient): Promise<void> {
    const heartbeat: InstanceHeartbeat = {
      id: this.instanceId,
      current: this.current!,
      writes: this.writeGenerations(),
      currentSince: this.currentSince,
      at: Date.now(),
    };
    await Promise.all([
      client.set(this.keys.instance(this.instanceId), JSON.stringify(heartbeat), 'PX', HEARTBEAT_TTL_MS),
      client.zadd(this.keys.instances, Date.now(), this.instanceId),
      // The index forgets instances gone for a day; their heartbeats expired long before.
      client.zremrangebyscore(this.keys.instances, '-inf', Date.now() - INSTANCE_INDEX_RETENTION_MS),
    ]);
  }

  /** One subscriber connection; on every (re)connect it subscribes again and re-reads the pointer. */
  private subscribe(): void {
    const subscriber = this.subscriberConnection();
    this.subscriber = subscriber;
    subscriber.on('error', () => undefined); // the main connection reports Redis being unreachable
    subscriber.on('message', () => void this.refresh().catch(() => undefined));
    subscriber.on('ready', () => {
      if (this.stopped) return;
      void subscriber
        .subscribe(this.keys.pointerChannel)
        .then(() => this.refresh())
        .catch(() => undefined);
    });
    void subscriber.connect().catch(() => undefined);
  }

  /**
   * A connection of its own for the subscription. On a cluster, a plain connection to one seed node
   * rather than ioredis's cluster subscriber, which kept connections open after it was closed
   * during a cluster restart: a PUBLISH reaches every node of a cluster, so one node is enough, and
   * while that node is down the periodic read of the pointer stands in for the messages.
   */
  private subscriberConnection(): Redis {
    const client = this.redis.client;
    if (!(client instanceof Cluster)) return client.duplicate();
    return clusterNodeConnection(this.config.cluster!, this.config.cluster!.nodes[0], 'task-cache-pointer');
  }
}

/** The pointer was read, and is not one: not a Redis failure. */
class PointerHoldsNoGenerationError extends Error {}

function generationOf(value: string | null): number | undefined {
  return value !== null && /^[1-9][0-9]{0,8}$/.test(value) ? Number(value) : undefined;
}

function summaryOf(value: string | null): RebuildSummary | undefined {
  if (value === null) return undefined;
  try {
    const { generation, phase, percent, updatedAt } = JSON.parse(value) as RebuildSummary;
    return { generation, phase, percent, updatedAt };
  } catch {
    return undefined;
  }
}
