import { ProjectionConfig, RedisConfig } from '../config/app-config.js';
import { TaskCacheMetrics } from '../metrics/task-cache-metrics.js';
import { RedisConnection } from '../redis/redis-connection.js';
import { GenerationSource } from './generation-source.js';
import { ProjectionUnavailableError } from './projection-unavailable.error.js';
import { RedisTaskProjection } from './redis-task-projection.js';
import { BatchReadTask, UNPROCESSED } from './task-projection.js';

type Reply = (Buffer | number | null)[];

/** A client whose reads wait until the test answers them, recording what was issued when. */
class FakeClient {
  /** Each command as issued: `read <key> <allowance>` (read-task-within.lua) or `hmget <key>`. */
  readonly issued: string[] = [];
  private readonly pending: { key: string; allowance?: number; resolve: (reply: Reply) => void; reject: (error: Error) => void }[] = [];

  defineCommand(): void {}

  readTaskWithinBuffer(key: string, allowance: number): Promise<Reply> {
    this.issued.push(`read ${key} ${allowance}`);
    return new Promise((resolve, reject) => this.pending.push({ key, allowance, resolve, reject }));
  }

  hmgetBuffer(key: string, ...fields: string[]): Promise<Reply> {
    expect(fields).toEqual(['v', 'p', 'o']);
    this.issued.push(`hmget ${key}`);
    return new Promise((resolve, reject) => this.pending.push({ key, resolve, reject }));
  }

  /** Answers what is pending as Redis would, from `stored` (key to value; version 3-42). */
  answer(stored: Record<string, string>): void {
    for (const { key, allowance, resolve } of this.pending.splice(0)) {
      const value = stored[key];
      if (value === undefined) resolve([null, null, null]);
      else if (allowance !== undefined && Buffer.byteLength(value) > allowance) resolve([Buffer.byteLength(value), Buffer.from('3'), Buffer.from('42')]);
      else resolve([Buffer.from(value), Buffer.from('3'), Buffer.from('42')]);
    }
  }

  fail(error: Error): void {
    for (const { reject } of this.pending.splice(0)) reject(error);
  }
}

class FakeGenerations extends GenerationSource {
  reads = 0;
  constructor(private readonly generation: number | null) {
    super();
  }
  currentGeneration(): number {
    this.reads++;
    if (this.generation === null) throw new ProjectionUnavailableError(new Error('generation not known'));
    return this.generation;
  }
  writeGenerations(): number[] {
    return [this.currentGeneration()];
  }
}

function projection(generation: number | null = 7) {
  const client = new FakeClient();
  const generations = new FakeGenerations(generation);
  const metrics = new TaskCacheMetrics({});
  const redis = { client } as unknown as RedisConnection;
  const tasks = new RedisTaskProjection(redis, generations, { keyPrefix: 'p:' } as RedisConfig, { tombstoneTtlSeconds: 60 } as ProjectionConfig, metrics);
  return { client, generations, metrics, tasks };
}

const settled = () => new Promise((resolve) => setImmediate(resolve));

const key = (taskId: string) => `p:g:7:task:${taskId}`;
/** A value of `bytes` bytes. */
const sized = (bytes: number) => 'x'.repeat(bytes);
/** What a batch read answered, values as strings. */
const shown = (tasks: BatchReadTask[]) => tasks.map((task) => (task === null || task === UNPROCESSED ? task : `${task.value.toString().length}@${task.version}`));

describe('RedisTaskProjection.getMany', () => {
  it('issues every read before awaiting any (one auto-pipelined write), all in the generation read once, each allowed its share of the budget', async () => {
    const { client, generations, tasks } = projection();
    const reading = tasks.getMany(['a', 'b', 'c'], 100);
    // Synchronously, before any reply: every command is out.
    expect(client.issued).toEqual([`read ${key('a')} 33`, `read ${key('b')} 33`, `read ${key('c')} 33`]);
    expect(generations.reads).toBe(1);
    client.answer({ [key('a')]: '{"taskId":"a"}', [key('c')]: sized(33) });
    const tasksRead = await reading;
    expect(tasksRead.map((task) => task && task !== UNPROCESSED && { value: task.value.toString(), version: task.version })).toEqual([
      { value: '{"taskId":"a"}', version: '3-42' },
      null,
      { value: sized(33), version: '3-42' },
    ]);
    // Every value within its share: one round trip, no HMGET.
    expect(client.issued).toHaveLength(3);
  });

  it('fetches the values over their share in a second round trip, in request order while the budget lasts; the rest are unprocessed', async () => {
    const { client, generations, tasks } = projection();
    // Budget 120 over 6 ids: 20 each. a and d fit (30 spent); b (60) brings it to 90; c (50)
    // would pass 120, so c and every later large one (g, though it would fit) are unprocessed.
    const stored = { [key('a')]: sized(10), [key('b')]: sized(60), [key('c')]: sized(50), [key('g')]: sized(30), [key('d')]: sized(20) };
    const reading = tasks.getMany(['a', 'b', 'c', 'g', 'd', 'e'], 120);
    client.answer(stored);
    await settled();
    expect(client.issued.slice(6)).toEqual([`hmget ${key('b')}`]);
    client.answer(stored);
    expect(shown(await reading)).toEqual(['10@3-42', '60@3-42', UNPROCESSED, UNPROCESSED, '20@3-42', null]);
    expect(generations.reads).toBe(1);
  });

  it('issues the second round trip whole before awaiting it', async () => {
    const { client, tasks } = projection();
    const stored = { [key('a')]: sized(40), [key('b')]: sized(40), [key('c')]: sized(40) };
    const reading = tasks.getMany(['a', 'b', 'c'], 100);
    client.answer(stored);
    await settled();
    expect(client.issued.slice(3)).toEqual([`hmget ${key('a')}`, `hmget ${key('b')}`]);
    client.answer(stored);
    expect(shown(await reading)).toEqual(['40@3-42', '40@3-42', UNPROCESSED]);
  });

  it('always answers the first task found, even one over the whole budget', async () => {
    const { client, tasks } = projection();
    const stored = { [key('big')]: sized(150), [key('next')]: sized(40) };
    const reading = tasks.getMany(['none', 'big', 'next'], 100);
    client.answer(stored);
    await settled();
    expect(client.issued.slice(3)).toEqual([`hmget ${key('big')}`]);
    client.answer(stored);
    expect(shown(await reading)).toEqual([null, '150@3-42', UNPROCESSED]);
  });

  it('answers a value changed between the round trips as it is now if it fits, and never past the budget', async () => {
    const { client, tasks } = projection();
    const reading = tasks.getMany(['a', 'b', 'c', 'd'], 100);
    client.answer({ [key('a')]: sized(10), [key('b')]: sized(30), [key('c')]: sized(30), [key('d')]: sized(26) });
    await settled();
    expect(client.issued.slice(4)).toEqual([`hmget ${key('b')}`, `hmget ${key('c')}`, `hmget ${key('d')}`]);
    // Meanwhile b was deleted, c grew past what is left, d shrank: c and what follows it stay unprocessed.
    client.answer({ [key('c')]: sized(95), [key('d')]: sized(5) });
    expect(shown(await reading)).toEqual(['10@3-42', null, UNPROCESSED, UNPROCESSED]);
  });

  it('issues nothing for no ids', async () => {
    const { client, tasks } = projection();
    expect(await tasks.getMany([], 100)).toEqual([]);
    expect(client.issued).toEqual([]);
  });

  it.each([1, 2])('fails as unavailable, counted once, when Redis fails in round trip %i', async (failing) => {
    const { client, metrics, tasks } = projection();
    const reading = tasks.getMany(['a', 'b'], 100);
    if (failing === 2) {
      client.answer({ [key('a')]: sized(80), [key('b')]: sized(10) });
      await settled();
      expect(client.issued).toHaveLength(3);
    }
    client.fail(new Error('Connection is closed.'));
    await expect(reading).rejects.toBeInstanceOf(ProjectionUnavailableError);
    await settled();
    const { values } = await metrics.redisCommandErrors.get();
    expect(values).toEqual([expect.objectContaining({ labels: { operation: 'read' }, value: 1 })]);
  });

  it('fails as unavailable, issuing nothing, while the generation is not known', async () => {
    const { client, tasks } = projection(null);
    await expect(tasks.getMany(['a'], 100)).rejects.toBeInstanceOf(ProjectionUnavailableError);
    expect(client.issued).toEqual([]);
  });
});
