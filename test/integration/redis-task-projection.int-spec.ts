import { Logger } from '@nestjs/common';
import { Cluster, Redis } from 'ioredis';
import { ProjectionUnavailableError } from '../../src/projection/projection-unavailable.error.js';
import { latestPerTask, RedisTaskProjection } from '../../src/projection/redis-task-projection.js';
import { TaskEvent } from '../../src/projection/task-event.js';
import { ProjectionKeys } from '../../src/projection/projection-keys.js';
import { ProjectionHarness } from '../support/projection-harness.js';
import { PrivateRedisServer, REDIS_MODE, redisClient, startPrivateRedis } from '../support/test-redis.js';

// The Lua script is the single place where "newer wins" is decided, so these run it where it
// runs in production: in a redis-server, a private one started for this file (a private cluster of
// six with TC_REDIS_MODE=cluster).

const TTL_SECONDS = 60;
let server: PrivateRedisServer;
let harness: ProjectionHarness;
let projection: RedisTaskProjection;
let raw: Redis | Cluster;
let keys: ProjectionKeys;
let prefix = 0;

const write = (taskId: string, partition: number, offset: number, timestamp = 1000, body = `${partition}-${offset}`): TaskEvent => ({
  taskId,
  value: Buffer.from(JSON.stringify({ taskId, body })),
  partition,
  offset: String(offset),
  timestamp,
});
const tombstone = (taskId: string, partition: number, offset: number, timestamp = 1000): TaskEvent => ({
  taskId,
  value: null,
  partition,
  offset: String(offset),
  timestamp,
});
const stored = async (taskId: string) => (await projection.get(taskId))?.value.toString() ?? null;
const bodyOf = (event: TaskEvent) => event.value!.toString();

beforeAll(async () => {
  Logger.overrideLogger(false);
  server = await startPrivateRedis({ durable: true });
  // A short disconnect timeout: this client sees the server killed, and ioredis would otherwise
  // keep a 2 s timer for its dead socket after quit.
  raw = redisClient(server.config);
});

beforeEach(async () => {
  // A fresh key prefix per test: every test starts from an empty projection.
  prefix += 1;
  harness = await ProjectionHarness.open(server.config, `unit${prefix}:`, { tombstoneTtlSeconds: TTL_SECONDS });
  ({ projection, keys } = harness);
});

afterEach(async () => {
  await harness.close();
});

afterAll(async () => {
  await raw.quit();
  await server.destroy();
});

describe('version comparison (apply-task-event.lua)', () => {
  it('on one partition, a higher offset wins and a lower or equal one is stale (the equal one, the stored event itself, reported as changed for its watchers)', async () => {
    expect(await projection.applyBatch([write('t', 0, 5)])).toEqual({ applied: 1, stale: 0, retained: 0, expiredOnArrival: 0, changed: ['t'] });
    expect(await projection.applyBatch([write('t', 0, 4, 9999)])).toEqual({ applied: 0, stale: 1, retained: 0, expiredOnArrival: 0, changed: [] });
    expect(await projection.applyBatch([write('t', 0, 5, 9999, 'redelivered')])).toEqual({ applied: 0, stale: 1, retained: 0, expiredOnArrival: 0, changed: ['t'] });
    expect(await stored('t')).toBe(bodyOf(write('t', 0, 5)));
    await projection.applyBatch([write('t', 0, 6, 1)]);
    expect(await stored('t')).toBe(bodyOf(write('t', 0, 6, 1)));
  });

  it('on one partition the offset decides, whatever the timestamps say', async () => {
    await projection.applyBatch([write('t', 2, 10, 5000)]);
    await projection.applyBatch([write('t', 2, 11, 10)]);
    expect(await stored('t')).toBe(bodyOf(write('t', 2, 11, 10)));
  });

  it('compares offsets as numbers, not strings', async () => {
    await projection.applyBatch([write('t', 0, 9)]);
    await projection.applyBatch([write('t', 0, 10)]);
    expect(await stored('t')).toBe(bodyOf(write('t', 0, 10)));
    await projection.applyBatch([write('t', 0, 9)]);
    expect(await stored('t')).toBe(bodyOf(write('t', 0, 10)));
  });

  it('across partitions, the later timestamp wins in either order', async () => {
    const older = write('a', 0, 50, 1000);
    const newer = write('a', 1, 3, 2000);
    await projection.applyBatch([older]);
    await projection.applyBatch([newer]);
    expect(await stored('a')).toBe(bodyOf(newer));

    await projection.applyBatch([write('b', 1, 3, 2000)]);
    expect(await projection.applyBatch([write('b', 0, 50, 1000)])).toEqual({ applied: 0, stale: 1, retained: 0, expiredOnArrival: 0, changed: [] });
    expect(await stored('b')).toBe(bodyOf(write('b', 1, 3, 2000)));
  });

  it('across partitions with equal timestamps, the outcome does not depend on arrival order, so redelivery cannot flip it', async () => {
    const onZero = write('t', 0, 7, 1000);
    const onOne = write('t', 1, 2, 1000);
    await projection.applyBatch([onZero]);
    await projection.applyBatch([onOne]);
    const first = await stored('t');
    await projection.applyBatch([onZero]); // redelivery of the event that lost
    expect(await stored('t')).toBe(first);

    await projection.applyBatch([write('u', 1, 2, 1000)]);
    await projection.applyBatch([write('u', 0, 7, 1000)]);
    expect((await stored('u'))?.replace('"u"', '"t"')).toBe(first);
  });

  it('stores the produced bytes unchanged and versions them as partition-offset', async () => {
    const bytes = Buffer.from('{ "taskId":"t" ,"x": 1.50, "é": "\u2028" }');
    await projection.applyBatch([{ taskId: 't', value: bytes, partition: 3, offset: '12', timestamp: 1 }]);
    const task = await projection.get('t');
    expect(task?.value.equals(bytes)).toBe(true);
    expect(task?.version).toBe('3-12');
  });
});

describe('tombstones (apply-task-event.lua)', () => {
  it('write then tombstone leaves the task deleted, with a versioned marker that expires', async () => {
    await projection.applyBatch([write('t', 0, 1)]);
    await projection.applyBatch([tombstone('t', 0, 2)]);
    expect(await projection.get('t')).toBeNull();
    const key = keys.task(1, 't');
    expect(await raw.hgetall(key)).toEqual({ p: '0', o: '2', t: '1000' });
    const ttl = await raw.pttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(TTL_SECONDS * 1000);
  });

  it('tombstone then write leaves the task present, and the marker no longer expires', async () => {
    await projection.applyBatch([tombstone('t', 0, 1)]);
    await projection.applyBatch([write('t', 0, 2)]);
    expect(await stored('t')).toBe(bodyOf(write('t', 0, 2)));
    expect(await raw.pttl(keys.task(1, 't'))).toBe(-1);
  });

  it('a redelivered older write cannot resurrect a deleted task', async () => {
    await projection.applyBatch([write('t', 0, 1)]);
    await projection.applyBatch([tombstone('t', 0, 2)]);
    expect(await projection.applyBatch([write('t', 0, 1)])).toEqual({ applied: 0, stale: 1, retained: 0, expiredOnArrival: 0, changed: [] });
    expect(await projection.applyBatch([write('t', 1, 9, 999)])).toEqual({ applied: 0, stale: 1, retained: 0, expiredOnArrival: 0, changed: [] });
    expect(await projection.get('t')).toBeNull();
  });

  it('a redelivered tombstone cannot delete a later write', async () => {
    await projection.applyBatch([tombstone('t', 0, 2)]);
    await projection.applyBatch([write('t', 0, 3)]);
    await projection.applyBatch([tombstone('t', 0, 2)]);
    expect(await stored('t')).toBe(bodyOf(write('t', 0, 3)));
  });

  it('within one batch, write then tombstone deletes and tombstone then write keeps', async () => {
    await projection.applyBatch([write('a', 0, 1), write('b', 0, 2), tombstone('a', 0, 3), tombstone('b', 0, 4), write('b', 0, 5)]);
    expect(await projection.get('a')).toBeNull();
    expect(await stored('b')).toBe(bodyOf(write('b', 0, 5)));
  });

  it('a tombstone for a task never seen leaves a marker, so an older write arriving later stays out', async () => {
    await projection.applyBatch([tombstone('t', 0, 8)]);
    await projection.applyBatch([write('t', 0, 7)]);
    expect(await projection.get('t')).toBeNull();
  });
});

describe('on the Redis TC_REDIS_MODE names', () => {
  it(`runs on a ${REDIS_MODE === 'cluster' ? 'cluster, its tasks spread over every master' : 'standalone redis-server'}`, async () => {
    expect(harness.connection.client instanceof Cluster).toBe(REDIS_MODE === 'cluster');
    if (!(raw instanceof Cluster)) return;
    await projection.applyBatch(Array.from({ length: 60 }, (_, index) => write(`spread-${index}`, 0, index)));
    const keysPerMaster = await Promise.all(raw.nodes('master').map((node) => node.dbsize()));
    expect(keysPerMaster).toHaveLength(3);
    for (const count of keysPerMaster) expect(count).toBeGreaterThan(0);
  });
});

describe('latestPerTask', () => {
  it("keeps only each task's last event per partition, in order", () => {
    const events = [write('a', 0, 1), write('b', 0, 2), tombstone('a', 0, 3), write('a', 1, 1), write('b', 0, 4)];
    expect(latestPerTask(events)).toEqual([tombstone('a', 0, 3), write('b', 0, 4), write('a', 1, 1)]);
  });
});

describe('when Redis is unreachable', () => {
  it('rejects with the retryable ProjectionUnavailableError, then works again once Redis is back', async () => {
    await projection.applyBatch([write('t', 0, 1)]);
    await server.kill();
    const error = await projection.applyBatch([write('t', 0, 2)]).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ProjectionUnavailableError);
    expect((error as ProjectionUnavailableError).retryable).toBe(true);
    await server.start();
    for (let attempt = 0; ; attempt += 1) {
      try {
        await projection.applyBatch([write('t', 0, 2)]);
        break;
      } catch (caught) {
        if (!(caught instanceof ProjectionUnavailableError) || attempt > 100) throw caught;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    expect(await stored('t')).toBe(bodyOf(write('t', 0, 2)));
  });
});
