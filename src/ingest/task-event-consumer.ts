import { sleep } from '../common/sleep.js';
import { BeforeApplicationShutdown, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import kafkajs, { type Cluster, type Consumer } from 'kafkajs';
import { KafkaConfig, LifecycleConfig } from '../config/app-config.js';
import { RetryBackoff } from '../common/retry-backoff.js';
import { IngestState } from '../kafka/ingest-state.js';
import { KafkaClient } from '../kafka/kafka-client.js';
import { describeKafkaError, isRetriableKafkaError } from '../kafka/kafka-errors.js';
import { StartupCatchUp } from '../kafka/startup-catch-up.js';
import { TopicProvisioner } from '../kafka/topic-provisioner.js';
import { TaskCacheMetrics } from '../metrics/task-cache-metrics.js';
import { IngestService } from './ingest.service.js';

/**
 * Batches of different partitions handled at once, so one batch's decoding overlaps another's
 * Redis round trip. Measured on 2 cores, 1, 2 and 4 were within noise of each other: ingest is
 * bound by Redis and CPU there, not by waiting.
 */
export const PARTITIONS_CONSUMED_CONCURRENTLY = 2;
/** Fetch long-poll: short, so a stop does not wait long for an idle fetch to return. */
const MAX_FETCH_WAIT_MS = 1000;
/**
 * Larger fetches than kafkajs's defaults (1 MiB per partition, 10 MiB in all). A batch applies only
 * each task's last event, so while catching up on a backlog a larger batch means fewer Redis
 * writes (figures: bench/RESULTS.md). The cost is memory and, after a crash, a larger batch to
 * consume again.
 */
const MAX_BYTES_PER_PARTITION = 4 * 1024 * 1024;
const MAX_BYTES_PER_FETCH = 16 * 1024 * 1024;
/** How the source topic is fetched, by live ingest and by a rebuild's replay alike. */
export const FETCH_SETTINGS = { maxWaitTimeInMs: MAX_FETCH_WAIT_MS, maxBytesPerPartition: MAX_BYTES_PER_PARTITION, maxBytes: MAX_BYTES_PER_FETCH } as const;
/**
 * A consumer that stays up this long after joining its group has shown that it works: only then
 * does the backoff between restarts start over. A crash that recurs right after every join keeps
 * growing it instead.
 */
const STABLE_AFTER_JOIN_MS = 60_000;
/**
 * The wait between starts: first and largest. While Kafka is unreachable a start fails at its topic
 * check, which tries once, so the cap is how often an unreachable Kafka is tried again (and said
 * so in the log); it also keeps a consumer that crashes right after each join from hammering the
 * coordinator.
 */
const RESTART_INITIAL_MS = 1000;
const RESTART_MAX_MS = 30_000;

/** kafkajs's group coordinator broker: `leaveGroup` is what its own consumer leaves with; its typings omit it. */
interface GroupCoordinator {
  leaveGroup(request: { groupId: string; memberId: string }): Promise<unknown>;
}

/**
 * The kafkajs consumer of the source topic. Thin: lifecycle and recovery only; each batch goes to
 * `IngestService`.
 *
 * One start path: check (and create) the topics, connect, subscribe, run. It starts in the
 * background after boot, so the read API comes up even when Kafka is down. Every failure takes the
 * same decision, by kafkajs's `retriable` rule (`isRetriableKafkaError`): one that may pass (Kafka
 * unreachable) starts over from the topics after one shared backoff; one that will not (a
 * replication factor above the broker count, an authorization failure) stops the consumer, says
 * what is wrong and leaves it `failed` in `IngestState`, for a restart once it is fixed. kafkajs
 * restarts the consumer after a crash itself when it can; when it will not, the same decision
 * applies. Reads go on from Redis either way. On shutdown the batch in flight finishes, its offsets
 * are committed, the group is left and the connections close, all within a bound.
 *
 * After a crash the consumer rejoins as a new member, and first removes the member it was from
 * the group (see `removePreviousMember`).
 */
@Injectable()
export class TaskEventConsumer implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('IngestConsumer');
  private readonly stopping = new AbortController();
  private readonly startBackoff = new RetryBackoff(RESTART_INITIAL_MS, RESTART_MAX_MS);
  private consumer: Consumer | undefined;
  private starting: Promise<void> = Promise.resolve();
  private restartTimer: NodeJS.Timeout | undefined;
  private stableTimer: NodeJS.Timeout | undefined;
  /** The group member this service is, once joined. */
  private memberId: string | undefined;
  /** A member of this service's that a crash left behind in the group, until it is removed. */
  private previousMemberId: string | undefined;
  private removing: Promise<void> | undefined;

  constructor(
    private readonly client: KafkaClient,
    private readonly provisioner: TopicProvisioner,
    private readonly ingest: IngestService,
    private readonly state: IngestState,
    private readonly catchUp: StartupCatchUp,
    private readonly kafka: KafkaConfig,
    private readonly lifecycle: LifecycleConfig,
    private readonly metrics: TaskCacheMetrics = new TaskCacheMetrics({}),
  ) {}

  onApplicationBootstrap(): void {
    this.starting = this.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopping.abort();
    clearTimeout(this.restartTimer);
    clearTimeout(this.stableTimer);
    this.ingest.stopRetrying();
    // Half of what the drain leaves of the bound; a third of it went to closing HTTP before the hooks
    // ran (src/lifecycle/graceful-shutdown.ts), so closing Redis and the producers still fits.
    const { shutdownTimeoutMs, shutdownDrainMs } = this.lifecycle;
    const boundMs = Math.floor((shutdownTimeoutMs - shutdownDrainMs) / 2);
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
    // A removal of a previous member still under way ends at its next step and closes its connections.
    await this.removing;
    await this.catchUp.settled();
    this.forgetPartitions();
    this.state.enter('stopped');
    this.logger.log('kafka consumer stopped');
  }

  private async start(): Promise<void> {
    const { topic, groupId } = this.kafka;
    while (!this.stopping.signal.aborted) {
      let consumer: Consumer | undefined;
      try {
        this.state.enter('provisioning');
        await this.provisioner.ensureTopics(this.stopping.signal);
        if (this.stopping.signal.aborted) return;
        // Cold start: readiness waits until the group has caught up with the topic as it is now.
        this.catchUp.follow(this.stopping.signal);
        this.state.enter('joining');
        consumer = this.createConsumer();
        this.consumer = consumer;
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
        const step = this.state.snapshot().phase === 'provisioning' ? 'could not check its topics' : 'could not start';
        if (consumer) {
          if (this.consumer === consumer) this.consumer = undefined;
          await consumer.disconnect().catch(() => undefined);
        }
        if (this.stopping.signal.aborted) return;
        const delayMs = this.nextAttempt(error, step);
        if (delayMs === undefined) return;
        await sleep(delayMs, this.stopping.signal).catch(() => undefined);
      }
    }
  }

  /**
   * The one decision after a failure to start or a crash: the wait before starting over when the
   * error may pass; otherwise undefined, once it has said what is wrong and entered `failed`.
   */
  private nextAttempt(error: unknown, what: string): number | undefined {
    const detail = describeKafkaError(error);
    if (!isRetriableKafkaError(error)) {
      this.state.enter('failed', { error: detail });
      this.logger.error(
        { err: error },
        `kafka consumer ${what} and stops retrying: the error will not pass by waiting; ingest stays stopped (reads go on from Redis) until it is fixed and the service restarted: ${detail}`,
      );
      return undefined;
    }
    const delayMs = this.startBackoff.next();
    this.state.enter('retrying', { error: detail });
    this.logger.warn(`kafka consumer ${what}, retrying in ${delayMs} ms: ${detail}`);
    return delayMs;
  }

  private createConsumer(): Consumer {
    const { groupId, sessionTimeoutMs } = this.kafka;
    const consumer = this.client.kafka.consumer({
      groupId,
      sessionTimeout: sessionTimeoutMs,
      heartbeatInterval: Math.min(3000, Math.floor(sessionTimeoutMs / 3)),
      ...FETCH_SETTINGS,
      allowAutoTopicCreation: false,
      retry: {
        retries: 5,
        // Asked after a retriable crash: restart, unless the service is stopping.
        restartOnFailure: async () => !this.stopping.signal.aborted,
      },
    });
    const { CONNECT, CRASH, GROUP_JOIN } = consumer.events;
    consumer.on(CRASH, ({ payload: { error, restart } }) => {
      // Whether kafkajs restarts it or this does, the consumer comes back as a new member.
      this.previousMemberId = this.memberId ?? this.previousMemberId;
      this.memberId = undefined;
      clearTimeout(this.stableTimer);
      this.stableTimer = undefined;
      this.forgetPartitions();
      if (this.stopping.signal.aborted) return;
      if (restart) {
        this.state.enter('retrying', { error: describeKafkaError(error) });
        this.logger.warn(`kafka consumer crashed, kafkajs restarts it: ${error.message}`);
        return;
      }
      const delayMs = this.nextAttempt(error, 'crashed and kafkajs will not restart it');
      if (delayMs === undefined) {
        // kafkajs has disconnected it before saying so; this makes sure, and a shutdown waits for it.
        if (this.consumer === consumer) this.consumer = undefined;
        this.starting = consumer.disconnect().catch(() => undefined);
        return;
      }
      this.restartTimer = setTimeout(() => this.restart(consumer), delayMs);
    });
    // Emitted once the consumer reaches a broker, and again each time kafkajs (re)starts its group,
    // before the join.
    consumer.on(CONNECT, () => this.startRemovingPreviousMember());
    consumer.on(GROUP_JOIN, ({ payload: { memberId, memberAssignment, duration } }) => {
      this.memberId = memberId;
      const partitions = memberAssignment[this.kafka.topic] ?? [];
      this.forgetPartitions();
      this.state.enter('consuming', { partitions });
      if (this.startBackoff.attempts > 0 && this.stableTimer === undefined) {
        this.stableTimer = setTimeout(() => {
          this.stableTimer = undefined;
          this.startBackoff.reset();
        }, STABLE_AFTER_JOIN_MS);
      }
      this.logger.log(`kafka consumer joined group ${groupId} in ${duration} ms; consuming partitions [${partitions.join(', ')}]`);
    });
    return consumer;
  }

  /**
   * Starts removing the previous member, unless a removal is under way. One that ends while a
   * newer crash has left another member behind starts over for that one.
   */
  private startRemovingPreviousMember(): void {
    const previous = this.previousMemberId;
    if (previous === undefined || this.removing || this.stopping.signal.aborted) return;
    this.removing = this.removePreviousMember(previous).finally(() => {
      this.removing = undefined;
      if (this.previousMemberId !== undefined && this.previousMemberId !== previous) this.startRemovingPreviousMember();
    });
  }

  /**
   * Removes the member this service was before a crash, so that the new member's join does not
   * wait for it.
   *
   * kafkajs cannot ride out a broker restart as the same member: with the broker gone, its fetch
   * drops the broker from the pool (consumerGroup.js `recoverFromFetch`), the fetch manager then
   * finds no broker and the runner bails (fetchManager.js `createFetchers`, runner.js
   * `scheduleFetchManager`), or the client's connection retries run out first (brokerPool.js
   * `connect`), an error the runner does not retry; either way it crashes, whatever the retry
   * settings. Every (re)start builds a new ConsumerGroup with no member id (consumer/index.js
   * `start`, consumerGroup.js constructor), so it joins as a new member. The restarted coordinator
   * has reloaded the old member from __consumer_offsets and holds the rebalance until that member
   * rejoins or its session expires: the join waited out the whole session timeout (30 s by
   * default). kafkajs has no static membership to rejoin as the same member, and a shorter session
   * timeout would only shorten that wait while making slow batches more likely to cost the
   * partitions. So the new consumer asks the coordinator to remove the old member (a LeaveGroup on
   * its behalf, as the old consumer would have sent had the broker been there): the join then
   * completes at once.
   */
  private async removePreviousMember(memberId: string): Promise<void> {
    const { groupId, sessionTimeoutMs } = this.kafka;
    const cluster = this.separateCluster();
    const backoff = new RetryBackoff(200, 2000);
    const deadline = Date.now() + sessionTimeoutMs;
    let said = false;
    while (!this.stopping.signal.aborted && this.previousMemberId === memberId) {
      try {
        await cluster.connect();
        await cluster.refreshMetadata();
        const coordinator = await cluster.findGroupCoordinator({ groupId });
        // Gone already if kafkajs could leave the group when it stopped the crashed consumer.
        const { groups } = (await coordinator.describeGroups({ groupIds: [groupId] })) as { groups: { members: { memberId: string }[] }[] };
        if (!groups[0]?.members.some((member) => member.memberId === memberId)) break;
        if (!said) {
          said = true;
          this.logger.log(
            `kafka consumer rejoins group ${groupId} as a new member; the group still holds its previous member ${memberId}, which would hold the join until that member's session expires (up to ${sessionTimeoutMs} ms): removing it`,
          );
        }
        await (coordinator as unknown as GroupCoordinator).leaveGroup({ groupId, memberId });
        break;
      } catch (error) {
        // Its session expired meanwhile.
        if ((error as { type?: string }).type === 'UNKNOWN_MEMBER_ID') break;
        const delayMs = backoff.next();
        if (!isRetriableKafkaError(error) || Date.now() + delayMs > deadline) {
          this.logger.warn(
            `kafka consumer rejoins group ${groupId} as a new member but could not remove its previous member ${memberId}; the join may wait up to ${sessionTimeoutMs} ms for that member's session to expire: ${(error as Error).message}`,
          );
          break;
        }
        await sleep(delayMs, this.stopping.signal).catch(() => undefined);
      }
    }
    await cluster.disconnect().catch(() => undefined);
    if (this.previousMemberId === memberId) this.previousMemberId = undefined;
  }

  /**
   * A kafkajs cluster client with connections of its own: the new member's JoinGroup, held by the
   * coordinator until the old member is gone, would hold back a LeaveGroup sent after it on the
   * same connection (a broker answers each connection's requests in order). kafkajs hands a
   * cluster to partition assigners only, so it comes from a consumer that is never connected.
   */
  private separateCluster(): Cluster {
    let cluster: Cluster | undefined;
    this.client.kafka.consumer({
      groupId: this.kafka.groupId,
      partitionAssigners: [
        (options) => {
          cluster = options.cluster;
          return kafkajs.PartitionAssigners.roundRobin(options);
        },
      ],
    });
    return cluster!;
  }

  /**
   * Lag and held batches are reported for the partitions this member consumes, each from its
   * first batch on: after a crash, a stop or a new assignment, none until then.
   */
  private forgetPartitions(): void {
    this.metrics.consumerLag.reset();
    this.metrics.batchHeld.reset();
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
