import { Logger } from '@nestjs/common';
import { hostname } from 'node:os';
import { TaskEvent } from '../../src/projection/task-event.js';
import { GenerationCleaner } from '../../src/rebuild/generation-cleaner.js';
import { InstanceRegistry } from '../../src/rebuild/instance-registry.js';
import { LockOwner, RebuildPointer } from '../../src/rebuild/rebuild-pointer.js';
import { RebuildState } from '../../src/rebuild/rebuild-state.js';
import { eventually } from '../support/eventually.js';
import { ProjectionHarness } from '../support/projection-harness.js';
import { PrivateRedisServer, startPrivateRedis } from '../support/test-redis.js';

/**
 * The rebuild's protocol on a real Redis (a private redis-server, or a private cluster of six with
 * TC_REDIS_MODE=cluster): the lock and every pointer step of rebuild-pointer.lua, an instance
 * following the pointer (pub/sub, heartbeat, which generations it writes and in which order), and
 * deleting a generation with SCAN and UNLINK on every master.
 */

let server: PrivateRedisServer;
let prefixes = 0;

const owner = (command: string, pid = process.pid): LockOwner => ({ host: hostname(), pid, startedAt: new Date().toISOString(), command });
const state = (generation: number): RebuildState => ({ generation, phase: 'flipped', group: 'g', startedAt: 1, updatedAt: 2 });
const event = (taskId: string, offset: number): TaskEvent => ({ taskId, partition: 0, offset: String(offset), timestamp: 1000 + offset, value: Buffer.from(`{"taskId":"${taskId}","o":${offset}}`) });

/** An instance (the projection harness) and the rebuild's side, on a key prefix of their own. */
async function open(): Promise<{ instance: ProjectionHarness; pointer: RebuildPointer; registry: InstanceRegistry; cleaner: GenerationCleaner }> {
  const instance = await ProjectionHarness.open(server.config, `rebuild-pointer-${(prefixes += 1)}:`);
  const { connection, config } = instance;
  return { instance, pointer: new RebuildPointer(connection, config), registry: new InstanceRegistry(connection, config), cleaner: new GenerationCleaner(connection, config) };
}

beforeAll(async () => {
  Logger.overrideLogger(['error']);
  server = await startPrivateRedis();
});

afterAll(async () => {
  await server?.destroy();
});

describe('the rebuild lock', () => {
  it('is held by one process at a time; a second claim learns who holds it and for how long', async () => {
    const { instance, pointer } = await open();
    try {
      expect(await pointer.claim('first', owner('rebuild start'), 15_000)).toEqual({ claimed: true });
      const refused = await pointer.claim('second', owner('rebuild start', 4242), 15_000);
      expect(refused).toMatchObject({ claimed: false, owner: { command: 'rebuild start', pid: process.pid } });
      expect(refused.claimed === false && refused.expiresInMs).toBeGreaterThan(14_000);
      await pointer.release('second'); // not the holder: nothing happens
      expect((await pointer.read()).lock?.owner.pid).toBe(process.pid);
      await pointer.release('first');
      expect((await pointer.read()).lock).toBeUndefined();
      expect(await pointer.claim('second', owner('rebuild start'), 15_000)).toEqual({ claimed: true });
    } finally {
      await instance.close();
    }
  });

  it('can be taken once it expires, and taken over only from a named holder that stopped renewing it', async () => {
    const { instance, pointer } = await open();
    try {
      await pointer.claim('dead', owner('rebuild start'), 60_000);
      // Just renewed (60 s left): a holder believed dead that still renews keeps it.
      expect(await pointer.claim('next', owner('rebuild start'), 60_000, { token: 'dead', belowMs: 50_000 })).toMatchObject({ claimed: false });
      // Missed its renewals (less than 61 s left): taken over, but only from that very holder.
      expect(await pointer.claim('next', owner('rebuild start'), 60_000, { token: 'someone-else', belowMs: 61_000 })).toMatchObject({ claimed: false });
      expect(await pointer.claim('next', owner('rebuild start'), 60_000, { token: 'dead', belowMs: 61_000 })).toEqual({ claimed: true });
      expect(await pointer.renew('dead', 60_000)).toMatchObject({ held: false });
      // A lock its holder stopped renewing is free once its TTL has passed.
      await pointer.claim('next', owner('rebuild start'), 30);
      await new Promise((resolve) => setTimeout(resolve, 60));
      expect(await pointer.claim('later', owner('rebuild start'), 60_000)).toEqual({ claimed: true });
    } finally {
      await instance.close();
    }
  });

  it('renews while held, passes on an abort request, and says when it was lost', async () => {
    const { instance, pointer } = await open();
    try {
      await pointer.claim('holder', owner('rebuild start'), 15_000);
      expect(await pointer.renew('holder', 15_000)).toEqual({ held: true, abortRequested: false });
      await pointer.requestAbort();
      // An abort concerns a building generation: a rebuild cleaning up after its flip goes on.
      expect(await pointer.renew('holder', 15_000)).toEqual({ held: true, abortRequested: false });
      await pointer.announce('holder');
      expect(await pointer.renew('holder', 15_000)).toEqual({ held: true, abortRequested: true });
      await pointer.release('holder');
      expect(await pointer.renew('holder', 15_000)).toEqual({ held: false, owner: undefined });
      // The abort request was for that holder; the next one starts without it.
      await pointer.claim('next', owner('rebuild abort'), 15_000);
      expect(await pointer.renew('next', 15_000)).toEqual({ held: true, abortRequested: false });
    } finally {
      await instance.close();
    }
  });

  it('guards every pointer step: without the lock nothing changes', async () => {
    const { instance, pointer } = await open();
    try {
      await pointer.claim('holder', owner('rebuild start'), 15_000);
      await expect(pointer.announce('intruder')).rejects.toThrow(/LOCKLOST/);
      await expect(pointer.flip('intruder', 2, state(2))).rejects.toThrow(/LOCKLOST/);
      await expect(pointer.writeState('intruder', state(2))).rejects.toThrow(/LOCKLOST/);
      expect(await pointer.read()).toMatchObject({ current: 1, building: undefined });
    } finally {
      await instance.close();
    }
  });
});

describe('the generation pointer through a rebuild', () => {
  it('fills a Redis no instance has used: generation 1 is current, the rebuild builds 2 and flips to it', async () => {
    const { instance, pointer } = await open();
    const client = instance.connection.client;
    try {
      await instance.generations.onApplicationShutdown();
      await client.del(instance.keys.generationPointer);
      await pointer.claim('holder', owner('rebuild start'), 15_000);
      expect(await pointer.announce('holder')).toBe(2);
      expect(await pointer.read()).toMatchObject({ current: 1, building: 2 });
      expect(await pointer.flip('holder', 2, state(2))).toMatchObject({ left: 1 });
      await expect(pointer.flip('holder', 2, state(2))).rejects.toThrow(/NOTBUILDING/);
    } finally {
      await instance.close();
    }
  });


  it('announces a new generation, never reusing one, and flips reads to it atomically', async () => {
    const { instance, pointer } = await open();
    try {
      await pointer.claim('holder', owner('rebuild start'), 15_000);
      expect(await pointer.announce('holder')).toBe(2);
      expect(await pointer.announce('holder')).toBe(2); // a resumed rebuild finds it
      await pointer.drop('holder', 2);
      expect(await pointer.announce('holder')).toBe(3); // 2 was aborted: its leftovers are never reused
      await expect(pointer.flip('holder', 2, state(2))).rejects.toThrow(/NOTBUILDING/);
      expect(await pointer.flip('holder', 3, state(3))).toMatchObject({ left: 1 });
      expect(await pointer.read()).toMatchObject({ current: 3, building: undefined, previous: 1, rebuild: { generation: 3, phase: 'flipped' } });
      await pointer.retire('holder', 1);
      expect(await pointer.read()).toMatchObject({ current: 3, previous: undefined });
    } finally {
      await instance.close();
    }
  });

  it('an instance follows each step: it writes the newest generation first, and says so in its heartbeat', async () => {
    const { instance, pointer, registry } = await open();
    const { generations, projection, keys, connection } = instance;
    const writes = async () => (await registry.live()).find((beat) => beat.id === generations.instanceId)?.writes;
    try {
      expect(generations.writeGenerations()).toEqual([1]);
      expect(await writes()).toEqual([1]);
      await pointer.claim('holder', owner('rebuild start'), 15_000);
      await pointer.announce('holder');
      await pointer.announceChange();
      await eventually('the instance to write generation 2', async () => (await writes())?.join() === '2,1');
      expect(generations.writeGenerations()).toEqual([2, 1]);
      await projection.applyBatch([event('task-a', 5)]);
      const client = connection.client;
      expect(await client.hget(keys.task(1, 'task-a'), 'o')).toBe('5');
      expect(await client.hget(keys.task(2, 'task-a'), 'o')).toBe('5');

      await pointer.flip('holder', 2, state(2));
      await pointer.announceChange();
      await eventually('the instance to read generation 2', async () => (await registry.live()).find((beat) => beat.id === generations.instanceId)?.current === 2);
      expect(generations.currentGeneration()).toBe(2);
      expect(generations.writeGenerations()).toEqual([2, 1]); // the generation left stays written until retired
      expect(await projection.get('task-a')).toMatchObject({ version: '0-5' });

      await pointer.retire('holder', 1);
      await pointer.announceChange();
      await eventually('the instance to stop writing generation 1', async () => (await writes())?.join() === '2');
      await projection.applyBatch([event('task-a', 6)]);
      expect(await client.hget(keys.task(1, 'task-a'), 'o')).toBe('5');
      expect(await client.hget(keys.task(2, 'task-a'), 'o')).toBe('6');
    } finally {
      await instance.close();
    }
    // A stopped instance stops counting at once.
    const { instance: other, registry: again } = await open();
    try {
      expect((await again.live()).map((beat) => beat.id)).not.toContain(generations.instanceId);
    } finally {
      await other.close();
    }
  });

  it('deletes one generation with SCAN and UNLINK, on every master, and nothing else', async () => {
    const { instance, cleaner } = await open();
    const { keys, connection } = instance;
    try {
      const client = connection.client;
      const tasks = Array.from({ length: 2500 }, (_, index) => `task-${index}`);
      // Written 250 tasks a round trip: 5,000 writes in one could outlast the 1 s command timeout on a loaded machine.
      for (let start = 0; start < tasks.length; start += 250) {
        await Promise.all(tasks.slice(start, start + 250).flatMap((taskId) => [client.hset(keys.task(7, taskId), 'v', 'x'), client.hset(keys.task(8, taskId), 'v', 'y')]));
      }
      expect(await cleaner.countGeneration(7)).toBe(2500);
      let batches = 0;
      expect(await cleaner.deleteGeneration(7, new AbortController().signal, () => (batches += 1))).toBe(2500);
      expect(batches).toBeGreaterThan(1);
      expect(await cleaner.countGeneration(7)).toBe(0);
      expect(await cleaner.countGeneration(8)).toBe(2500);
    } finally {
      await instance.close();
    }
  });
});
