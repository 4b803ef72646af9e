import { jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import type { Batch, EachBatchPayload, KafkaMessage } from 'kafkajs';
import { IngestConfig } from '../config/app-config.js';
import { TaskCacheMetrics } from '../metrics/task-cache-metrics.js';
import { UNREADABLE_BATCH } from '../kafka/kafkajs-hardening.js';
import { ProjectionUnavailableError } from '../projection/projection-unavailable.error.js';
import { StoredTask } from '../projection/stored-task.js';
import { TaskEvent } from '../projection/task-event.js';
import { ApplyResult, BatchReadTask, TaskProjection } from '../projection/task-projection.js';
import { TaskChangeNotifier } from '../changes/task-change-notifier.js';
import { DeadLetter } from './dead-letter.js';
import { DeadLetterPublisher } from './dead-letter-publisher.js';
import { IngestService } from './ingest.service.js';
import { TaskEventDecoder } from './task-event-decoder.js';

/** A projection that fails its next `failures` calls as Redis being down would. */
class FakeProjection extends TaskProjection {
  readonly calls: TaskEvent[][] = [];
  failures = 0;

  async applyBatch(events: readonly TaskEvent[]): Promise<ApplyResult> {
    this.calls.push([...events]);
    if (this.failures > 0) {
      this.failures -= 1;
      throw new ProjectionUnavailableError(new Error('connect ECONNREFUSED'));
    }
    return { applied: events.length, stale: 0, retained: 0, expiredOnArrival: 0, changed: [...new Set(events.map((event) => event.taskId))] };
  }

  async get(): Promise<StoredTask | null> {
    return null;
  }

  async getMany(taskIds: readonly string[]): Promise<BatchReadTask[]> {
    return taskIds.map(() => null);
  }
}

class FakeDeadLetters extends DeadLetterPublisher {
  readonly calls: DeadLetter[][] = [];
  failures = 0;

  async publish(letters: readonly DeadLetter[]): Promise<void> {
    this.calls.push([...letters]);
    if (this.failures > 0) {
      this.failures -= 1;
      throw new Error('KafkaJSConnectionError');
    }
  }
}

interface FakePayload extends EachBatchPayload {
  readonly resolved: string[];
  heartbeats: number;
  running: boolean;
}

const valid = (taskId: string, update: number) => JSON.stringify({ taskId, taskType: 'SIMPLE', status: 'IN_PROGRESS', pollCount: update });

function payload(messages: [string | null, string | null][], firstOffset = 100, highWatermark = firstOffset + messages.length): FakePayload {
  const kafkaMessages: KafkaMessage[] = messages.map(([key, value], index) => ({
    key: key === null ? null : Buffer.from(key),
    value: value === null ? null : Buffer.from(value),
    timestamp: '1000',
    attributes: 0,
    offset: String(firstOffset + index),
    headers: { trace: Buffer.from(`t${index}`) },
  }));
  const batch = {
    topic: 'tasks',
    partition: 2,
    highWatermark: String(highWatermark),
    messages: kafkaMessages,
    isEmpty: () => kafkaMessages.length === 0,
    firstOffset: () => kafkaMessages[0]?.offset ?? null,
    lastOffset: () => kafkaMessages[kafkaMessages.length - 1].offset,
    // kafkajs's: the high watermark - 1 - the batch's last offset.
    offsetLag: () => String(highWatermark - 1 - Number(kafkaMessages[kafkaMessages.length - 1].offset)),
  } as Batch;
  const fake: FakePayload = {
    batch,
    resolved: [],
    heartbeats: 0,
    running: true,
    resolveOffset: (offset: string) => void fake.resolved.push(offset),
    heartbeat: async () => void (fake.heartbeats += 1),
    pause: () => () => undefined,
    commitOffsetsIfNecessary: async () => undefined,
    uncommittedOffsets: () => ({ topics: [] }),
    isRunning: () => fake.running,
    isStale: () => false,
  };
  return fake;
}

/** Lets fake time pass until `work` settles: the retries' backoff, without real waits. */
async function onFakeTime<T>(work: Promise<T>): Promise<T> {
  let settled = false;
  const outcome = work.finally(() => (settled = true));
  outcome.catch(() => undefined);
  while (!settled) await jest.advanceTimersByTimeAsync(5);
  return outcome;
}

/** What the service logs while `work` runs: each line's level, fields (the object given first) and text. */
async function logsOf(work: () => Promise<unknown>): Promise<{ level: string; fields: unknown; text: unknown }[]> {
  const lines: { level: string; fields: unknown; text: unknown }[] = [];
  const keep = (level: string) => (fields: unknown, text: unknown) => void lines.push({ level, fields, text });
  Logger.overrideLogger({ log: keep('log'), warn: keep('warn'), error: keep('error'), debug: keep('debug') });
  try {
    await work();
  } finally {
    Logger.overrideLogger(false);
  }
  return lines;
}

describe('IngestService', () => {
  let projection: FakeProjection;
  let deadLetters: FakeDeadLetters;
  let service: IngestService;

  beforeAll(() => Logger.overrideLogger(false));

  // Retries back off on fake time: no test waits for real.
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] }));
  afterEach(() => jest.useRealTimers());

  beforeEach(() => {
    projection = new FakeProjection();
    deadLetters = new FakeDeadLetters();
    const config: IngestConfig = { retryInitialMs: 5, retryMaxMs: 20 };
    service = new IngestService(new TaskEventDecoder(), projection, deadLetters, config);
  });

  it('applies the valid events in one call, dead-letters the invalid ones, then resolves the last offset', async () => {
    const batch = payload([
      ['a', valid('a', 1)],
      ['b', '{not json'],
      ['a', valid('a', 2)],
      [null, null],
      ['c', null],
    ]);
    await service.handleBatch(batch);

    expect(projection.calls).toHaveLength(1);
    expect(projection.calls[0].map((event) => [event.taskId, event.offset, event.value?.toString() ?? null])).toEqual([
      ['a', '100', valid('a', 1)],
      ['a', '102', valid('a', 2)],
      ['c', '104', null],
    ]);
    expect(deadLetters.calls).toHaveLength(1);
    expect(deadLetters.calls[0].map((letter) => [letter.message.offset, letter.reason.split(':')[0]])).toEqual([
      ['101', 'INVALID_JSON'],
      ['103', 'MISSING_KEY'],
    ]);
    expect(deadLetters.calls[0][0]).toMatchObject({ topic: 'tasks', partition: 2 });
    expect(deadLetters.calls[0][0].message.headers).toEqual({ trace: Buffer.from('t1') });
    expect(batch.resolved).toEqual(['104']);
  });

  it('dead-letters an event the decoder fails on unexpectedly, as UNDECODABLE, and moves on', async () => {
    class FailingDecoder extends TaskEventDecoder {
      override decode(message: KafkaMessage, partition: number): TaskEvent {
        if (message.offset === '101') throw new TypeError("Cannot read properties of null (reading 'prototype')");
        return super.decode(message, partition);
      }
    }
    const config: IngestConfig = { retryInitialMs: 5, retryMaxMs: 20 };
    service = new IngestService(new FailingDecoder(), projection, deadLetters, config);
    const fake = payload([
      ['t1', valid('t1', 1)],
      ['t2', valid('t2', 1)],
      ['t3', valid('t3', 1)],
    ]);
    await service.handleBatch(fake);
    expect(projection.calls.map((events) => events.map((event) => event.taskId))).toEqual([['t1', 't3']]);
    expect(deadLetters.calls[0].map((letter) => [letter.message.offset, letter.reason])).toEqual([
      ['101', "UNDECODABLE: decoding failed unexpectedly (TypeError: Cannot read properties of null (reading 'prototype'))"],
    ]);
    expect(fake.resolved).toEqual(['102']);
  });

  it('applies a batch of many events in slices of 5,000, heartbeating between them, and retries only the slice that failed', async () => {
    const messages = Array.from({ length: 12_001 }, (_, index): [string, string | null] => [`t${index}`, null]);
    const batch = payload(messages);
    projection.failures = 0;
    const realApply = projection.applyBatch.bind(projection);
    let call = 0;
    projection.applyBatch = async (events) => {
      // The second slice meets Redis down once.
      if (++call === 2) projection.failures = 1;
      return realApply(events);
    };
    await onFakeTime(service.handleBatch(batch));
    expect(projection.calls.map((events) => [events.length, events[0].offset])).toEqual([
      [5000, '100'],
      [5000, '5100'],
      [5000, '5100'],
      [2001, '10100'],
    ]);
    expect(batch.resolved).toEqual(['12100']);
    expect(batch.heartbeats).toBeGreaterThanOrEqual(4);
  });

  it('dead-letters a record batch kafkajs could not read as one BATCH_UNREADABLE letter, and moves past it', async () => {
    const batch = payload([['a', valid('a', 1)], [null, null]]);
    const placeholder = batch.batch.messages[1] as KafkaMessage & { [UNREADABLE_BATCH]?: unknown };
    placeholder[UNREADABLE_BATCH] = { firstOffset: '40', lastOffset: '101', records: 62, reason: 'gzip data declares more than 67108864 bytes once decompressed' };
    await service.handleBatch(batch);
    expect(projection.calls.map((events) => events.map((event) => event.taskId))).toEqual([['a']]);
    expect(deadLetters.calls[0].map((letter) => [letter.message.offset, letter.reason])).toEqual([
      ['101', 'BATCH_UNREADABLE: the record batch at offsets 40 to 101 (62 records) could not be read: gzip data declares more than 67108864 bytes once decompressed'],
    ]);
    expect(batch.resolved).toEqual(['101']);
  });

  it('does not call the projection for a batch with only invalid events', async () => {
    const batch = payload([['x', '[]']]);
    await service.handleBatch(batch);
    expect(projection.calls).toHaveLength(0);
    expect(deadLetters.calls).toHaveLength(1);
    expect(batch.resolved).toEqual(['100']);
  });

  it('while the projection is unreachable, retries the same batch, heartbeating, and resolves nothing until it succeeds', async () => {
    projection.failures = 4;
    const batch = payload([['a', valid('a', 1)], ['b', valid('b', 1)]]);
    let resolvedDuringOutage: string[] | undefined;
    const realApply = projection.applyBatch.bind(projection);
    projection.applyBatch = async (events) => {
      if (projection.failures === 0) resolvedDuringOutage = [...batch.resolved];
      return realApply(events);
    };
    await onFakeTime(service.handleBatch(batch));

    expect(projection.calls).toHaveLength(5);
    for (const call of projection.calls) expect(call).toEqual(projection.calls[0]);
    expect(resolvedDuringOutage).toEqual([]);
    expect(batch.resolved).toEqual(['101']);
    expect(batch.heartbeats).toBeGreaterThanOrEqual(5);
    expect(deadLetters.calls).toHaveLength(0);
  });

  it('announces the tasks each applied slice changed, once per slice, and nothing for the attempts that failed', async () => {
    const notified: string[][] = [];
    const changes = new (class extends TaskChangeNotifier {
      notify(taskIds: readonly string[]): void {
        notified.push([...taskIds]);
      }
    })();
    service = new IngestService(new TaskEventDecoder(), projection, deadLetters, { retryInitialMs: 5, retryMaxMs: 20 }, new TaskCacheMetrics({}), changes);
    projection.failures = 2;
    await onFakeTime(service.handleBatch(payload([['a', valid('a', 1)], ['b', '{not json'], ['a', valid('a', 2)], ['c', valid('c', 1)]])));

    expect(projection.calls).toHaveLength(3);
    expect(notified).toEqual([['a', 'c']]);
  });

  it('logs every line about an event or a batch with its topic, partition and offset as fields, and a failure under err', async () => {
    class FailingDecoder extends TaskEventDecoder {
      override decode(message: KafkaMessage, partition: number): TaskEvent {
        if (message.offset === '101') throw new TypeError('decoder defect');
        return super.decode(message, partition);
      }
    }
    service = new IngestService(new FailingDecoder(), projection, deadLetters, { retryInitialMs: 5, retryMaxMs: 20 });
    projection.failures = 1;
    const lines = await logsOf(() => onFakeTime(service.handleBatch(payload([['a', valid('a', 1)], ['b', valid('b', 1)], ['c', valid('c', 1)]]))));
    const at = { topic: 'tasks', partition: 2 };
    expect(lines).toEqual([
      {
        level: 'error',
        fields: { ...at, offset: '101', err: expect.objectContaining({ message: 'decoder defect' }) },
        text: 'decoding tasks partition 2 offset 101 failed unexpectedly; dead-lettering it: TypeError: decoder defect',
      },
      {
        level: 'warn',
        fields: { ...at, offset: '100', err: expect.any(ProjectionUnavailableError) },
        text: expect.stringMatching(/^projection failing \(unreachable or refusing\); holding tasks partition 2 from offset 100 uncommitted, retrying in \d+ ms: /),
      },
      { level: 'log', fields: { ...at, offset: '100' }, text: expect.stringMatching(/^projection reachable again: tasks partition 2 resumes after \d+ ms and 1 retries$/) },
      { level: 'debug', fields: { ...at, offset: '100', lastOffset: '102' }, text: 'tasks partition 2 to offset 102: 2 valid (2 applied, 0 stale or superseded, 0 with an expiry, 0 already expired), 1 dead-lettered' },
    ]);

    projection.failures = Number.POSITIVE_INFINITY;
    const stopped = await logsOf(async () => {
      const handled = service.handleBatch(payload([['d', valid('d', 1)]], 200));
      await jest.advanceTimersByTimeAsync(30);
      service.stopRetrying();
      await handled;
    });
    expect(stopped.at(-1)).toEqual({ level: 'warn', fields: { ...at, offset: '200' }, text: 'stopping while the projection is failing: tasks partition 2 from offset 200 stays uncommitted and will be consumed again' });
  });

  it('does not dead-letter anything because the projection is down', async () => {
    projection.failures = 2;
    await onFakeTime(service.handleBatch(payload([['a', valid('a', 1)]])));
    expect(deadLetters.calls).toHaveLength(0);
  });

  it('retries the dead-letter topic without applying the batch again', async () => {
    deadLetters.failures = 2;
    const batch = payload([['a', valid('a', 1)], ['b', '"x"']]);
    await onFakeTime(service.handleBatch(batch));
    expect(projection.calls).toHaveLength(1);
    expect(deadLetters.calls).toHaveLength(3);
    expect(batch.resolved).toEqual(['101']);
  });

  describe('during an endless outage', () => {
    it('on shutdown during an outage, stops retrying and leaves the batch unresolved', async () => {
      projection.failures = Number.POSITIVE_INFINITY;
      const batch = payload([['a', valid('a', 1)]]);
      const handled = service.handleBatch(batch);
      await jest.advanceTimersByTimeAsync(30);
      expect(projection.calls.length).toBeGreaterThan(1);
      service.stopRetrying();
      await handled;
      expect(batch.resolved).toEqual([]);
      const calls = projection.calls.length;
      await jest.advanceTimersByTimeAsync(50);
      expect(projection.calls.length).toBe(calls);
    });

    it('stops retrying when kafkajs stops the consumer, leaving the batch unresolved', async () => {
      projection.failures = Number.POSITIVE_INFINITY;
      const batch = payload([['a', valid('a', 1)]]);
      const handled = service.handleBatch(batch);
      await jest.advanceTimersByTimeAsync(30);
      expect(projection.calls.length).toBeGreaterThan(1);
      batch.running = false;
      await jest.advanceTimersByTimeAsync(20);
      await handled;
      expect(batch.resolved).toEqual([]);
    });
  });

  it('lets a rebalance seen by the heartbeat end the batch unresolved, for kafkajs to rejoin', async () => {
    projection.failures = Number.POSITIVE_INFINITY;
    const batch = payload([['a', valid('a', 1)]]);
    const rebalancing = Object.assign(new Error('The group is rebalancing, so a rejoin is needed'), { type: 'REBALANCE_IN_PROGRESS' });
    batch.heartbeat = async () => {
      batch.heartbeats += 1;
      if (batch.heartbeats > 3) throw rebalancing;
    };
    await expect(onFakeTime(service.handleBatch(batch))).rejects.toBe(rebalancing);
    expect(batch.resolved).toEqual([]);
  });

  describe('metrics', () => {
    /** The value of a metric's series, by name and labels; 0 when absent. */
    async function valueOf(metrics: TaskCacheMetrics, name: string, labels: Record<string, string | number> = {}): Promise<number> {
      for (const metric of await metrics.registry.getMetricsAsJSON()) {
        for (const value of metric.values as { metricName?: string; labels: Record<string, string | number>; value: number }[]) {
          const metricName = value.metricName ?? metric.name;
          if (metricName === name && Object.entries(labels).every(([key, label]) => String(value.labels[key]) === String(label))) return value.value;
        }
      }
      return 0;
    }

    it('counts events consumed, applied and stale, observes freshness and duration, and reports lag before and after the batch', async () => {
      const metrics = new TaskCacheMetrics({});
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let lagWhileApplying = -1;
      class HeldProjection extends FakeProjection {
        override async applyBatch(events: readonly TaskEvent[]): Promise<ApplyResult> {
          lagWhileApplying = await valueOf(metrics, 'taskcache_consumer_lag_messages', { topic: 'tasks', partition: 2 });
          await held;
          return { applied: events.length - 1, stale: 1, retained: 1, expiredOnArrival: 0, changed: [] };
        }
      }
      service = new IngestService(new TaskEventDecoder(), new HeldProjection(), deadLetters, { retryInitialMs: 5, retryMaxMs: 20 }, metrics);
      // Offsets 100 to 102 of a partition whose high watermark is 110: 10 to apply, 7 beyond the batch.
      const batch = payload([['a', valid('a', 1)], ['b', valid('b', 1)], ['c', '{not json']], 100, 110);
      const handled = service.handleBatch(batch);
      await new Promise((resolve) => setImmediate(resolve));
      expect(lagWhileApplying).toBe(10);
      release();
      await handled;

      expect(await valueOf(metrics, 'taskcache_consumer_lag_messages', { topic: 'tasks', partition: 2 })).toBe(7);
      expect(await valueOf(metrics, 'taskcache_events_consumed_total')).toBe(3);
      expect(await valueOf(metrics, 'taskcache_events_applied_total')).toBe(1);
      expect(await valueOf(metrics, 'taskcache_events_stale_total')).toBe(1);
      expect(await valueOf(metrics, 'taskcache_events_retained_total')).toBe(1);
      expect(await valueOf(metrics, 'taskcache_events_expired_on_arrival_total')).toBe(0);
      // Both valid events were applied long after their (fake) timestamp of 1 s past the epoch.
      expect(await valueOf(metrics, 'taskcache_event_freshness_seconds_count')).toBe(2);
      expect(await valueOf(metrics, 'taskcache_event_freshness_seconds_bucket', { le: 3600 })).toBe(0);
      expect(await valueOf(metrics, 'taskcache_batch_apply_duration_seconds_count')).toBe(1);
    });

    it('leaves the lag at the whole batch while the projection is unreachable', async () => {
      const metrics = new TaskCacheMetrics({});
      service = new IngestService(new TaskEventDecoder(), projection, deadLetters, { retryInitialMs: 5, retryMaxMs: 20 }, metrics);
      projection.failures = Number.MAX_SAFE_INTEGER;
      const batch = payload([['a', valid('a', 1)]], 40, 45);
      const handled = service.handleBatch(batch);
      await jest.advanceTimersByTimeAsync(200);
      expect(await valueOf(metrics, 'taskcache_consumer_lag_messages', { topic: 'tasks', partition: 2 })).toBe(5);
      expect(await valueOf(metrics, 'taskcache_batch_held', { topic: 'tasks', partition: 2 })).toBe(1);
      expect(await valueOf(metrics, 'taskcache_batch_apply_duration_seconds_count')).toBe(0);
      service.stopRetrying();
      await onFakeTime(handled);
      expect(batch.resolved).toEqual([]);
      expect(await valueOf(metrics, 'taskcache_batch_held', { topic: 'tasks', partition: 2 })).toBe(0);
    });

    it('reports a partition held while the projection fails, and not once it goes through', async () => {
      const metrics = new TaskCacheMetrics({});
      service = new IngestService(new TaskEventDecoder(), projection, deadLetters, { retryInitialMs: 5, retryMaxMs: 20 }, metrics);
      projection.failures = 3;
      const batch = payload([['a', valid('a', 1)]]);
      await onFakeTime(service.handleBatch(batch));
      expect(batch.resolved).toEqual(['100']);
      expect(await valueOf(metrics, 'taskcache_batch_held', { topic: 'tasks', partition: 2 })).toBe(0);
    });

    it('applies and resolves an event without a usable timestamp, observing no freshness for it', async () => {
      const metrics = new TaskCacheMetrics({});
      service = new IngestService(new TaskEventDecoder(), projection, deadLetters, { retryInitialMs: 5, retryMaxMs: 20 }, metrics);
      const batch = payload([['a', valid('a', 1)]]);
      (batch.batch.messages[0] as { timestamp?: string }).timestamp = undefined;
      await onFakeTime(service.handleBatch(batch));
      expect(batch.resolved).toEqual(['100']);
      expect(projection.calls).toHaveLength(1);
      expect(await valueOf(metrics, 'taskcache_events_applied_total')).toBe(1);
      expect(await valueOf(metrics, 'taskcache_event_freshness_seconds_count')).toBe(0);
    });
  });
});
