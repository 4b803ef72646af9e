import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Injectable } from '@nestjs/common';
import { Result } from 'ioredis';
import { ProjectionConfig, RedisConfig } from '../config/app-config.js';
import { TaskCacheMetrics } from '../metrics/task-cache-metrics.js';
import { RedisConnection } from '../redis/redis-connection.js';
import { GenerationSource } from './generation-source.js';
import { ProjectionKeys } from './projection-keys.js';
import { ProjectionUnavailableError } from './projection-unavailable.error.js';
import { StoredTask } from './stored-task.js';
import { ApplyResult, BatchReadTask, TaskProjection, UNPROCESSED } from './task-projection.js';
import { TaskEvent } from './task-event.js';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    applyTaskEvent(
      key: string,
      partition: number,
      offset: string,
      timestamp: number,
      value: Buffer | string,
      markerTtlMs: number,
      expireAt: number,
    ): Result<number, Context>;
    /** read-task-within.lua: `[v, p, o]`, or `[size of v, p, o]` when v is over `allowance` bytes. */
    readTaskWithinBuffer(key: string, allowance: number): Result<(Buffer | number | null)[], Context>;
  }
}

const APPLY_SCRIPT = readFileSync(join(import.meta.dirname, 'apply-task-event.lua'), 'utf8');
const READ_WITHIN_SCRIPT = readFileSync(join(import.meta.dirname, 'read-task-within.lua'), 'utf8');

/**
 * The script's replies besides 0 (stale): applied, applied as a write whose expiry had already
 * passed, and stale as the very event stored (applied by an earlier attempt, or redelivered).
 */
const APPLIED = 1;
const APPLIED_EXPIRED = 2;
const ALREADY_STORED = 3;

/** `TaskProjection` on Redis: one hash per task per generation, "newer wins" in one Lua script. */
@Injectable()
export class RedisTaskProjection extends TaskProjection {
  private readonly keys: ProjectionKeys;
  private readonly tombstoneTtlMs: number;
  private readonly terminalTtlMs: number | undefined;

  constructor(
    private readonly redis: RedisConnection,
    private readonly generations: GenerationSource,
    redisConfig: RedisConfig,
    projectionConfig: ProjectionConfig,
    private readonly metrics: TaskCacheMetrics = new TaskCacheMetrics({}),
  ) {
    super();
    this.keys = new ProjectionKeys(redisConfig.keyPrefix);
    this.tombstoneTtlMs = projectionConfig.tombstoneTtlSeconds * 1000;
    this.terminalTtlMs = projectionConfig.terminalTtlSeconds === undefined ? undefined : projectionConfig.terminalTtlSeconds * 1000;
    // Loaded once per connection: ioredis sends EVALSHA, and the script body only after NOSCRIPT.
    redis.client.defineCommand('applyTaskEvent', { numberOfKeys: 1, lua: APPLY_SCRIPT });
    redis.client.defineCommand('readTaskWithin', { numberOfKeys: 1, lua: READ_WITHIN_SCRIPT });
  }

  async applyBatch(events: readonly TaskEvent[]): Promise<ApplyResult> {
    const latest = latestPerTask(events);
    const client = this.redis.client;
    let applied = 0;
    let retained = 0;
    let expiredOnArrival = 0;
    const changed = new Set<string>();
    let generations: number[] = [];
    try {
      generations = this.generations.writeGenerations();
      // Newest generation first, one generation per round trip (usually there is only one): a
      // reader that moves to a newer generation finds there whatever it saw in the older one.
      for (const generation of generations) {
        // An older generation a rebuild has stopped writing meanwhile (to delete it) is left alone.
        if (generation !== generations[0] && !this.generations.writeGenerations().includes(generation)) continue;
        // Issued in one tick: auto-pipelining sends them as one write, one round trip, and as
        // single-key commands they split across Redis Cluster slots.
        const expiries = latest.map((event) => this.expiryOf(event));
        const replies = latest.map((event, index) =>
          client.applyTaskEvent(
            this.keys.task(generation, event.taskId),
            event.partition,
            event.offset,
            event.timestamp,
            event.value ?? '',
            this.tombstoneTtlMs,
            expiries[index],
          ),
        );
        (await Promise.all(replies)).forEach((reply, index) => {
          if (reply === APPLIED_EXPIRED) expiredOnArrival += 1;
          else if (reply === APPLIED && expiries[index] > 0) retained += 1;
          if (reply === 0) return;
          // An attempt that timed out may have been carried out: the retry finds its events stored,
          // and announces them, since the failed attempt could not.
          changed.add(latest[index].taskId);
          if (reply === ALREADY_STORED) return;
          applied += 1;
        });
      }
      await this.redis.replicated();
    } catch (error) {
      if (error instanceof ProjectionUnavailableError) throw error;
      this.metrics.redisCommandErrors.inc({ operation: 'apply' });
      throw new ProjectionUnavailableError(error);
    }
    return { applied, stale: events.length * generations.length - applied, retained, expiredOnArrival, changed: [...changed] };
  }

  /**
   * The script's expiry argument: -1 for a tombstone; for a write, when its value expires (epoch
   * ms), or 0 for never. A terminal task expires the retention after its Kafka timestamp, so a
   * replay expires it when live ingest did. One without a timestamp counts from now, and so does one
   * stamped in the future (a producer's clock ahead, or a timestamp in another unit): a future
   * timestamp must neither keep a finished task for years nor overflow Redis's expiry.
   */
  private expiryOf(event: TaskEvent): number {
    if (event.value === null) return -1;
    if (!event.terminal || this.terminalTtlMs === undefined) return 0;
    const now = Date.now();
    const since = Number.isFinite(event.timestamp) && event.timestamp >= 0 ? Math.min(event.timestamp, now) : now;
    return since + this.terminalTtlMs;
  }

  async get(taskId: string): Promise<StoredTask | null> {
    let reply: (Buffer | null)[];
    try {
      reply = await this.redis.client.hmgetBuffer(this.keys.task(this.generations.currentGeneration(), taskId), 'v', 'p', 'o');
    } catch (error) {
      if (error instanceof ProjectionUnavailableError) throw error;
      this.metrics.redisCommandErrors.inc({ operation: 'read' });
      throw new ProjectionUnavailableError(error);
    }
    return storedTask(reply);
  }

  /**
   * Round trip 1 reads every task with read-task-within.lua, which answers a value only if it is
   * at most its share of the budget (budget / ids): when all are, so is their sum, and that is the
   * answer. Round trip 2, only when some were over: HMGETs of those, in request order, as long as
   * the sizes round trip 1 measured fit what the budget has left (the first one regardless when no
   * task is answered yet); the rest are UNPROCESSED. Both read the generation read once. A value
   * that changed between the two is answered as it is now if it still fits, otherwise it and those
   * after it are UNPROCESSED, so the values answered never exceed the budget (but for that first).
   */
  async getMany(taskIds: readonly string[], budgetBytes: number): Promise<BatchReadTask[]> {
    if (taskIds.length === 0) return [];
    try {
      // One generation for the whole batch, so a flip meanwhile cannot mix two. The commands of a
      // round trip are issued in one tick, before any is awaited: auto-pipelining sends them as one
      // write (one per master on a cluster), and as single-key commands they split across slots.
      const generation = this.generations.currentGeneration();
      const client = this.redis.client;
      const allowance = Math.floor(budgetBytes / taskIds.length);
      const replies = await Promise.all(taskIds.map((taskId) => client.readTaskWithinBuffer(this.keys.task(generation, taskId), allowance)));

      const tasks: BatchReadTask[] = [];
      const over: { index: number; size: number }[] = [];
      let spent = 0;
      replies.forEach(([value, partition, offset], index) => {
        if (typeof value === 'number') {
          over.push({ index, size: value });
          tasks.push(UNPROCESSED);
        } else {
          tasks.push(value === null ? null : { value, version: `${partition?.toString()}-${offset?.toString()}` });
          spent += value?.length ?? 0;
        }
      });
      if (over.length === 0) return tasks;

      let answered = tasks.some((task) => task !== null && task !== UNPROCESSED);
      let planned = spent;
      const fetch: number[] = [];
      for (const { index, size } of over) {
        if (answered && planned + size > budgetBytes) break;
        fetch.push(index);
        planned += size;
        answered = true;
      }
      const fetched = await Promise.all(fetch.map((index) => client.hmgetBuffer(this.keys.task(generation, taskIds[index]), 'v', 'p', 'o')));
      answered = tasks.some((task) => task !== null && task !== UNPROCESSED);
      for (let i = 0; i < fetch.length; i++) {
        const task = storedTask(fetched[i]);
        if (task !== null && answered && spent + task.value.length > budgetBytes) break;
        tasks[fetch[i]] = task;
        if (task === null) continue;
        spent += task.value.length;
        answered = true;
      }
      return tasks;
    } catch (error) {
      if (error instanceof ProjectionUnavailableError) throw error;
      this.metrics.redisCommandErrors.inc({ operation: 'read' });
      throw new ProjectionUnavailableError(error);
    }
  }
}

/** A task's HMGET reply (v, p, o) as a StoredTask, or null when the key has no value. */
function storedTask([value, partition, offset]: (Buffer | null)[]): StoredTask | null {
  return value === null ? null : { value, version: `${partition}-${offset}` };
}

/**
 * Within one batch only a task's last event per partition can win, so the earlier ones need not
 * reach Redis. kafkajs hands a partition's events in offset order, so a later entry replaces an
 * earlier one. Events of one task on different partitions are all kept: the script decides.
 */
export function latestPerTask(events: readonly TaskEvent[]): TaskEvent[] {
  const latest = new Map<string, TaskEvent>();
  for (const event of events) latest.set(`${event.partition}/${event.taskId}`, event);
  return [...latest.values()];
}
