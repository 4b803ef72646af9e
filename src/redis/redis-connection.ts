import { Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { Cluster, Redis } from 'ioredis';
import { LogThrottle } from '../common/log-throttle.js';
import { RedisClusterConfig, RedisConfig } from '../config/app-config.js';

const MAX_RECONNECT_DELAY_MS = 2000;
const ERROR_LOG_INTERVAL_MS = 10_000;
/** How often a cluster client asks for the slot map on its own, besides when a reply says it moved. */
const SLOTS_REFRESH_INTERVAL_MS = 1000;

/** A standalone Redis or a Redis Cluster: both take the same single-key commands and scripts. */
export type RedisClient = Redis | Cluster;

const reconnectDelay = (attempt: number) => Math.min(50 * 2 ** Math.min(attempt, 10), MAX_RECONNECT_DELAY_MS);

/**
 * Owns the service's ioredis client: `Redis` on REDIS_URL, or `Cluster` on REDIS_CLUSTER_NODES.
 * Auto-pipelining batches concurrent commands into one write (per node, on a cluster); the offline
 * queue is off so that, while Redis is down, commands fail at once (reads answer 503, ingest backs
 * off) instead of queueing until a client times out.
 */
@Injectable()
export class RedisConnection implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(RedisConnection.name);
  readonly client: RedisClient;
  /**
   * Resolves once the writes this client has made are on a replica of every master that has one
   * in sync, so that a failover cannot lose them; rejects if a replica does not acknowledge them
   * in time. At once on a standalone Redis, whose replicas (if any) are not failed over to.
   */
  readonly replicated: () => Promise<void>;
  private wasReady = false;
  private readonly errorLog = new LogThrottle(ERROR_LOG_INTERVAL_MS);
  /** A cluster's slot map, asked for every second (see clusterClient); stopped at shutdown. */
  private slotsTimer: NodeJS.Timeout | undefined;

  constructor(config: RedisConfig) {
    const connection = {
      maxRetriesPerRequest: 0,
      commandTimeout: config.commandTimeoutMs,
      connectTimeout: Math.max(config.commandTimeoutMs, 1000),
      connectionName: 'task-cache',
    };
    if (config.cluster) {
      const cluster = clusterClient(config.cluster, connection);
      this.client = cluster;
      this.replicated = () => replicated(cluster, Math.floor(config.commandTimeoutMs / 2));
      // Asked here rather than with ioredis's slotsRefreshInterval, whose timer re-arms itself when
      // the client is closed while a refresh is under way, and then runs for ever: a closed client
      // (an app closed in process, a test) must leave nothing behind.
      this.slotsTimer = setInterval(() => {
        if (cluster.status === 'ready') cluster.refreshSlotsCache();
      }, SLOTS_REFRESH_INTERVAL_MS);
      this.slotsTimer.unref();
    } else {
      this.client = new Redis(config.url, {
        ...connection,
        lazyConnect: true,
        enableAutoPipelining: true,
        enableOfflineQueue: false,
        retryStrategy: reconnectDelay,
      });
      this.replicated = () => Promise.resolve();
    }
    this.client.on('ready', () => {
      if (this.wasReady) this.logger.log('redis connection restored');
      this.wasReady = true;
    });
    // Reconnect attempts fail every few hundred ms during an outage: say so, but not each time.
    const unreachable = (error: Error) => {
      if (this.errorLog.take()) this.logger.warn(`redis unreachable, reconnecting: ${error.message}`);
    };
    this.client.on('error', unreachable);
    // A cluster reports a node it cannot reach apart from its own errors (no seed reachable, no slot map).
    this.client.on('node error', (error: Error, node: string) => unreachable(new Error(`node ${node}: ${error.message}`)));
    this.client.on('end', () => this.logger.debug('redis connection closed'));
  }

  async onModuleInit(): Promise<void> {
    // Boot does not wait for Redis: the client keeps reconnecting, reads answer 503 meanwhile
    // and ingest holds its offsets until the first batch can be applied.
    await this.client.connect().catch((error: Error) => this.logger.warn(`redis not reachable at boot: ${error.message}`));
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.slotsTimer);
    if (this.client.status === 'end') return;
    await this.client.quit().catch(() => this.client.disconnect());
  }
}

/**
 * A plain connection of its own to one node of a cluster, with the cluster's credentials and TLS,
 * reconnecting by itself: for a subscription, which ioredis's cluster client would hide (its own
 * subscribers resubscribe unseen, and kept connections open after being closed during a cluster
 * restart).
 */
export function clusterNodeConnection(cluster: RedisClusterConfig, node: { host: string; port: number }, connectionName: string, options: { autoResubscribe?: boolean } = {}): Redis {
  const { username, password, tls } = cluster;
  return new Redis({
    host: node.host,
    port: node.port,
    ...(username !== undefined && { username }),
    ...(password !== undefined && { password }),
    ...(tls && { tls: {} }),
    connectionName,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: reconnectDelay,
    ...options,
  });
}

/**
 * A cluster client that fails as fast as the standalone one. With the offline queue off, a command
 * for a slot whose master cannot be reached fails at once rather than being retried for
 * `retryDelayOnFailover` x `maxRedirections` (ioredis's defaults, 100 ms x 16): reads answer 503
 * and ingest backs off, as with a standalone Redis that is down. MOVED and ASK are still followed
 * (a slot that moved is served at once); the slot map is refreshed on every MOVED and every
 * second, so a promoted replica is found within about a second of its promotion. Reads go to
 * masters (`scaleReads: 'master'`): a replica may lag, and a read must not go back in time.
 */
function clusterClient(cluster: RedisClusterConfig, connection: Record<string, number | string>): Cluster {
  return new Cluster(
    cluster.nodes.map(({ host, port }) => ({ host, port })),
    {
      lazyConnect: true,
      enableAutoPipelining: true,
      enableOfflineQueue: false,
      scaleReads: 'master',
      retryDelayOnFailover: 0,
      retryDelayOnClusterDown: 0,
      // The slot map is asked for every second by RedisConnection itself, not by ioredis's timer.
      slotsRefreshInterval: 0,
      clusterRetryStrategy: reconnectDelay,
      // With TLS, nodes are reached by the names they are given, which their certificates carry.
      ...(cluster.tls && { dnsLookup: (address: string, callback: (error: null, address: string) => void) => callback(null, address) }),
      redisOptions: {
        ...connection,
        ...(cluster.username !== undefined && { username: cluster.username }),
        ...(cluster.password !== undefined && { password: cluster.password }),
        ...(cluster.tls && { tls: {} }),
      },
    },
  );
}

/**
 * Redis replicates asynchronously: a master that acknowledged a write and died before its replica
 * had it would lose it to the failover, after ingest had committed its offset. WAIT on the very
 * connections the writes went out on (one per master) holds the batch until one replica has them.
 * A master the slot map shows without replicas (after a failover, until the old master returns as
 * a replica) has none to lose them to, and is not waited for: ingest goes on.
 */
async function replicated(cluster: Cluster, timeoutMs: number): Promise<void> {
  const withReplica = new Set<string>();
  for (const nodes of cluster.slots) if (nodes && nodes.length > 1) withReplica.add(nodes[0]);
  await Promise.all(
    cluster.nodes('master').map(async (node) => {
      const key = `${node.options.host}:${node.options.port}`;
      if (!withReplica.has(key)) return;
      const acknowledged = await node.wait(1, timeoutMs);
      if (acknowledged < 1) throw new Error(`no replica of ${key} acknowledged the writes within ${timeoutMs} ms`);
    }),
  );
}
