import { Injectable, OnModuleInit } from '@nestjs/common';
import { TaskChangeListener, TaskChangeSubscriber } from '../changes/task-change-subscriber.js';
import { HttpConfig } from '../config/app-config.js';
import { DrainState } from '../lifecycle/drain-state.js';
import { TaskCacheMetrics, WatchOutcome } from '../metrics/task-cache-metrics.js';
import { ProjectionGenerations } from '../projection/projection-generations.js';
import { StoredTask } from '../projection/stored-task.js';
import { TaskProjection } from '../projection/task-projection.js';
import { TooManyWatchesError } from './too-many-watches.error.js';

/**
 * What a watch is answered with: the task as read (null: not there), the read's failure, or
 * `unchanged` without a read (a drain releases every watch so).
 */
export type WatchAnswer = { readonly kind: 'read'; readonly task: StoredTask | null } | { readonly kind: 'failed'; readonly error: unknown } | { readonly kind: 'unchanged' };

/** One held request. */
interface Watch {
  /** Whether the task, as read, is still what the client has. */
  readonly unchanged: (task: StoredTask | null) => boolean;
  readonly answer: (answer: WatchAnswer) => void;
  /** Reads of its task numbered up to this began before the watch was held: they do not answer it. */
  readonly after: number;
  readonly timer: NodeJS.Timeout;
  /** A read has found the task unchanged: from then on a failed read leaves the watch held. */
  checked: boolean;
  /** Its wait has ended: the next read answers it, changed or not. */
  due: boolean;
}

/** The watches of one task, and its reads: at most one at a time, and one more if asked meanwhile. */
interface WatchedTask {
  readonly watches: Set<Watch>;
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
 * A held watch costs a map entry, a timer and its connection: no CPU until something changes.
 * A drain answers every held watch at once (`unchanged`), so clients reconnect elsewhere.
 */
@Injectable()
export class TaskWatchers implements TaskChangeListener, OnModuleInit {
  private readonly watched = new Map<string, WatchedTask>();
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
      task = { watches: new Set(), issued: 0, reading: false, readAgain: false };
      this.watched.set(taskId, task);
    }
    const watch: Watch = {
      unchanged,
      answer,
      after: task.issued,
      checked: false,
      due: false,
      timer: setTimeout(() => {
        watch.due = true;
        this.read(taskId);
      }, waitMs),
    };
    task.watches.add(watch);
    this.held += 1;
    this.metrics.watchesHeld.inc();
    this.read(taskId);
    return () => {
      if (task.watches.has(watch)) this.settle(taskId, task, watch, 'abandoned');
    };
  }

  changed(taskIds: readonly string[]): void {
    this.metrics.taskChangesReceived.inc(taskIds.length);
    for (const taskId of taskIds) if (this.watched.has(taskId)) this.read(taskId);
  }

  resubscribed(): void {
    for (const taskId of this.watched.keys()) this.read(taskId);
  }

  /** Answers every held watch `unchanged`, at once. */
  private releaseAll(): void {
    for (const [taskId, task] of this.watched) {
      for (const watch of task.watches) this.settle(taskId, task, watch, 'drained', { kind: 'unchanged' });
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

  private readDone(taskId: string, task: WatchedTask, number: number, answer: Exclude<WatchAnswer, { kind: 'unchanged' }>): void {
    task.reading = false;
    for (const watch of task.watches) {
      if (number <= watch.after) continue;
      if (answer.kind === 'failed') {
        // Held, the watch waits for Redis to answer again; when first asked or due, it is answered the failure.
        if (!watch.checked || watch.due) this.settle(taskId, task, watch, 'failed', answer);
      } else if (!watch.unchanged(answer.task)) {
        this.settle(taskId, task, watch, 'changed', answer);
      } else if (watch.due) {
        this.settle(taskId, task, watch, 'unchanged', answer);
      } else {
        watch.checked = true;
      }
    }
    if (task.watches.size === 0) this.forget(taskId, task);
    else if (task.readAgain) this.read(taskId);
  }

  private settle(taskId: string, task: WatchedTask, watch: Watch, outcome: WatchOutcome, answer?: WatchAnswer): void {
    task.watches.delete(watch);
    clearTimeout(watch.timer);
    this.held -= 1;
    this.metrics.watchesHeld.dec();
    this.metrics.watches.inc({ outcome });
    if (answer) watch.answer(answer);
    if (task.watches.size === 0 && !task.reading) this.forget(taskId, task);
  }

  private forget(taskId: string, task: WatchedTask): void {
    if (this.watched.get(taskId) === task) this.watched.delete(taskId);
  }
}
