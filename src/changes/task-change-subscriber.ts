import { Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import calculateSlot from 'cluster-key-slot';
import { Cluster, Redis } from 'ioredis';
import { RedisConfig } from '../config/app-config.js';
import { TaskCacheMetrics } from '../metrics/task-cache-metrics.js';
import { clusterNodeConnection, RedisConnection } from '../redis/redis-connection.js';
import { changeChannels, decodeChanges } from './task-change-channels.js';

/** How often a cluster's slot map is checked for channels whose master changed, besides on every refresh. */
const OWNERS_CHECK_MS = 1000;
const STANDALONE = 'standalone';

/** What the subscriber tells: tasks that changed, and that messages may have been lost. */
export interface TaskChangeListener {
  changed(taskIds: readonly string[]): void;
  /**
   * A connection has (re)subscribed to its channels: whatever was published to them while it was
   * not subscribed is lost, so every held watcher must be checked against Redis again.
   */
  resubscribed(): void;
}

/**
 * Receives the changes `RedisTaskChangeNotifier` publishes: SSUBSCRIBE to every change channel,
 * one connection per Redis master that owns some of them (one connection on a standalone Redis),
 * however many requests are watching. Each channel is subscribed on its own (on a cluster, one
 * SSUBSCRIBE may only name channels of one slot).
 *
 * Pub/sub loses what is published while a connection is down or moving, so every (re)subscribe is
 * reported to the listener (`resubscribed`), which re-checks what it holds. On a cluster the slot
 * map is followed: when the master of a channel changes (failover, resharding) its connection is
 * replaced by one to the new master, which subscribes and reports as above. The connections are
 * plain ones of their own, not ioredis's cluster subscriber, whose resubscriptions cannot be seen
 * (see also ProjectionGenerations.subscriberConnection).
 */
@Injectable()
export class TaskChangeSubscriber implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('TaskChanges');
  private readonly channels: string[];
  /** By owner: `host:port` of a master, or STANDALONE. */
  private readonly connections = new Map<string, { redis: Redis; channels: string[] }>();
  private listener: TaskChangeListener | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly redis: RedisConnection,
    private readonly config: RedisConfig,
    private readonly metrics: TaskCacheMetrics,
  ) {
    this.channels = changeChannels(config.keyPrefix);
  }

  /** The one listener (the held watchers). */
  listen(listener: TaskChangeListener): void {
    this.listener = listener;
  }

  onModuleInit(): void {
    const client = this.redis.client;
    if (!(client instanceof Cluster)) {
      this.open(STANDALONE, this.channels, client.duplicate({ connectionName: 'task-cache-changes', autoResubscribe: false }));
      return;
    }
    const follow = () => {
      if (!this.stopped) this.followSlotMap(client);
    };
    client.on('refresh', follow);
    this.timer = setInterval(follow, OWNERS_CHECK_MS);
    this.timer.unref();
    follow();
  }

  onApplicationShutdown(): void {
    this.stopped = true;
    clearInterval(this.timer);
    for (const { redis } of this.connections.values()) redis.disconnect();
    this.connections.clear();
  }

  /** Connects to the master of each channel, as the cluster client's slot map has it now. */
  private followSlotMap(cluster: Cluster): void {
    const wanted = new Map<string, string[]>();
    for (const channel of this.channels) {
      const owner = cluster.slots[calculateSlot(channel)]?.[0];
      // No master known for it yet (the map not read): the next check tries again.
      if (owner === undefined) continue;
      const owned = wanted.get(owner);
      if (owned) owned.push(channel);
      else wanted.set(owner, [channel]);
    }
    for (const [owner, connection] of this.connections) {
      if (sameChannels(wanted.get(owner), connection.channels)) continue;
      connection.redis.disconnect();
      this.connections.delete(owner);
    }
    for (const [owner, channels] of wanted) {
      if (this.connections.has(owner)) continue;
      this.logger.log(`task changes: subscribing to ${channels.length} channels on ${owner}`);
      this.open(owner, channels, this.nodeConnection(owner));
    }
  }

  private open(owner: string, channels: string[], redis: Redis): void {
    this.connections.set(owner, { redis, channels });
    redis.on('error', () => undefined); // the main connection reports Redis being unreachable
    redis.on('smessage', (_channel: string, message: string) => this.listener?.changed(decodeChanges(message)));
    redis.on('ready', () => {
      if (this.stopped || this.connections.get(owner)?.redis !== redis) return;
      void Promise.all(channels.map((channel) => redis.ssubscribe(channel))).then(
        () => {
          this.metrics.taskChangeSubscriptions.inc();
          this.listener?.resubscribed();
        },
        // A failover under way (MOVED, or a node going down): the slot map check replaces the connection.
        (error: Error) => this.logger.debug(`task changes: subscribing on ${owner} failed: ${error.message}`),
      );
    });
    void redis.connect().catch(() => undefined);
  }

  /** A plain connection to one master, with the cluster's credentials, reconnecting on its own. */
  private nodeConnection(owner: string): Redis {
    const at = owner.lastIndexOf(':');
    return clusterNodeConnection(this.config.cluster!, { host: owner.slice(0, at), port: Number(owner.slice(at + 1)) }, 'task-cache-changes', { autoResubscribe: false });
  }
}

function sameChannels(a: readonly string[] | undefined, b: readonly string[]): boolean {
  return a !== undefined && a.length === b.length && a.every((channel, index) => channel === b[index]);
}
