import { jest } from '@jest/globals';
import { TaskChangeListener, TaskChangeSubscriber } from '../changes/task-change-subscriber.js';
import { DrainState } from '../lifecycle/drain-state.js';
import { TaskCacheMetrics } from '../metrics/task-cache-metrics.js';
import { ProjectionGenerations } from '../projection/projection-generations.js';
import { ProjectionUnavailableError } from '../projection/projection-unavailable.error.js';
import { StoredTask } from '../projection/stored-task.js';
import { BatchReadTask, TaskProjection } from '../projection/task-projection.js';
import { TaskWatchers, WatchAnswer } from './task-watchers.js';
import { TooManyWatchesError } from './too-many-watches.error.js';

/** A projection whose reads are answered by the test, one by one. */
class HeldReads extends TaskProjection {
  readonly pending: { taskId: string; resolve: (task: StoredTask | null) => void; reject: (error: Error) => void }[] = [];

  applyBatch(): never {
    throw new Error('not used');
  }

  get(taskId: string): Promise<StoredTask | null> {
    return new Promise((resolve, reject) => this.pending.push({ taskId, resolve, reject }));
  }

  getMany(): Promise<BatchReadTask[]> {
    throw new Error('not used');
  }

  /** Answers the oldest pending read, and lets its continuation run. */
  async answer(task: StoredTask | null | Error): Promise<string> {
    const read = this.pending.shift();
    if (!read) throw new Error('no read pending');
    if (task instanceof Error) read.reject(task);
    else read.resolve(task);
    await Promise.resolve();
    await Promise.resolve();
    return read.taskId;
  }
}

const v = (version: string): StoredTask => ({ value: Buffer.from(`{"v":"${version}"}`), version });
/** The client holds `version`: unchanged while the read finds that version. */
const holding = (version: string | null) => (task: StoredTask | null) => (version === null ? task === null : task?.version === version);

describe('TaskWatchers', () => {
  let projection: HeldReads;
  let drain: DrainState;
  let metrics: TaskCacheMetrics;
  let listener: TaskChangeListener;
  let onCurrentChange: () => void;
  let watchers: TaskWatchers;
  let build: (maxHeldWatches: number) => void;

  beforeEach(() => {
    jest.useFakeTimers();
    projection = new HeldReads();
    drain = new DrainState();
    metrics = new TaskCacheMetrics({});
    const subscriber = { listen: (l: TaskChangeListener) => (listener = l) } as unknown as TaskChangeSubscriber;
    const generations = { onCurrentChange: (l: () => void) => (onCurrentChange = l) } as unknown as ProjectionGenerations;
    build = (maxHeldWatches: number) => {
      watchers = new TaskWatchers(projection, subscriber, drain, generations, { port: 0, missingTaskStatus: 404, keepAliveTimeoutMs: 65000, maxHeldWatches }, metrics);
      watchers.onModuleInit();
    };
    build(3);
  });
  afterEach(() => jest.useRealTimers());

  async function outcomes(): Promise<Record<string, number>> {
    const { values } = await metrics.watches.get();
    return Object.fromEntries(values.map(({ labels, value }) => [labels.outcome, value]));
  }

  function hold(taskId: string, version: string | null, waitMs = 30_000): { answers: WatchAnswer[]; cancel: () => void } {
    const answers: WatchAnswer[] = [];
    const cancel = watchers.hold(taskId, waitMs, holding(version), (answer) => answers.push(answer));
    return { answers, cancel };
  }

  it('answers at once when the first read finds the task changed, appeared or gone', async () => {
    const changed = hold('a', '0-1');
    const appeared = hold('b', null);
    const gone = hold('c', '0-1');
    await projection.answer(v('0-2'));
    await projection.answer(v('0-1'));
    await projection.answer(null);
    expect(changed.answers).toEqual([{ kind: 'read', task: v('0-2') }]);
    expect(appeared.answers).toEqual([{ kind: 'read', task: v('0-1') }]);
    expect(gone.answers).toEqual([{ kind: 'read', task: null }]);
    expect(watchers.size).toBe(0);
    expect(await outcomes()).toEqual({ changed: 3 });
  });

  it('holds an unchanged task until a change is announced, then answers what the next read finds', async () => {
    const watch = hold('a', '0-1');
    await projection.answer(v('0-1'));
    expect(watch.answers).toEqual([]);
    expect(watchers.size).toBe(1);

    listener.changed(['other', 'a']);
    expect(projection.pending.map((read) => read.taskId)).toEqual(['a']);
    await projection.answer(v('0-2'));
    expect(watch.answers).toEqual([{ kind: 'read', task: v('0-2') }]);
    expect((await metrics.watchesHeld.get()).values[0].value).toBe(0);
  });

  it('reads a task once at a time: announcements during a read cost one more read, whatever their number', async () => {
    const first = hold('a', '0-1');
    const second = hold('a', '0-1');
    expect(projection.pending).toHaveLength(1);
    for (let i = 0; i < 100; i++) listener.changed(['a']);
    await projection.answer(v('0-1'));
    expect(projection.pending).toHaveLength(1);
    await projection.answer(v('0-1'));
    expect(projection.pending).toHaveLength(0);
    expect([first.answers, second.answers]).toEqual([[], []]);
  });

  it('does not answer a watch with a read that began before it was held, which may predate the change', async () => {
    const early = hold('a', '0-1');
    const late = hold('a', '0-2');
    // The first read (begun for `early`) finds 0-1: not for `late`, whose client has already seen 0-2.
    await projection.answer(v('0-1'));
    expect(late.answers).toEqual([]);
    expect(early.answers).toEqual([]);
    await projection.answer(v('0-2'));
    expect(early.answers).toEqual([{ kind: 'read', task: v('0-2') }]);
    expect(late.answers).toEqual([]);
  });

  it('when the wait ends, answers what a read then finds, changed or not', async () => {
    const watch = hold('a', '0-1', 10_000);
    await projection.answer(v('0-1'));
    jest.advanceTimersByTime(9_999);
    expect(projection.pending).toHaveLength(0);
    jest.advanceTimersByTime(1);
    await projection.answer(v('0-1'));
    expect(watch.answers).toEqual([{ kind: 'read', task: v('0-1') }]);
    expect(await outcomes()).toEqual({ unchanged: 1 });
  });

  it('answers a failed first read at once, keeps a held watch through failed reads, and answers one due with the failure', async () => {
    const failing = hold('a', '0-1');
    await projection.answer(new ProjectionUnavailableError('down'));
    expect(failing.answers.map((answer) => answer.kind)).toEqual(['failed']);

    const held = hold('b', '0-1', 5_000);
    await projection.answer(v('0-1'));
    listener.changed(['b']);
    await projection.answer(new ProjectionUnavailableError('down'));
    expect(held.answers).toEqual([]);
    jest.advanceTimersByTime(5_000);
    await projection.answer(new ProjectionUnavailableError('down'));
    expect(held.answers.map((answer) => answer.kind)).toEqual(['failed']);
    expect(await outcomes()).toEqual({ failed: 2 });
  });

  it('re-reads every watched task once after a resubscription and after the generation served changes', async () => {
    hold('a', '0-1');
    hold('b', '0-1');
    hold('b', '0-1'); // held during the read for the first: one more read follows
    await projection.answer(v('0-1'));
    await projection.answer(v('0-1'));
    await projection.answer(v('0-1'));
    expect(projection.pending).toHaveLength(0);
    listener.resubscribed();
    expect(projection.pending.map((read) => read.taskId)).toEqual(['a', 'b']);
    await projection.answer(v('0-1'));
    await projection.answer(v('0-1'));
    onCurrentChange();
    expect(projection.pending.map((read) => read.taskId)).toEqual(['a', 'b']);
  });

  it('when the drain begins, answers every held watch from one read of its task: unchanged, changed, or the failure', async () => {
    const a = hold('a', '0-1');
    const b = hold('b', null);
    const c = hold('c', '0-1');
    await projection.answer(v('0-1'));
    await projection.answer(null);
    await projection.answer(v('0-1'));
    drain.begin();
    expect(projection.pending.map((read) => read.taskId)).toEqual(['a', 'b', 'c']);
    await projection.answer(v('0-1'));
    await projection.answer(v('0-1')); // b appeared meanwhile, unannounced
    await projection.answer(new ProjectionUnavailableError('down'));
    expect([a.answers, b.answers]).toEqual([[{ kind: 'read', task: v('0-1') }], [{ kind: 'read', task: v('0-1') }]]);
    expect(c.answers.map((answer) => answer.kind)).toEqual(['failed']);
    expect(watchers.size).toBe(0);
    expect(await outcomes()).toEqual({ drained: 1, changed: 1, failed: 1 });
  });

  it('passes held watches by when a read finds their task as it was: their check costs nothing per read', async () => {
    let checks = 0;
    const counting = (task: StoredTask | null) => {
      checks += 1;
      return task?.version === '0-1';
    };
    build(100);
    for (let i = 0; i < 100; i++) watchers.hold('a', 30_000, counting, () => undefined);
    await projection.answer(v('0-1'));
    await projection.answer(v('0-1')); // the read asked for by the watches held during the first
    expect(checks).toBe(100);
    for (let i = 0; i < 10; i++) {
      listener.changed(['a']);
      await projection.answer(v('0-1'));
    }
    expect(checks).toBe(100);
    listener.changed(['a']);
    await projection.answer(v('0-2'));
    expect(checks).toBe(200);
    expect(watchers.size).toBe(0);
  });

  it('refuses a watch beyond its limit, retryable', async () => {
    hold('a', '0-1');
    hold('b', '0-1');
    hold('c', '0-1');
    expect(() => hold('d', '0-1')).toThrow(TooManyWatchesError);
    expect(new TooManyWatchesError(3).retryable).toBe(true);
    expect(await outcomes()).toEqual({ refused: 1 });
  });

  it('forgets a watch whose client went away: no answer, no timer, no more reads of its task', async () => {
    const watch = hold('a', '0-1');
    await projection.answer(v('0-1'));
    watch.cancel();
    watch.cancel();
    expect(watchers.size).toBe(0);
    listener.changed(['a']);
    jest.advanceTimersByTime(60_000);
    expect(projection.pending).toHaveLength(0);
    expect(watch.answers).toEqual([]);
    expect(await outcomes()).toEqual({ abandoned: 1 });
  });
});
