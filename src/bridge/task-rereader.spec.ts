import { jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { BridgeConfig } from '../config/app-config.js';
import { TaskCacheMetrics } from '../metrics/task-cache-metrics.js';
import { StoredTask } from '../projection/stored-task.js';
import { BatchReadTask, TaskProjection } from '../projection/task-projection.js';
import { BridgeBusyError } from './bridge-errors.js';
import { ConductorClient } from './conductor-client.js';
import { ConductorUnavailableError } from './conductor-unavailable.error.js';
import { TaskRecordProducer } from './task-record-producer.js';
import { TaskRereader } from './task-rereader.js';

/** Conductor as a map of task bytes; each read can be held by the test. */
class FakeConductor {
  readonly tasks = new Map<string, string>();
  reads: string[] = [];
  failures = 0;
  hold: Promise<void> | undefined;
  delay = 0;

  async getTask(taskId: string): Promise<Buffer | null> {
    this.reads.push(taskId);
    await this.hold;
    if (this.delay > 0) await new Promise((resolve) => setTimeout(resolve, this.delay));
    if (this.failures > 0) {
      this.failures -= 1;
      throw new ConductorUnavailableError('connect ECONNREFUSED');
    }
    const value = this.tasks.get(taskId);
    return value === undefined ? null : Buffer.from(value);
  }
}

class FakeProducer extends TaskRecordProducer {
  readonly records: [string, string][] = [];
  async produce(taskId: string, value: Buffer): Promise<void> {
    this.records.push([taskId, value.toString()]);
  }
}

class FakeProjection extends TaskProjection {
  readonly stored = new Map<string, string>();
  applyBatch(): never {
    throw new Error('not used');
  }
  async get(taskId: string): Promise<StoredTask | null> {
    const value = this.stored.get(taskId);
    return value === undefined ? null : { value: Buffer.from(value), version: '0-1' };
  }
  getMany(): Promise<BatchReadTask[]> {
    throw new Error('not used');
  }
}

/** Task JSON as Conductor answers it: it names its taskId. */
const task = (taskId: string, version: number) => JSON.stringify({ taskId, v: version });

const CONFIG: BridgeConfig = {
  conductorUrl: 'http://conductor',
  conductorTimeoutMs: 1000,
  webhookHeader: 'x-webhook-token',
  webhookToken: 'a-shared-secret-of-some-length',
  rereadDelayMs: 1000,
  answerTimeoutMs: 4000,
  queueLimit: 3,
  reconcileIntervalMs: 30000,
  reconcileWindowMs: 600000,
  conductorRate: 50,
};

describe('TaskRereader', () => {
  let conductor: FakeConductor;
  let producer: FakeProducer;
  let projection: FakeProjection;
  let metrics: TaskCacheMetrics;
  let rereader: TaskRereader;

  beforeAll(() => Logger.overrideLogger(false));
  beforeEach(() => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    conductor = new FakeConductor();
    producer = new FakeProducer();
    projection = new FakeProjection();
    metrics = new TaskCacheMetrics({});
    rereader = new TaskRereader(conductor as unknown as ConductorClient, producer, projection, CONFIG, metrics);
  });
  afterEach(() => {
    rereader.onApplicationShutdown();
    jest.useRealTimers();
  });

  const rereads = async () => Object.fromEntries((await metrics.bridgeRereads.get()).values.map(({ labels, value }) => [`${labels.reason} ${labels.outcome}`, value]));

  it('produces what Conductor answers for a notified task, then again after the re-read delay', async () => {
    conductor.tasks.set('t1', task('t1', 1));
    await rereader.notified('t1');
    expect(producer.records).toEqual([['t1', task('t1', 1)]]);
    conductor.tasks.set('t1', task('t1', 2));
    await jest.advanceTimersByTimeAsync(1000);
    expect(producer.records).toEqual([['t1', task('t1', 1)], ['t1', task('t1', 2)]]);
    expect((await metrics.bridgeQueued.get()).values[0].value).toBe(0);
    expect(await rereads()).toEqual({ 'notification produced': 1, 'reread produced': 1 });
  });

  it('never re-reads one task twice at once: notifications during a read share the one read after it', async () => {
    conductor.tasks.set('t1', task('t1', 1));
    let release!: () => void;
    conductor.hold = new Promise((resolve) => (release = resolve));
    const first = rereader.notified('t1');
    await Promise.resolve();
    const later = [rereader.notified('t1'), rereader.notified('t1'), rereader.notified('t1')];
    expect(conductor.reads).toEqual(['t1']);
    conductor.tasks.set('t1', task('t1', 2));
    release();
    await first;
    await Promise.all(later);
    expect(conductor.reads).toEqual(['t1', 't1']);
    expect(producer.records.map(([, value]) => value)).toEqual([task('t1', 2), task('t1', 2)]);
  });

  it('refuses a notification of a new task when the queue holds its limit, and skips a reconciliation', async () => {
    conductor.hold = new Promise(() => undefined);
    for (const taskId of ['a', 'b', 'c']) void rereader.notified(taskId);
    expect(() => rereader.notified('d')).toThrow(BridgeBusyError);
    expect(rereader.reconcile('d', 'reconcile')).toBe(false);
    // A task already queued shares its pass.
    expect(rereader.notified('a')).toBeInstanceOf(Promise);
  });

  it('retries a failing Conductor with backoff, and answers the failure when it keeps failing', async () => {
    conductor.tasks.set('t1', task('t1', 1));
    conductor.failures = 2;
    const pass = rereader.notified('t1');
    await jest.advanceTimersByTimeAsync(5000);
    await pass;
    // The notification's pass after two failures, and the re-read that follows it.
    expect(producer.records).toEqual([['t1', task('t1', 1)], ['t1', task('t1', 1)]]);

    conductor.failures = 100;
    const failing = rereader.notified('t2');
    failing.catch(() => undefined);
    await jest.advanceTimersByTimeAsync(10_000);
    await expect(failing).rejects.toBeInstanceOf(ConductorUnavailableError);
    expect(await rereads()).toEqual({ 'notification produced': 1, 'reread produced': 1, 'notification failed': 1 });
    expect((await metrics.bridgeFailures.get()).values[0].value).toBeGreaterThanOrEqual(6);
  });

  it('produces nothing for a task Conductor does not have, after asking a few times', async () => {
    const pass = rereader.notified('gone');
    await jest.advanceTimersByTimeAsync(5000);
    await pass;
    expect(conductor.reads).toEqual(['gone', 'gone', 'gone']);
    expect(producer.records).toEqual([]);
    expect(await rereads()).toEqual({ 'notification missing': 1 });
  });

  it('a reconciliation produces only what differs from what the projection serves', async () => {
    conductor.tasks.set('same', task('same', 1));
    conductor.tasks.set('changed', task('changed', 2));
    projection.stored.set('same', task('same', 1));
    projection.stored.set('changed', task('changed', 1));
    rereader.reconcile('same', 'reconcile');
    rereader.reconcile('changed', 'workflow');
    rereader.reconcile('new', 'reconcile');
    await jest.advanceTimersByTimeAsync(5000);
    expect(producer.records).toEqual([['changed', task('changed', 2)]]);
    expect(await rereads()).toEqual({ 'reconcile unchanged': 1, 'workflow produced': 1, 'reconcile missing': 1 });
  });

  it('produces nothing Conductor answers for another task or as something else, and answers its notification: no retry would change it', async () => {
    conductor.tasks.set('t1', task('other', 1));
    conductor.tasks.set('t2', '{"taskId":"t2",');
    await rereader.notified('t1');
    await rereader.notified('t2');
    expect(producer.records).toEqual([]);
    expect(conductor.reads).toEqual(['t1', 't2']);
    expect(await rereads()).toEqual({ 'notification refused': 2 });
  });

  it('makes a queued pass a notification\'s when one joins it: it counts as one and is followed by a re-read', async () => {
    conductor.tasks.set('t1', task('t1', 1));
    let release!: () => void;
    conductor.hold = new Promise((resolve) => (release = resolve));
    rereader.reconcile('t1', 'reconcile');
    await Promise.resolve();
    rereader.reconcile('t1', 'reconcile'); // queued behind the running one
    const notified = rereader.notified('t1'); // joins the queued pass
    release();
    conductor.hold = undefined;
    await notified;
    await jest.advanceTimersByTimeAsync(1000);
    expect(await rereads()).toEqual({ 'reconcile produced': 1, 'notification produced': 1, 'reread produced': 1 });
  });

  it('lets go of a caller that stopped waiting, and refuses callers past a hundred on one task', async () => {
    conductor.hold = new Promise(() => undefined);
    void rereader.notified('t1'); // runs, and holds
    await Promise.resolve();
    const gaveUp = new AbortController();
    const waiting = Array.from({ length: 100 }, () => rereader.notified('t1', gaveUp.signal));
    expect(() => rereader.notified('t1')).toThrow(BridgeBusyError);
    gaveUp.abort();
    expect(rereader.notified('t1')).toBeInstanceOf(Promise);
    for (const pending of waiting) pending.catch(() => undefined);
  });

  it('re-reads again after a slow re-read (another instance may have produced meanwhile), at most three times in a row', async () => {
    conductor.tasks.set('t1', task('t1', 1));
    await rereader.notified('t1');
    // Every read from now on takes 600 ms, more than half the 1 s delay.
    conductor.delay = 600;
    await jest.advanceTimersByTimeAsync(20_000);
    expect(await rereads()).toEqual({ 'notification produced': 1, 'reread produced': 4 });
  });
});
