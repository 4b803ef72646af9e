import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { LogThrottle } from '../common/log-throttle.js';
import { RetryBackoff } from '../common/retry-backoff.js';
import { sleep } from '../common/sleep.js';
import { BridgeConfig } from '../config/app-config.js';
import { TaskCacheMetrics } from '../metrics/task-cache-metrics.js';
import { TaskProjection } from '../projection/task-projection.js';
import { BridgeBusyError } from './bridge-errors.js';
import { ConductorClient } from './conductor-client.js';
import { TaskRecordProducer } from './task-record-producer.js';

/**
 * Why a task is re-read (`reason` label): a task notification, the re-read that follows one, a
 * workflow notification, or the reconciliation of recently active workflows.
 */
export type RereadReason = 'notification' | 'reread' | 'workflow' | 'reconcile';
/** What a re-read did (`outcome` label). */
export type RereadOutcome = 'produced' | 'unchanged' | 'missing' | 'failed';

/** Re-reads of Conductor under way at once, whatever the number of tasks waiting. */
const CONCURRENT_READS = 16;
/** Attempts at reading a task from Conductor (or producing it) before a pass gives up. */
const ATTEMPTS = 4;
/** A task Conductor says it does not have is asked for again this often (it may not be visible yet). */
const MISSING_ATTEMPTS = 3;
const FAILURE_LOG_INTERVAL_MS = 10_000;
/**
 * Re-reads waiting for their delay, per task BRIDGE_QUEUE_LIMIT allows under way: a steady
 * BRIDGE_QUEUE_LIMIT x 10 tasks notified per BRIDGE_REREAD_DELAY_MS. Past it a re-read is skipped
 * (counted); reconciliation still covers its workflow.
 */
const REREADS_PER_QUEUED_TASK = 10;

/** A pass that waits: asked for by a notification, answered when the pass is done. */
interface Waiter {
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** One task's re-reads: at most one under way, and the next one asked for meanwhile. */
interface TaskState {
  running: boolean;
  /** The next pass (begun after the running one ends): its kind and who waits for it. */
  next: { produce: boolean; reason: RereadReason; waiters: Waiter[] } | undefined;
  /** The re-read that follows a notification's pass, once armed. */
  reread: NodeJS.Timeout | undefined;
}

/**
 * Re-reads tasks from Conductor and produces their bytes, unchanged, to the source topic.
 *
 * - Per task, one pass at a time: a pass asked for while one runs runs after it (it may have been
 *   asked for by a change the running pass read too early to see), and every ask meanwhile shares
 *   it. A notification's caller waits for the pass begun after its notification.
 * - A notification's pass always produces what it reads. So does the re-read that follows it,
 *   BRIDGE_REREAD_DELAY_MS after that pass produced: across instances, a pass that read earlier may
 *   produce later than one that read later, and the last record would be older than Conductor's
 *   task; the re-read, later than both, produces the task as it is then.
 * - A workflow's or reconciliation's pass produces only what differs from what the projection
 *   serves (those passes re-read many tasks that have not changed).
 * - Bounded: at most BRIDGE_QUEUE_LIMIT tasks wait for a pass or are under one (a notification past
 *   it is refused, `BridgeBusyError`, for Conductor to send again; a reconciliation's pass is
 *   skipped), at most ten times as many re-reads wait for their delay, and at most
 *   CONCURRENT_READS passes read Conductor at once.
 * - A read Conductor fails (unreachable, or not the task) is retried with backoff; a pass that
 *   still fails is counted and logged, and its waiters are answered the failure.
 */
@Injectable()
export class TaskRereader implements OnApplicationShutdown {
  private readonly logger = new Logger('Bridge');
  private readonly tasks = new Map<string, TaskState>();
  /** Tasks with a pass under way or asked for: what BRIDGE_QUEUE_LIMIT bounds. */
  private readonly active = new Set<string>();
  /** Re-reads armed (REREADS_PER_QUEUED_TASK x BRIDGE_QUEUE_LIMIT at most). */
  private rereadsArmed = 0;
  private readonly slots: (() => void)[] = [];
  private reading = 0;
  private readonly stopping = new AbortController();
  private readonly failureLog = new LogThrottle(FAILURE_LOG_INTERVAL_MS);
  private readonly missingLog = new LogThrottle(FAILURE_LOG_INTERVAL_MS);

  constructor(
    private readonly conductor: ConductorClient,
    private readonly producer: TaskRecordProducer,
    private readonly projection: TaskProjection,
    private readonly config: BridgeConfig,
    private readonly metrics: TaskCacheMetrics,
  ) {}

  /** Tasks waiting for a pass or under one. */
  get pending(): number {
    return this.active.size;
  }

  /**
   * A task notification: resolves once a pass begun after it has produced the task (or found that
   * Conductor has no such task). Throws `BridgeBusyError` when the queue is full; rejects with the
   * pass's failure.
   */
  notified(taskId: string): Promise<void> {
    if (!this.active.has(taskId) && this.active.size >= this.config.queueLimit) throw new BridgeBusyError(this.config.queueLimit);
    return new Promise((resolve, reject) => this.schedule(taskId, true, 'notification', { resolve, reject }));
  }

  /** A pass that produces only what differs from the projection; false when the queue is full (skipped). */
  reconcile(taskId: string, reason: 'workflow' | 'reconcile'): boolean {
    if (!this.active.has(taskId) && this.active.size >= this.config.queueLimit) {
      this.metrics.bridgeRereads.inc({ reason, outcome: 'skipped' });
      return false;
    }
    this.schedule(taskId, false, reason);
    return true;
  }

  onApplicationShutdown(): void {
    this.stopping.abort();
    for (const state of this.tasks.values()) clearTimeout(state.reread);
  }

  private schedule(taskId: string, produce: boolean, reason: RereadReason, waiter?: Waiter): void {
    let state = this.tasks.get(taskId);
    if (!state) {
      state = { running: false, next: undefined, reread: undefined };
      this.tasks.set(taskId, state);
    }
    this.active.add(taskId);
    this.metrics.bridgeQueued.set(this.active.size);
    const next = (state.next ??= { produce, reason, waiters: [] });
    if (produce && !next.produce) Object.assign(next, { produce, reason });
    if (waiter) next.waiters.push(waiter);
    if (!state.running) void this.run(taskId, state);
  }

  private async run(taskId: string, state: TaskState): Promise<void> {
    state.running = true;
    while (state.next && !this.stopping.signal.aborted) {
      const { produce, reason, waiters } = state.next;
      state.next = undefined;
      let outcome: RereadOutcome;
      try {
        outcome = await this.pass(taskId, produce);
        for (const waiter of waiters) waiter.resolve();
      } catch (error) {
        outcome = 'failed';
        if (this.failureLog.take()) this.logger.warn({ taskId, err: error }, `re-reading task ${taskId} from Conductor failed (${reason}): ${(error as Error).message}`);
        for (const waiter of waiters) waiter.reject(error);
      }
      this.metrics.bridgeRereads.inc({ reason, outcome });
      if (reason === 'notification' && outcome === 'produced' && this.config.rereadDelayMs > 0) this.armReread(taskId, state);
    }
    state.running = false;
    this.active.delete(taskId);
    this.metrics.bridgeQueued.set(this.active.size);
    // Stopping: whoever still waits is answered, so no request hangs.
    if (state.next) for (const waiter of state.next.waiters) waiter.reject(new Error('the service is stopping'));
    if (!state.reread) this.forget(taskId, state);
  }

  /** The re-read after a notification's pass, pushed back by every later one; skipped (counted) past its bound. */
  private armReread(taskId: string, state: TaskState): void {
    if (state.reread) clearTimeout(state.reread);
    else if (this.rereadsArmed >= REREADS_PER_QUEUED_TASK * this.config.queueLimit) return void this.metrics.bridgeRereads.inc({ reason: 'reread', outcome: 'skipped' });
    else this.rereadsArmed += 1;
    state.reread = setTimeout(() => {
      state.reread = undefined;
      this.rereadsArmed -= 1;
      if (this.stopping.signal.aborted) return this.forget(taskId, state);
      this.schedule(taskId, true, 'reread');
    }, this.config.rereadDelayMs);
    state.reread.unref();
  }

  private forget(taskId: string, state: TaskState): void {
    if (state.running || state.next || state.reread) return;
    if (this.tasks.get(taskId) === state) this.tasks.delete(taskId);
  }

  /** Reads the task from Conductor and produces it (always, or only when it differs from the projection). */
  private async pass(taskId: string, always: boolean): Promise<RereadOutcome> {
    const bytes = await this.withSlot(() => this.read(taskId));
    if (bytes === null) {
      if (this.missingLog.take()) this.logger.warn({ taskId }, `Conductor has no task ${taskId} (answered 204 or 404 ${MISSING_ATTEMPTS} times); nothing produced`);
      return 'missing';
    }
    if (!always) {
      // A projection that cannot be read is no reason not to produce: ingest applies only what is newer.
      const stored = await this.projection.get(taskId).catch(() => undefined);
      if (stored?.value.equals(bytes)) return 'unchanged';
    }
    await this.retried(() => this.producer.produce(taskId, bytes));
    return 'produced';
  }

  /** The task's bytes, or null when Conductor still says it has no such task after MISSING_ATTEMPTS. */
  private async read(taskId: string): Promise<Buffer | null> {
    const backoff = new RetryBackoff(100, 1000);
    for (let attempt = 1; ; attempt++) {
      const bytes = await this.retried(() => this.conductor.getTask(taskId));
      if (bytes !== null || attempt >= MISSING_ATTEMPTS) return bytes;
      await sleep(backoff.next(), this.stopping.signal);
    }
  }

  /** `step`, tried ATTEMPTS times with backoff; the last failure is thrown. */
  private async retried<T>(step: () => Promise<T>): Promise<T> {
    const backoff = new RetryBackoff(100, 2000);
    for (let attempt = 1; ; attempt++) {
      try {
        return await step();
      } catch (error) {
        this.metrics.bridgeFailures.inc();
        if (attempt >= ATTEMPTS || this.stopping.signal.aborted) throw error;
        await sleep(backoff.next(), this.stopping.signal);
      }
    }
  }

  /** Runs `work` once fewer than CONCURRENT_READS others run. */
  private async withSlot<T>(work: () => Promise<T>): Promise<T> {
    if (this.reading >= CONCURRENT_READS) await new Promise<void>((resolve) => this.slots.push(resolve));
    else this.reading += 1;
    try {
      return await work();
    } finally {
      const nextInLine = this.slots.shift();
      if (nextInLine) nextInLine();
      else this.reading -= 1;
    }
  }
}
