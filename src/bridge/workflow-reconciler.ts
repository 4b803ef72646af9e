import { Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { LogThrottle } from '../common/log-throttle.js';
import { BridgeConfig } from '../config/app-config.js';
import { TaskCacheMetrics } from '../metrics/task-cache-metrics.js';
import { ConductorClient } from './conductor-client.js';
import { RateLimiter } from './rate-limiter.js';
import { TaskRereader } from './task-rereader.js';

/** Recently active workflows remembered at most; past it the least recently notified are forgotten. */
const MAX_RECENT_WORKFLOWS = 10_000;
/** Workflows read from Conductor at once (each answer is buffered whole, up to 16 MiB). */
const CONCURRENT_WORKFLOW_READS = 2;
/** Task ids waiting to be compared, per task BRIDGE_QUEUE_LIMIT allows under way; past it they are skipped (counted). */
const COMPARES_PER_QUEUED_TASK = 10;

/**
 * What Conductor never announces. Conductor's task webhook misses transitions (a worker's progress
 * update, system tasks that complete at once, the server's own timeouts, the decider's later field
 * changes) and drops notifications it cannot deliver. So:
 * - a workflow notification (completed, terminated, failed, timed out) re-reads every task of the
 *   workflow and produces those whose bytes differ from what the projection serves;
 * - every BRIDGE_RECONCILE_INTERVAL_MS, the tasks of every workflow notified within
 *   BRIDGE_RECONCILE_WINDOW_MS (task or workflow notifications) are compared the same way.
 * Both read Conductor at most BRIDGE_CONDUCTOR_RATE times a second, shared, in the order asked for,
 * and at most CONCURRENT_WORKFLOW_READS workflows at once. A round takes (workflows + their tasks)
 * / BRIDGE_CONDUCTOR_RATE seconds at least; one that has not finished when the next is due lets
 * that one pass. The task ids to compare wait in one queue, each once, bounded; past the bound
 * they are skipped (counted), for a later round.
 */
@Injectable()
export class WorkflowReconciler implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('Bridge');
  /** workflowId → when last notified (ms); insertion order is recency. */
  private readonly recent = new Map<string, number>();
  private readonly stopping = new AbortController();
  private readonly rate: RateLimiter;
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> | undefined;
  /** Task ids waiting to be compared, each once, by why; drained at the shared rate by one loop. */
  private readonly toCompare = new Map<string, 'workflow' | 'reconcile'>();
  private comparing: Promise<void> | undefined;
  private workflowReads = 0;
  private readonly workflowSlots: (() => void)[] = [];
  private readonly failureLog = new LogThrottle(10_000);

  constructor(
    private readonly conductor: ConductorClient,
    private readonly rereader: TaskRereader,
    private readonly config: BridgeConfig,
    private readonly metrics: TaskCacheMetrics,
  ) {
    this.rate = new RateLimiter(config.conductorRate, this.stopping.signal);
  }

  onModuleInit(): void {
    this.timer = setInterval(() => {
      this.round ??= this.reconcileRecent().finally(() => (this.round = undefined));
    }, this.config.reconcileIntervalMs);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    this.stopping.abort();
    clearInterval(this.timer);
  }

  /** A workflow seen active (a notification of it or of one of its tasks). */
  seen(workflowId: string): void {
    this.recent.delete(workflowId);
    this.recent.set(workflowId, Date.now());
    if (this.recent.size > MAX_RECENT_WORKFLOWS) this.recent.delete(this.recent.keys().next().value!);
    this.metrics.bridgeRecentWorkflows.set(this.recent.size);
  }

  /**
   * A workflow notification: resolves once its tasks are read from Conductor and their passes
   * scheduled (paced in the background); rejects when the workflow cannot be read.
   */
  async workflowNotified(workflowId: string): Promise<void> {
    this.seen(workflowId);
    this.compare(await this.taskIdsOf(workflowId), 'workflow');
  }

  /** One round over the recently active workflows. */
  private async reconcileRecent(): Promise<void> {
    const since = Date.now() - this.config.reconcileWindowMs;
    for (const [workflowId, at] of this.recent) if (at < since) this.recent.delete(workflowId);
    this.metrics.bridgeRecentWorkflows.set(this.recent.size);
    for (const workflowId of [...this.recent.keys()]) {
      if (this.stopping.signal.aborted) return;
      try {
        this.compare(await this.taskIdsOf(workflowId), 'reconcile');
        // Paced by the comparisons: a round reads no faster than it compares.
        await this.comparing;
      } catch (error) {
        if (this.stopping.signal.aborted) return;
        if (this.failureLog.take()) this.logger.warn({ workflowId, err: error }, `reconciling workflow ${workflowId} failed: ${(error as Error).message}`);
      }
    }
  }

  /** The workflow's task ids; a workflow Conductor no longer has is forgotten. */
  private async taskIdsOf(workflowId: string): Promise<string[]> {
    if (this.workflowReads >= CONCURRENT_WORKFLOW_READS) await new Promise<void>((resolve) => this.workflowSlots.push(resolve));
    else this.workflowReads += 1;
    try {
      await this.rate.take();
      const taskIds = await this.conductor.getWorkflowTaskIds(workflowId);
      if (taskIds !== null) return taskIds;
      this.recent.delete(workflowId);
      return [];
    } finally {
      const nextInLine = this.workflowSlots.shift();
      if (nextInLine) nextInLine();
      else this.workflowReads -= 1;
    }
  }

  /** Queues a comparing pass per task (each once), drained at the shared rate. */
  private compare(taskIds: readonly string[], reason: 'workflow' | 'reconcile'): void {
    const bound = COMPARES_PER_QUEUED_TASK * this.config.queueLimit;
    for (const taskId of taskIds) {
      if (this.toCompare.has(taskId)) continue;
      if (this.toCompare.size >= bound) {
        this.metrics.bridgeRereads.inc({ reason, outcome: 'skipped' });
        continue;
      }
      this.toCompare.set(taskId, reason);
    }
    this.comparing ??= this.drain().finally(() => (this.comparing = undefined));
  }

  private async drain(): Promise<void> {
    try {
      for (const [taskId, reason] of this.toCompare) {
        await this.rate.take();
        this.toCompare.delete(taskId);
        this.rereader.reconcile(taskId, reason);
      }
    } catch {
      // Stopping: the rest are left to the next start's reconciliation.
    }
  }
}
