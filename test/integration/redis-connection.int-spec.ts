import { Logger } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster } from 'ioredis';
import { RedisConnection } from '../../src/redis/redis-connection.js';
import { PrivateRedisServer, REDIS_MODE, startPrivateRedis } from '../support/test-redis.js';

/**
 * The service's Redis connection, closed as the app's shutdown closes it, on a real Redis (a private
 * redis-server, or a private cluster of six with TC_REDIS_MODE=cluster): nothing of it may stay
 * behind, or a process that closes it in place (a test, an embedding) never ends.
 */

let server: PrivateRedisServer;

/** Timers set in this process that keep it alive. */
const timersSet = () => process.getActiveResourcesInfo().filter((type) => type === 'Timeout').length;

beforeAll(async () => {
  Logger.overrideLogger(['error']);
  server = await startPrivateRedis();
});

afterAll(async () => {
  await server?.destroy();
});

it('leaves no timer behind once closed, also when closed while the slot map is being asked for', async () => {
  await sleep(1000); // what the setup set has run out
  const before = timersSet();
  for (let round = 0; round < 3; round += 1) {
    const connection = new RedisConnection({ ...server.config, keyPrefix: 'connection:', commandTimeoutMs: 1000 });
    await connection.onModuleInit();
    expect(connection.client.status).toBe('ready');
    const client = connection.client;
    if (client instanceof Cluster) {
      // The periodic ask for the slot map, caught as it starts: the close lands while its answer
      // is on the way, the moment ioredis's own refresh timer re-armed itself at and ran for ever.
      const started = new Promise<void>((resolve) => {
        const refresh = client.refreshSlotsCache.bind(client);
        client.refreshSlotsCache = (callback) => {
          resolve();
          refresh(callback);
        };
      });
      await started;
    }
    await connection.onApplicationShutdown();
  }
  // Longer than the refresh period: a timer that re-armed itself would be set again by now.
  await sleep(2500);
  expect(timersSet()).toBeLessThanOrEqual(before);
});

(REDIS_MODE === 'cluster' ? it : it.skip)('follows the slot map while open: a refresh every second', async () => {
  const connection = new RedisConnection({ ...server.config, keyPrefix: 'connection:', commandTimeoutMs: 1000 });
  await connection.onModuleInit();
  const client = connection.client as Cluster;
  let refreshes = 0;
  client.on('refresh', () => (refreshes += 1));
  await sleep(3500);
  await connection.onApplicationShutdown();
  expect(refreshes).toBeGreaterThanOrEqual(2);
});
