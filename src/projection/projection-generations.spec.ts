import { jest } from '@jest/globals';
import { EventEmitter } from 'node:events';
import { Logger } from '@nestjs/common';
import { RedisConfig } from '../config/app-config.js';
import { RedisConnection } from '../redis/redis-connection.js';
import { ProjectionGenerations } from './projection-generations.js';
import { ProjectionUnavailableError } from './projection-unavailable.error.js';

/** A Redis holding the pointer hash, that can stop answering. */
class FakeRedis extends EventEmitter {
  status = 'ready';
  pointer: Record<string, string> = { current: '1' };
  heartbeats: string[] = [];
  down = false;
  hmget = async (_key: string, ...fields: string[]) => {
    if (this.down) throw new Error('Connection is closed.');
    return fields.map((field) => this.pointer[field] ?? null);
  };
  hsetnx = async () => 0;
  set = async (_key: string, value: string) => void this.heartbeats.push(value);
  zadd = async () => 1;
  zremrangebyscore = async () => 0;
  del = async () => 1;
  zrem = async () => 1;
  duplicate = () => Object.assign(new EventEmitter(), { connect: async () => undefined, subscribe: async () => 1, disconnect: () => undefined });
}

describe('ProjectionGenerations', () => {
  let redis: FakeRedis;
  let generations: ProjectionGenerations;

  beforeAll(() => Logger.overrideLogger(false));

  beforeEach(async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    redis = new FakeRedis();
    generations = new ProjectionGenerations({ client: redis } as unknown as RedisConnection, { keyPrefix: 'p:' } as RedisConfig);
    await generations.onModuleInit();
  });

  afterEach(async () => {
    await generations.onApplicationShutdown();
    jest.useRealTimers();
  });

  it('writes the newest generation first: building, current, previous', async () => {
    redis.pointer = { current: '4', building: '6', previous: '3' };
    await generations.refresh();
    expect(generations.writeGenerations()).toEqual([6, 4, 3]);
    expect(generations.currentGeneration()).toBe(4);
    expect(JSON.parse(redis.heartbeats.at(-1)!)).toMatchObject({ id: generations.instanceId, current: 4, writes: [6, 4, 3] });
  });

  it('refuses writes on a pointer read more than 5 s ago, and takes them again once it is read', async () => {
    redis.down = true;
    await jest.advanceTimersByTimeAsync(4500);
    expect(generations.writeGenerations()).toEqual([1]);
    await jest.advanceTimersByTimeAsync(1000);
    expect(() => generations.writeGenerations()).toThrow(ProjectionUnavailableError);
    // Reads go on from the generation last read for 8 s, then wait too: a rebuild may be deleting it.
    expect(generations.currentGeneration()).toBe(1);
    await jest.advanceTimersByTimeAsync(3000);
    expect(() => generations.currentGeneration()).toThrow(/last read \d+ ms ago; reads wait/);
    redis.down = false;
    await jest.advanceTimersByTimeAsync(1000);
    expect(generations.writeGenerations()).toEqual([1]);
    expect(generations.currentGeneration()).toBe(1);
  });

  it('dates a read of the pointer from when it began, not from when its answer came', async () => {
    let answer: (() => void) | undefined;
    const hmget = redis.hmget;
    redis.hmget = (key, ...fields) => new Promise((resolve) => (answer = () => resolve(hmget(key, ...fields))));
    await jest.advanceTimersByTimeAsync(4900); // reads began at 1 s, 2 s, ... none answered
    answer!();
    await jest.advanceTimersByTimeAsync(0);
    redis.hmget = hmget;
    redis.down = true;
    // The answer arrived at 4.9 s, but the read began at 1 s: more than 5 s ago at 6.1 s.
    await jest.advanceTimersByTimeAsync(1200);
    expect(() => generations.writeGenerations()).toThrow(ProjectionUnavailableError);
  });

  it('keeps its generations when the pointer holds something else than a generation', async () => {
    redis.pointer = { current: 'x' };
    await expect(generations.refresh()).rejects.toThrow(/holds no generation/);
    expect(generations.currentGeneration()).toBe(1);
  });
});
