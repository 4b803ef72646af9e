import { Logger } from '@nestjs/common';
import fc from 'fast-check';
import { Cluster, Redis } from 'ioredis';
import { ProjectionKeys } from '../../src/projection/projection-keys.js';
import { RedisTaskProjection } from '../../src/projection/redis-task-projection.js';
import { TaskEvent } from '../../src/projection/task-event.js';
import { batchSizes, consumeLogs, consumptionSteps } from '../support/log-consumption.js';
import { ProjectionHarness } from '../support/projection-harness.js';
import { PrivateRedisServer, redisClient, startPrivateRedis } from '../support/test-redis.js';

/**
 * Retention of finished tasks (PROJECTION_TERMINAL_TTL_SECONDS) in the apply script, on a real Redis
 * (a private redis-server, or a private cluster with TC_REDIS_MODE=cluster). The script decides
 * expiry by Redis's own clock (TIME): events are stamped either well past their retention or well
 * within it, so which is which does not depend on how long the test takes.
 */

const HOUR_MS = 3600 * 1000;
const DAY_MS = 24 * HOUR_MS;
const TERMINAL_TTL_SECONDS = 24 * 3600;
const TOMBSTONE_TTL_SECONDS = 3600;

let server: PrivateRedisServer;
let raw: Redis | Cluster;
let prefix = 0;
let harness: ProjectionHarness;
let projection: RedisTaskProjection;
let keys: ProjectionKeys;

const event = (taskId: string, partition: number, offset: number, timestamp: number, status: 'IN_PROGRESS' | 'COMPLETED' | null): TaskEvent => ({
  taskId,
  value: status === null ? null : Buffer.from(JSON.stringify({ taskId, status, offset, partition })),
  partition,
  offset: String(offset),
  timestamp,
  terminal: status === 'COMPLETED',
});
const running = (taskId: string, partition: number, offset: number, timestamp: number) => event(taskId, partition, offset, timestamp, 'IN_PROGRESS');
const completed = (taskId: string, partition: number, offset: number, timestamp: number) => event(taskId, partition, offset, timestamp, 'COMPLETED');
const keyOf = (taskId: string) => keys.task(1, taskId);

beforeAll(async () => {
  Logger.overrideLogger(false);
  server = await startPrivateRedis();
  raw = redisClient(server.config);
});

async function openProjection(terminalTtlSeconds: number | undefined): Promise<void> {
  prefix += 1;
  harness = await ProjectionHarness.open(server.config, `retention${prefix}:`, {
    tombstoneTtlSeconds: TOMBSTONE_TTL_SECONDS,
    commandTimeoutMs: 2000,
    ...(terminalTtlSeconds !== undefined && { terminalTtlSeconds }),
  });
  ({ projection, keys } = harness);
}

afterEach(async () => {
  await harness?.close();
});

afterAll(async () => {
  await raw?.quit();
  await server?.destroy();
});

/** The PTTL a key should have when it expires at `expireAt`, give or take the test's own time. */
function expectExpiringAt(pttl: number, expireAt: number): void {
  expect(pttl).toBeGreaterThan(0);
  expect(Math.abs(pttl - (expireAt - Date.now()))).toBeLessThan(5000);
}

/** A version marker: the event's version, no value, expiring within the tombstone TTL. */
async function expectMarker(taskId: string, version: TaskEvent): Promise<void> {
  expect(await projection.get(taskId)).toBeNull();
  expect(await raw.hgetall(keyOf(taskId))).toEqual({ p: String(version.partition), o: version.offset, t: String(version.timestamp) });
  const pttl = await raw.pttl(keyOf(taskId));
  expect(pttl).toBeGreaterThan(0);
  expect(pttl).toBeLessThanOrEqual(TOMBSTONE_TTL_SECONDS * 1000);
}

describe('retention off (PROJECTION_TERMINAL_TTL_SECONDS unset)', () => {
  beforeEach(() => openProjection(undefined));

  it('keeps a finished task forever, however old its event', async () => {
    expect(await projection.applyBatch([completed('t', 0, 1, Date.now() - 365 * DAY_MS)])).toEqual({ applied: 1, stale: 0, retained: 0, expiredOnArrival: 0, changed: ['t'] });
    expect(await projection.get('t')).not.toBeNull();
    expect(await raw.pttl(keyOf('t'))).toBe(-1);
  });
});

describe('retention on (apply-task-event.lua)', () => {
  beforeEach(() => openProjection(TERMINAL_TTL_SECONDS));

  it("writes a finished task with an expiry at its event's timestamp plus the retention; a running one never expires", async () => {
    const finishedAt = Date.now() - HOUR_MS;
    expect(await projection.applyBatch([completed('done', 0, 1, finishedAt), running('busy', 0, 2, finishedAt)])).toEqual({
      applied: 2,
      stale: 0,
      retained: 1,
      expiredOnArrival: 0,
      changed: ['done', 'busy'],
    });
    expect((await projection.get('done'))?.version).toBe('0-1');
    expectExpiringAt(await raw.pttl(keyOf('done')), finishedAt + TERMINAL_TTL_SECONDS * 1000);
    expect(await raw.pttl(keyOf('busy'))).toBe(-1);
  });

  it('a later non-terminal event makes the task permanent again, and a later terminal one moves its expiry', async () => {
    const now = Date.now();
    await projection.applyBatch([completed('t', 0, 1, now - 2 * HOUR_MS)]);
    await projection.applyBatch([running('t', 0, 2, now - HOUR_MS)]);
    expect((await projection.get('t'))?.version).toBe('0-2');
    expect(await raw.pttl(keyOf('t'))).toBe(-1);
    await projection.applyBatch([completed('t', 0, 3, now)]);
    expectExpiringAt(await raw.pttl(keyOf('t')), now + TERMINAL_TTL_SECONDS * 1000);
  });

  it('a redelivered older event changes neither the value nor its expiry', async () => {
    const now = Date.now();
    await projection.applyBatch([completed('t', 0, 5, now)]);
    expect(await projection.applyBatch([running('t', 0, 4, now), completed('t', 0, 5, now)])).toEqual({ applied: 0, stale: 2, retained: 0, expiredOnArrival: 0, changed: ['t'] });
    expect((await projection.get('t'))?.version).toBe('0-5');
    expectExpiringAt(await raw.pttl(keyOf('t')), now + TERMINAL_TTL_SECONDS * 1000);
  });

  it('a finished task over a deleted one takes its own expiry in place of the marker TTL', async () => {
    const now = Date.now();
    await projection.applyBatch([event('t', 0, 1, now, null)]);
    await projection.applyBatch([completed('t', 0, 2, now)]);
    expect((await projection.get('t'))?.version).toBe('0-2');
    expectExpiringAt(await raw.pttl(keyOf('t')), now + TERMINAL_TTL_SECONDS * 1000);
  });

  it('an event already past its retention is not written: its version stays as a marker, with the tombstone TTL, and an older event after it is stale', async () => {
    const old = Date.now() - 2 * DAY_MS;
    await projection.applyBatch([running('t', 0, 1, old - HOUR_MS)]);
    const finished = completed('t', 0, 2, old);
    expect(await projection.applyBatch([finished])).toEqual({ applied: 1, stale: 0, retained: 0, expiredOnArrival: 1, changed: ['t'] });
    await expectMarker('t', finished);

    // The same task's older events: redelivered on its partition, or from a partition it moved from.
    expect(await projection.applyBatch([running('t', 0, 1, old - HOUR_MS)])).toMatchObject({ applied: 0, stale: 1 });
    expect(await projection.applyBatch([running('t', 3, 40, old - HOUR_MS)])).toMatchObject({ applied: 0, stale: 1 });
    await expectMarker('t', finished);

    // A task never seen before leaves a marker as well.
    expect(await projection.applyBatch([completed('u', 1, 7, old)])).toMatchObject({ applied: 1, expiredOnArrival: 1 });
    await expectMarker('u', completed('u', 1, 7, old));
  });

  it('a later non-terminal event after an expired one is written, permanent', async () => {
    const old = Date.now() - 2 * DAY_MS;
    await projection.applyBatch([completed('t', 0, 2, old)]);
    await projection.applyBatch([running('t', 0, 3, Date.now())]);
    expect((await projection.get('t'))?.version).toBe('0-3');
    expect(await raw.pttl(keyOf('t'))).toBe(-1);
  });

  it("Redis removes a finished task at its expiry; a redelivery of that event then leaves only a marker (Redis's clock decides)", async () => {
    // Stamped so that its retention ends 1.5 s from now.
    const finished = completed('t', 0, 2, Date.now() - TERMINAL_TTL_SECONDS * 1000 + 1500);
    expect(await projection.applyBatch([finished])).toMatchObject({ applied: 1, retained: 1 });
    expect((await projection.get('t'))?.version).toBe('0-2');
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(await projection.get('t')).toBeNull();
    expect(await raw.exists(keyOf('t'))).toBe(0);
    expect(await projection.applyBatch([finished])).toMatchObject({ applied: 1, expiredOnArrival: 1 });
    await expectMarker('t', finished);
  });

  it('after Redis removed a finished task nothing of it remains, so an older event applied then is written (the documented residual window)', async () => {
    const finished = completed('t', 0, 2, Date.now() - TERMINAL_TTL_SECONDS * 1000 + 1000);
    await projection.applyBatch([finished]);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await projection.applyBatch([running('t', 0, 1, Date.now() - DAY_MS)])).toMatchObject({ applied: 1 });
    expect((await projection.get('t'))?.version).toBe('0-1');
  });

  it('a finished task whose event has no timestamp expires the retention after it is applied', async () => {
    const before = Date.now();
    expect(await projection.applyBatch([completed('t', 0, 1, Number.NaN)])).toMatchObject({ applied: 1, retained: 1 });
    expectExpiringAt(await raw.pttl(keyOf('t')), before + TERMINAL_TTL_SECONDS * 1000);
  });

  it.each([
    ['an hour ahead (a producer clock ahead)', () => Date.now() + HOUR_MS],
    ['in microseconds', () => Date.now() * 1000],
    ["at Kafka's largest timestamp", () => 9223372036854775807],
  ])('a finished task stamped %s expires the retention after it is applied, not later, and Redis takes the expiry', async (_, stamp) => {
    const before = Date.now();
    expect(await projection.applyBatch([completed('t', 0, 1, stamp())])).toMatchObject({ applied: 1, retained: 1 });
    expectExpiringAt(await raw.pttl(keyOf('t')), before + TERMINAL_TTL_SECONDS * 1000);
    expect((await projection.get('t'))?.version).toBe('0-1');
  });
});

/** What the projection must hold for a task whose last event by version is `last`. */
async function expectLastByVersion(taskId: string, last: TaskEvent): Promise<void> {
  const expired = last.terminal === true && last.timestamp + TERMINAL_TTL_SECONDS * 1000 <= Date.now();
  const stored = await projection.get(taskId);
  if (last.value === null || expired) {
    expect({ taskId, stored: stored?.value.toString() ?? null }).toEqual({ taskId, stored: null });
    await expectMarker(taskId, last);
    return;
  }
  expect({ taskId, stored: stored?.value.toString(), version: stored?.version }).toEqual({
    taskId,
    stored: last.value.toString(),
    version: `${last.partition}-${last.offset}`,
  });
  const pttl = await raw.pttl(keyOf(taskId));
  if (last.terminal) expectExpiringAt(pttl, last.timestamp + TERMINAL_TTL_SECONDS * 1000);
  else expect({ taskId, pttl }).toEqual({ taskId, pttl: -1 });
}

const kinds = fc.constantFrom('running', 'completed', 'tombstone');
type Kind = 'running' | 'completed' | 'tombstone';
const made = (kind: Kind, taskId: string, partition: number, offset: number, timestamp: number): TaskEvent =>
  event(taskId, partition, offset, timestamp, kind === 'tombstone' ? null : kind === 'running' ? 'IN_PROGRESS' : 'COMPLETED');

describe('retention under any interleaving and redelivery (fast-check)', () => {
  let run = 0;
  beforeEach(() => openProjection(TERMINAL_TTL_SECONDS));

  it('each task, on its own partition, ends as its last event by offset, expired or not by that event alone, through a full replay', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ task: fc.nat(4), kind: kinds, old: fc.boolean(), jitter: fc.nat(HOUR_MS) }), { minLength: 1, maxLength: 30 }),
        fc.integer({ min: 1, max: 4 }),
        consumptionSteps,
        batchSizes,
        async (produced, partitions, plan, sizes) => {
          run += 1;
          const now = Date.now();
          const logs: TaskEvent[][] = Array.from({ length: partitions }, () => []);
          const last = new Map<string, TaskEvent>();
          for (const { task, kind, old, jitter } of produced) {
            const taskId = `own${run}-${task}`;
            const log = logs[task % partitions];
            // Well past the retention (2 days old), or well within it (at most an hour old).
            const timestamp = old ? now - 2 * DAY_MS - jitter : now - jitter;
            const next = made(kind, taskId, task % partitions, log.length, timestamp);
            log.push(next);
            last.set(taskId, next);
          }
          const applied = await consumeLogs(logs, plan, sizes, (batch) => projection.applyBatch(batch));
          for (const [taskId, event] of last) await expectLastByVersion(taskId, event);
          for (const batch of applied) await projection.applyBatch(batch);
          for (const [taskId, event] of last) await expectLastByVersion(taskId, event);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a task moving between partitions ends as its latest event by timestamp, whatever the order, expired ones leaving markers', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ task: fc.nat(2), partition: fc.nat(3), kind: kinds }), { minLength: 1, maxLength: 30 }),
        consumptionSteps,
        batchSizes,
        async (produced, plan, sizes) => {
          run += 1;
          const now = Date.now();
          const logs: TaskEvent[][] = Array.from({ length: 4 }, () => []);
          const last = new Map<string, TaskEvent>();
          produced.forEach(({ task, partition, kind }, index) => {
            const taskId = `moving${run}-${task}`;
            const log = logs[partition];
            // Stamped in the order produced, 90 minutes apart from 47.5 hours ago: the first 16 are
            // past a day's retention, the rest within it, none within 30 minutes of its end.
            const next = made(kind, taskId, partition, log.length, now - 47.5 * HOUR_MS + index * 1.5 * HOUR_MS);
            log.push(next);
            last.set(taskId, next);
          });
          const applied = await consumeLogs(logs, plan, sizes, (batch) => projection.applyBatch(batch));
          for (const [taskId, event] of last) await expectLastByVersion(taskId, event);
          for (const batch of [...applied].reverse()) await projection.applyBatch(batch);
          for (const [taskId, event] of last) await expectLastByVersion(taskId, event);
        },
      ),
      { numRuns: 200 },
    );
  });
});
