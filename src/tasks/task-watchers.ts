import { readFileSync } from 'node:fs';
import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { TaskChangeListener, TaskChangeSubscriber } from '../changes/task-change-subscriber.js';
import { HttpConfig } from '../config/app-config.js';
import { DrainState } from '../lifecycle/drain-state.js';
import { TaskCacheMetrics, WatchOutcome } from '../metrics/task-cache-metrics.js';
import { ProjectionGenerations } from '../projection/projection-generations.js';
import { StoredTask } from '../projection/stored-task.js';
import { TaskProjection } from '../projection/task-projection.js';
import { TooManyWatchesError } from './too-many-watches.error.js';

/** What a watch is answered with: the task as read (null: not there), or the read's failure. */
export type WatchAnswer = { readonly kind: 'read'; readonly task: StoredTask | null } | { readonly kind: 'failed'; readonly error: unknown };

/** One held request. */
interface Watch {
  /** Whether the task, as read, is still what the client has. */
  readonly unchanged: (task: StoredTask | null) => boolean;
  readonly answer: (answer: WatchAnswer) => void;
  /** Reads of its task numbered up to this began before the watch was held: they do not answer it. */
  readonly after: number;
  readonly timer: NodeJS.Timeout;
}

/**
 * The watches of one task, by what the next read must do for them, and its reads: at most one at
 * a time, and one more if asked meanwhile. `fresh`: not checked yet by a read begun after they
 * were held. `held`: found unchanged, all against the same reading of the task (`heldAt`), so a
 * read that finds it the same passes them by without a look. `due`: their wait has ended, the next
 * read answers them whatever it finds.
 */
interface WatchedTask {
  readonly fresh: Set<Watch>;
  readonly held: Set<Watch>;
  readonly due: Set<Watch>;
  /** The version (null: missing) the `held` watches were found unchanged against. */
  heldAt: string | null;
  /** Reads issued so far. */
  issued: number;
  reading: boolean;
  readAgain: boolean;
}

/**
 * The watches (reads with `Prefer: wait`) this instance holds, by taskId. A watch is answered as
 * soon as a read of its task, begun after it was held, finds the task different from the client's
 * copy; when its wait ends, by the next read whatever it finds. A task is read when a watch of it
 * is held, when its wait ends, when ingest announces it changed (`TaskChangeSubscriber`), and for
 * every watched task after each resubscription and each change of the generation served, since a
 * change may have gone unannounced meanwhile. Reads of one task are never concurrent: one at a
 * time, and one more when asked meanwhile, whatever the number of its watches and announcements.
 *
 * A held watch costs a map entry, a timer and its connection: no CPU until something changes,
 * and a read that finds its task as it was costs nothing per held watch. A drain makes every watch
 * due and reads each watched task once: every watch is answered from Redis at once, so clients
 * reconnect elsewhere knowing the task's state (or 503, retryable, when Redis cannot answer).
 */
@Injectable()
export class TaskWatchers implements TaskChangeListener, OnModuleInit {
  private readonly logger = new Logger('Watches');
  private readonly watched = new Map<string, WatchedTask>();
  /** Set when the drain begins: watches answered from then on ended by it. */
  private draining = false;
  private held = 0;
  private readonly maxHeld: number;

  constructor(
    private readonly projection: TaskProjection,
    private readonly subscriber: TaskChangeSubscriber,
    private readonly drain: DrainState,
    private readonly generations: ProjectionGenerations,
    config: HttpConfig,
    private readonly metrics: TaskCacheMetrics,
  ) {
    this.maxHeld = config.maxHeldWatches;
  }

  onModuleInit(): void {
    this.subscriber.listen(this);
    this.drain.onBegin(() => this.releaseAll());
    this.generations.onCurrentChange(() => this.resubscribed());
    const openFiles = openFilesLimit();
    if (openFiles !== undefined && this.maxHeld + OTHER_DESCRIPTORS > openFiles) {
      this.logger.warn(
        `WATCH_MAX_HELD is ${this.maxHeld} but the process may open only ${openFiles} files: each held watch is a connection, so connections past the open-files limit fail (ECONNRESET) before the limit answers 503; raise the limit (ulimit -n) or lower WATCH_MAX_HELD below ${Math.max(1, openFiles - OTHER_DESCRIPTORS)}`,
      );
    }
  }

  /** Watches held now. */
  get size(): number {
    return this.held;
  }

  /**
   * Holds a watch of `taskId` for up to `waitMs`; `answer` is called exactly once, unless the
   * returned cancel (the client went away) comes first. Throws `TooManyWatchesError` when the
   * instance holds its limit.
   */
  hold(taskId: string, waitMs: number, unchanged: Watch['unchanged'], answer: Watch['answer']): () => void {
    if (this.held >= this.maxHeld) {
      this.metrics.watches.inc({ outcome: 'refused' });
      throw new TooManyWatchesError(this.maxHeld);
    }
    let task = this.watched.get(taskId);
    if (!task) {
      task = { fresh: new Set(), held: new Set(), due: new Set(), heldAt: null, issued: 0, reading: false, readAgain: false };
      this.watched.set(taskId, task);
    }
    const watched = task;
    const watch: Watch = {
      unchanged,
      answer,
      after: task.issued,
      timer: setTimeout(() => {
        if (!watched.held.delete(watch) && !watched.fresh.delete(watch)) return;
        watched.due.add(watch);
        this.read(taskId);
      }, waitMs),
    };
    task.fresh.add(watch);
    this.held += 1;
    this.metrics.watchesHeld.inc();
    this.read(taskId);
    return () => {
      if (holds(watched, watch)) this.settle(taskId, watched, watch, 'abandoned');
    };
  }

  changed(taskIds: readonly string[]): void {
    this.metrics.taskChangesReceived.inc(taskIds.length);
    for (const taskId of taskIds) if (this.watched.has(taskId)) this.read(taskId);
  }

  resubscribed(): void {
    for (const taskId of this.watched.keys()) this.read(taskId);
  }

  /** Makes every watch due, and reads each watched task: every watch is answered by that read. */
  private releaseAll(): void {
    this.draining = true;
    for (const [taskId, task] of this.watched) {
      for (const watch of [...task.fresh, ...task.held]) {
        task.fresh.delete(watch);
        task.held.delete(watch);
        task.due.add(watch);
      }
      this.read(taskId);
    }
  }

  /** Reads the task, or asks for one more read if one is under way (it may have begun before the change). */
  private read(taskId: string): void {
    const task = this.watched.get(taskId);
    if (!task) return;
    if (task.reading) {
      task.readAgain = true;
      return;
    }
    task.reading = true;
    task.readAgain = false;
    const number = (task.issued += 1);
    void this.projection.get(taskId).then(
      (stored) => this.readDone(taskId, task, number, { kind: 'read', task: stored }),
      (error: unknown) => this.readDone(taskId, task, number, { kind: 'failed', error }),
    );
  }

  private readDone(taskId: string, task: WatchedTask, number: number, answer: WatchAnswer): void {
    task.reading = false;
    const ended: WatchOutcome = this.draining ? 'drained' : 'unchanged';
    if (answer.kind === 'failed') {
      // Held watches wait for Redis to answer again; those first asked, or due, are answered the failure.
      for (const watch of task.fresh) if (number > watch.after) this.settle(taskId, task, watch, 'failed', answer);
      for (const watch of task.due) if (number > watch.after) this.settle(taskId, task, watch, 'failed', answer);
    } else {
      const version = answer.task?.version ?? null;
      if (version !== task.heldAt) {
        for (const watch of task.held) if (!watch.unchanged(answer.task)) this.settle(taskId, task, watch, 'changed', answer);
        task.heldAt = version;
      }
      for (const watch of task.fresh) {
        if (number <= watch.after) continue;
        if (!watch.unchanged(answer.task)) {
          this.settle(taskId, task, watch, 'changed', answer);
        } else {
          task.fresh.delete(watch);
          task.held.add(watch);
        }
      }
      for (const watch of task.due) {
        if (number > watch.after) this.settle(taskId, task, watch, watch.unchanged(answer.task) ? ended : 'changed', answer);
      }
    }
    if (isEmpty(task)) this.forget(taskId, task);
    else if (task.readAgain) this.read(taskId);
  }

  private settle(taskId: string, task: WatchedTask, watch: Watch, outcome: WatchOutcome, answer?: WatchAnswer): void {
    task.fresh.delete(watch);
    task.held.delete(watch);
    task.due.delete(watch);
    clearTimeout(watch.timer);
    this.held -= 1;
    this.metrics.watchesHeld.dec();
    this.metrics.watches.inc({ outcome });
    if (answer) watch.answer(answer);
    if (isEmpty(task) && !task.reading) this.forget(taskId, task);
  }

  private forget(taskId: string, task: WatchedTask): void {
    if (this.watched.get(taskId) === task) this.watched.delete(taskId);
  }
}

/** Descriptors an instance needs besides its watches: Redis, Kafka, other clients, files. */
const OTHER_DESCRIPTORS = 1000;

function holds(task: WatchedTask, watch: Watch): boolean {
  return task.fresh.has(watch) || task.held.has(watch) || task.due.has(watch);
}

function isEmpty(task: WatchedTask): boolean {
  return task.fresh.size === 0 && task.held.size === 0 && task.due.size === 0;
}

/** The process's soft limit on open files (Linux's /proc/self/limits), or undefined when unknown or unlimited. */
function openFilesLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((entry) => entry.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    return soft !== undefined && /^[0-9]+$/.test(soft) ? Number(soft) : undefined;
  } catch {
    return undefined;
  }
}
