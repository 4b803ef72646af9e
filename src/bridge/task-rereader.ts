import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { LogThrottle } from '../common/log-throttle.js';
import { RetryBackoff } from '../common/retry-backoff.js';
import { sleep } from '../common/sleep.js';
import { BridgeConfig } from '../config/app-config.js';
import { TaskCacheMetrics } from '../metrics/task-cache-metrics.js';
import { TaskProjection } from '../projection/task-projection.js';
import { BridgeBusyError, BridgeUnavailableError } from './bridge-errors.js';
import { ConductorClient, ConductorRefusedError } from './conductor-client.js';
import { TaskRecordProducer } from './task-record-producer.js';

/**
 * Why a task is re-read (`reason` label): a task notification, the re-read that follows one, a
 * workflow notification, or the reconciliation of recently active workflows.
 */
export type RereadReason = 'notification' | 'reread' | 'workflow' | 'reconcile';
/** What a re-read did (`outcome` label). */
export type RereadOutcome = 'produced' | 'unchanged' | 'missing' | 'refused' | 'failed';

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
/** Callers waiting on one task's next pass at most; one more is refused (BridgeBusyError). */
const WAITERS_PER_TASK = 100;
/** Re-reads in a row that a slow re-read may arm, before reconciliation is left to catch up. */
const SLOW_REREADS_IN_A_ROW = 3;

/** A pass that waits: asked for by a notification, answered when the pass is done. */
interface Waiter {
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** Conductor answered something no retry will change (too large, not the task's JSON): nothing is produced. */
class RefusedTaskError extends Error {}

/** One task's re-reads: at most one under way, and the next one asked for meanwhile. */
interface TaskState {
  running: boolean;
  /** The next pass (begun after the running one ends): its kind and who waits for it. */
  next: { produce: boolean; reason: RereadReason; waiters: Waiter[] } | undefined;
  /** The re-read that follows a notification's pass, once armed. */
  reread: NodeJS.Timeout | undefined;
  /** Slow re-reads in a row that armed another (SLOW_REREADS_IN_A_ROW at most). */
  slowRereads: number;
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
  /** Passes waiting for a read slot: a notification's first, then the others. */
  private readonly slots: { urgent: (() => void)[]; other: (() => void)[] } = { urgent: [], other: [] };
  private reading = 0;
  private readonly stopping = new AbortController();
  private readonly failureLog = new LogThrottle(FAILURE_LOG_INTERVAL_MS);
  private readonly missingLog = new LogThrottle(FAILURE_LOG_INTERVAL_MS);
  private readonly refusedLog = new LogThrottle(FAILURE_LOG_INTERVAL_MS);

  constructor(
    private readonly conductor: ConductorClient,
    private readonly producer: TaskRecordProducer,
    private readonly projection: TaskProjection,
    private readonly config: BridgeConfig,
    private readonly metrics: TaskCacheMetrics,
  ) {}

  /**
   * A task notification: resolves once a pass begun after it has produced the task (or found that
   * Conductor has no such task). Throws `BridgeBusyError` when the queue is full; rejects with the
   * pass's failure.
   */
  notified(taskId: string, signal?: AbortSignal): Promise<void> {
    if (!this.active.has(taskId) && this.active.size >= this.config.queueLimit) throw new BridgeBusyError(this.config.queueLimit);
    if ((this.tasks.get(taskId)?.next?.waiters.length ?? 0) >= WAITERS_PER_TASK) throw new BridgeBusyError(this.config.queueLimit);
    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject };
      this.schedule(taskId, true, 'notification', waiter);
      // A caller that stops waiting (its answer timed out) is no longer held on to.
      signal?.addEventListener(
        'abort',
        () => {
          const waiters = this.tasks.get(taskId)?.next?.waiters;
          const at = waiters?.indexOf(waiter) ?? -1;
          if (at !== -1) waiters!.splice(at, 1);
        },
        { once: true },
      );
    });
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
      state = { running: false, next: undefined, reread: undefined, slowRereads: 0 };
      this.tasks.set(taskId, state);
    }
    this.active.add(taskId);
    this.metrics.bridgeQueued.set(this.active.size);
    const next = (state.next ??= { produce, reason, waiters: [] });
    if (produce && !next.produce) Object.assign(next, { produce, reason });
    // A notification joining a queued pass makes it the notification's: it re-reads after it, and counts as one.
    if (reason === 'notification') next.reason = reason;
    if (waiter) next.waiters.push(waiter);
    if (!state.running) void this.run(taskId, state);
  }

  private async run(taskId: string, state: TaskState): Promise<void> {
    state.running = true;
    while (state.next && !this.stopping.signal.aborted) {
      const { produce, reason, waiters } = state.next;
      state.next = undefined;
      let outcome: RereadOutcome;
      const started = performance.now();
      try {
        outcome = await this.pass(taskId, produce, reason === 'notification');
        for (const waiter of waiters) waiter.resolve();
      } catch (error) {
        outcome = error instanceof RefusedTaskError ? 'refused' : 'failed';
        if (outcome === 'refused' ? this.refusedLog.take() : this.failureLog.take()) {
          this.logger.warn({ taskId, err: error }, `re-reading task ${taskId} from Conductor failed (${reason}): ${(error as Error).message}`);
        }
        // Refused for good: answered, since Conductor sending it again changes nothing.
        for (const waiter of waiters) if (outcome === 'refused') waiter.resolve(); else waiter.reject(error);
      }
      this.metrics.bridgeRereads.inc({ reason, outcome });
      if (outcome === 'produced' && this.config.rereadDelayMs > 0) this.afterProduced(taskId, state, reason, performance.now() - started);
    }
    state.running = false;
    this.active.delete(taskId);
    this.metrics.bridgeQueued.set(this.active.size);
    // Stopping: whoever still waits is answered, so no request hangs.
    if (state.next) for (const waiter of state.next.waiters) waiter.reject(new Error('the service is stopping'));
    if (!state.reread) this.forget(taskId, state);
  }

  /**
   * A notification's pass is followed by a re-read. So is a re-read whose read took long enough
   * (half the delay) that another instance may have produced a newer task meanwhile, up to
   * SLOW_REREADS_IN_A_ROW in a row: the last record is then at least as new as the last
   * notification on every instance whose passes take less than half of BRIDGE_REREAD_DELAY_MS.
   */
  private afterProduced(taskId: string, state: TaskState, reason: RereadReason, tookMs: number): void {
    if (reason === 'notification') state.slowRereads = 0;
    else if (reason !== 'reread' || tookMs < this.config.rereadDelayMs / 2 || state.slowRereads >= SLOW_REREADS_IN_A_ROW) return;
    else state.slowRereads += 1;
    this.armReread(taskId, state);
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
  private async pass(taskId: string, always: boolean, urgent: boolean): Promise<RereadOutcome> {
    const bytes = await this.withSlot(urgent, () => this.read(taskId));
    if (bytes === null) {
      if (this.missingLog.take()) this.logger.warn({ taskId }, `Conductor has no task ${taskId} (answered 204 or 404 ${MISSING_ATTEMPTS} times); nothing produced`);
      return 'missing';
    }
    if (!always) {
      // A projection that cannot be read is no reason not to produce: ingest applies only what is newer.
      const stored = await this.projection.get(taskId).catch(() => undefined);
      if (stored?.value.equals(bytes)) return 'unchanged';
    }
    assertTaskJson(taskId, bytes);
    await this.retried(() =>
      this.producer.produce(taskId, bytes).catch((error: unknown) => {
        throw new BridgeUnavailableError(`producing task ${taskId} to Kafka failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
      }),
    );
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

  /** `step`, tried ATTEMPTS times with backoff; the last failure is thrown. A refusal is not retried. */
  private async retried<T>(step: () => Promise<T>): Promise<T> {
    const backoff = new RetryBackoff(100, 2000);
    for (let attempt = 1; ; attempt++) {
      try {
        return await step();
      } catch (error) {
        if (error instanceof ConductorRefusedError) throw new RefusedTaskError(error.message, { cause: error });
        this.metrics.bridgeFailures.inc();
        if (attempt >= ATTEMPTS || this.stopping.signal.aborted) throw error;
        await sleep(backoff.next(), this.stopping.signal);
      }
    }
  }

  /** Runs `work` once fewer than CONCURRENT_READS others run; an urgent one (a notification's) goes first. */
  private async withSlot<T>(urgent: boolean, work: () => Promise<T>): Promise<T> {
    if (this.reading >= CONCURRENT_READS) await new Promise<void>((resolve) => (urgent ? this.slots.urgent : this.slots.other).push(resolve));
    else this.reading += 1;
    try {
      return await work();
    } finally {
      const nextInLine = this.slots.urgent.shift() ?? this.slots.other.shift();
      if (nextInLine) nextInLine();
      else this.reading -= 1;
    }
  }
}

/**
 * What ingest would dead-letter is not produced: a task that is not a JSON object naming the very
 * task asked for (a Conductor answering for another task, or not Conductor at all).
 */
function assertTaskJson(taskId: string, bytes: Buffer): void {
  let task: unknown;
  try {
    task = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new RefusedTaskError(`Conductor's answer for task ${taskId} is not JSON`);
  }
  const named = typeof task === 'object' && task !== null && !Array.isArray(task) ? (task as Record<string, unknown>).taskId : undefined;
  if (named !== taskId) throw new RefusedTaskError(`Conductor's answer for task ${taskId} names another taskId`);
}
