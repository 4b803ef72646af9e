import { Logger } from '@nestjs/common';
import fc from 'fast-check';
import { RedisTaskProjection } from '../../src/projection/redis-task-projection.js';
import { TaskEvent } from '../../src/projection/task-event.js';
import { batchSizes, consumeLogs, consumptionSteps as steps } from '../support/log-consumption.js';
import { ProjectionHarness } from '../support/projection-harness.js';
import { PrivateRedisServer, startPrivateRedis } from '../support/test-redis.js';

/**
 * Property tests of the projection on a real Redis (a private redis-server started for this file, or
 * a private cluster of six with TC_REDIS_MODE=cluster):
 * whatever order Kafka's partitions are consumed in, and however often batches that were already
 * applied come again (a consumer restarting from an older commit, a second group, a rebuild), the
 * projection ends up as the last event of every task, and deleted tasks stay deleted.
 */

/** One produced event, before it is given a partition and an offset. */
interface Produced {
  readonly task: number;
  readonly tombstone: boolean;
}

let run = 0;
let server: PrivateRedisServer;
let harness: ProjectionHarness;
let projection: RedisTaskProjection;

beforeAll(async () => {
  Logger.overrideLogger(['error']);
  server = await startPrivateRedis();
  harness = await ProjectionHarness.open(server.config, 'projection-property:', { commandTimeoutMs: 2000 });
  ({ projection } = harness);
});

afterAll(async () => {
  await harness?.close();
  await server?.destroy();
});

const valueOf = (taskId: string, index: number) => Buffer.from(JSON.stringify({ taskId, status: 'IN_PROGRESS', taskType: 'SIMPLE', index }));

/** Checks that every task holds exactly its last event: its bytes, or nothing after a tombstone. */
async function expectLastEvents(last: Map<string, TaskEvent>): Promise<void> {
  for (const [taskId, event] of last) {
    const stored = await projection.get(taskId);
    if (event.value === null) {
      expect({ taskId, stored: stored?.value.toString() ?? null }).toEqual({ taskId, stored: null });
    } else {
      expect({ taskId, stored: stored?.value.toString() }).toEqual({ taskId, stored: event.value.toString() });
      expect(stored?.version).toBe(`${event.partition}-${event.offset}`);
    }
  }
}

describe('the Redis projection under any interleaving and redelivery (fast-check)', () => {
  it('each task, on its own partition, ends as its last event; deleted tasks stay deleted through a full replay', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 6 }),
        fc.array(fc.record({ task: fc.nat(5), tombstone: fc.boolean() }), { minLength: 1, maxLength: 40 }),
        fc.array(fc.integer({ min: 0, max: 5000 }), { minLength: 1, maxLength: 40 }),
        steps,
        batchSizes,
        async (partitions, homes, produced: Produced[], timestamps, plan, sizes) => {
          run += 1;
          const taskId = (task: number) => `r${run}-task-${task % homes.length}`;
          const logs: TaskEvent[][] = Array.from({ length: partitions }, () => []);
          const last = new Map<string, TaskEvent>();
          produced.forEach(({ task, tombstone }, index) => {
            const id = taskId(task);
            const partition = homes[task % homes.length] % partitions;
            const log = logs[partition];
            // Timestamps are arbitrary: on one partition the offset alone orders a task's events.
            const event: TaskEvent = {
              taskId: id,
              value: tombstone ? null : valueOf(id, index),
              partition,
              offset: String(log.length),
              timestamp: timestamps[index % timestamps.length],
            };
            log.push(event);
            last.set(id, event);
          });

          const applied = await consumeLogs(logs, plan, sizes, (batch) => projection.applyBatch(batch));
          await expectLastEvents(last);
          // A replay of everything already applied (a consumer starting from an older commit)
          // changes nothing, and resurrects nothing.
          for (const batch of applied) await projection.applyBatch(batch);
          await expectLastEvents(last);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a task that moves between partitions ends as its latest event by timestamp, whatever the order', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ task: fc.nat(3), partition: fc.nat(3), tombstone: fc.boolean() }), { minLength: 1, maxLength: 30 }),
        steps,
        batchSizes,
        async (produced, plan, sizes) => {
          run += 1;
          const logs: TaskEvent[][] = Array.from({ length: 4 }, () => []);
          const last = new Map<string, TaskEvent>();
          produced.forEach(({ task, partition, tombstone }, index) => {
            const id = `r${run}-moving-${task}`;
            const log = logs[partition];
            // Producers stamp events in the order they send them.
            const event: TaskEvent = {
              taskId: id,
              value: tombstone ? null : valueOf(id, index),
              partition,
              offset: String(log.length),
              timestamp: 1_700_000_000_000 + index,
            };
            log.push(event);
            last.set(id, event);
          });

          const applied = await consumeLogs(logs, plan, sizes, (batch) => projection.applyBatch(batch));
          await expectLastEvents(last);
          for (const batch of [...applied].reverse()) await projection.applyBatch(batch);
          await expectLastEvents(last);
        },
      ),
      { numRuns: 300 },
    );
  });
});
