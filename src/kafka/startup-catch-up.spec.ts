import { jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { KafkaConfig } from '../config/app-config.js';
import { KafkaClient } from './kafka-client.js';
import { StartupCatchUp } from './startup-catch-up.js';

/** A kafkajs admin over a topic's high watermarks and a group's committed offsets, both changeable. */
class FakeAdmin {
  high: Record<number, number> = {};
  low: Record<number, number> = {};
  committed: Record<number, number> = {};
  failNext = 0;
  connected = false;
  connect = async () => void (this.connected = true);
  disconnect = async () => void (this.connected = false);
  describeCluster = async () => ({ brokers: [], controller: null, clusterId: 'fake' });
  fetchTopicOffsets = async () => {
    this.maybeFail();
    return Object.entries(this.high).map(([partition, high]) => ({ partition: Number(partition), high: String(high), low: String(this.low[Number(partition)] ?? 0), offset: String(high) }));
  };
  fetchOffsets = async () => {
    this.maybeFail();
    return [{ topic: 'tasks', partitions: Object.keys(this.high).map((partition) => ({ partition: Number(partition), offset: String(this.committed[Number(partition)] ?? -1), metadata: null })) }];
  };
  private maybeFail(): void {
    if (this.failNext > 0) {
      this.failNext -= 1;
      throw new Error('Connection error: connect ECONNREFUSED');
    }
  }
}

describe('StartupCatchUp', () => {
  let admin: FakeAdmin;
  let catchUp: StartupCatchUp;
  let stopping: AbortController;
  const config = { topic: 'tasks', groupId: 'group' } as KafkaConfig;
  const elapse = (ms: number) => jest.advanceTimersByTimeAsync(ms);

  beforeAll(() => Logger.overrideLogger(false));

  beforeEach(() => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    admin = new FakeAdmin();
    catchUp = new StartupCatchUp({ singleAttempt: { admin: () => admin }, withAdmin: KafkaClient.prototype.withAdmin } as unknown as KafkaClient, config);
    stopping = new AbortController();
  });

  afterEach(async () => {
    stopping.abort();
    await catchUp.settled();
    jest.useRealTimers();
  });

  it('is pending until it has read the high watermarks at start', () => {
    expect(catchUp.snapshot()).toEqual({ phase: 'pending' });
  });

  it('is caught up at once when the group has committed up to the high watermarks', async () => {
    admin.high = { 0: 10, 1: 0, 2: 5 };
    admin.committed = { 0: 10, 2: 5 };
    catchUp.follow(stopping.signal);
    await elapse(0);
    expect(catchUp.snapshot()).toEqual({ phase: 'caught-up' });
    expect(admin.connected).toBe(false);
  });

  it('counts a partition whose records are all gone (retention, DeleteRecords) as caught up: the group never commits there', async () => {
    admin.high = { 0: 10, 1: 40 };
    admin.low = { 1: 40 };
    admin.committed = { 0: 10 };
    catchUp.follow(stopping.signal);
    await elapse(0);
    expect(catchUp.snapshot()).toEqual({ phase: 'caught-up' });
  });

  it('catches up as the group commits, checking every second, against the watermarks read at start, not later ones', async () => {
    admin.high = { 0: 100, 1: 50 };
    catchUp.follow(stopping.signal);
    await elapse(0);
    expect(catchUp.snapshot()).toEqual({ phase: 'catching-up', behind: 150 });
    // The topic grows after the start; the target does not.
    admin.high = { 0: 1000, 1: 1000 };
    admin.committed = { 0: 100, 1: 20 };
    await elapse(1000);
    expect(catchUp.snapshot()).toEqual({ phase: 'catching-up', behind: 30 });
    admin.committed = { 0: 100, 1: 50 };
    await elapse(1000);
    expect(catchUp.snapshot()).toEqual({ phase: 'caught-up' });
    // Caught up for good: following again reads nothing.
    admin.committed = {};
    catchUp.follow(stopping.signal);
    await elapse(5000);
    expect(catchUp.snapshot()).toEqual({ phase: 'caught-up' });
  });

  it('goes on through Kafka failures, before and after the target is read, with the same target, until caught up', async () => {
    admin.high = { 0: 100 };
    admin.failNext = 2;
    catchUp.follow(stopping.signal);
    await elapse(0);
    expect(catchUp.snapshot()).toEqual({ phase: 'pending' });
    // Backoff from 1 s: the third attempt reads the target.
    await elapse(3000);
    expect(catchUp.snapshot()).toEqual({ phase: 'catching-up', behind: 100 });
    // A coordinator moving mid-way fails one check; the next goes on towards 100, not the new end.
    admin.high = { 0: 500 };
    admin.failNext = 1;
    await elapse(1000);
    admin.committed = { 0: 100 };
    await elapse(5000);
    expect(catchUp.snapshot()).toEqual({ phase: 'caught-up' });
    expect(admin.connected).toBe(false);
  });

  it('stops checking and disconnects when the service stops', async () => {
    admin.high = { 0: 100 };
    catchUp.follow(stopping.signal);
    await elapse(0);
    expect(admin.connected).toBe(true);
    stopping.abort();
    await catchUp.settled();
    expect(admin.connected).toBe(false);
    expect(catchUp.snapshot().phase).toBe('catching-up');
  });
});
