import { ProjectionConfig, RedisConfig } from '../config/app-config.js';
import { TaskCacheMetrics } from '../metrics/task-cache-metrics.js';
import { RedisConnection } from '../redis/redis-connection.js';
import { GenerationSource } from './generation-source.js';
import { ProjectionUnavailableError } from './projection-unavailable.error.js';
import { RedisTaskProjection } from './redis-task-projection.js';

/** A client whose HMGETs wait until the test answers them, recording what was issued when. */
class FakeClient {
  readonly issued: string[] = [];
  private readonly pending: { key: string; resolve: (reply: (Buffer | null)[]) => void; reject: (error: Error) => void }[] = [];

  defineCommand(): void {}

  hmgetBuffer(key: string, ...fields: string[]): Promise<(Buffer | null)[]> {
    expect(fields).toEqual(['v', 'p', 'o']);
    this.issued.push(key);
    return new Promise((resolve, reject) => this.pending.push({ key, resolve, reject }));
  }

  answer(stored: Record<string, string>): void {
    for (const { key, resolve } of this.pending.splice(0)) {
      const value = stored[key];
      resolve(value === undefined ? [null, null, null] : [Buffer.from(value), Buffer.from('3'), Buffer.from('42')]);
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

describe('RedisTaskProjection.getMany', () => {
  it('issues every HMGET before awaiting any (one auto-pipelined write), all in the generation read once', async () => {
    const { client, generations, tasks } = projection();
    const reading = tasks.getMany(['a', 'b', 'c']);
    // Synchronously, before any reply: every command is out.
    expect(client.issued).toEqual(['p:g:7:task:a', 'p:g:7:task:b', 'p:g:7:task:c']);
    expect(generations.reads).toBe(1);
    client.answer({ 'p:g:7:task:a': '{"taskId":"a"}', 'p:g:7:task:c': '{"taskId":"c"}' });
    const tasksRead = await reading;
    expect(tasksRead.map((task) => task && { value: task.value.toString(), version: task.version })).toEqual([
      { value: '{"taskId":"a"}', version: '3-42' },
      null,
      { value: '{"taskId":"c"}', version: '3-42' },
    ]);
  });

  it('issues nothing for no ids', async () => {
    const { client, tasks } = projection();
    expect(await tasks.getMany([])).toEqual([]);
    expect(client.issued).toEqual([]);
  });

  it('fails as unavailable, counted once, when Redis fails', async () => {
    const { client, metrics, tasks } = projection();
    const reading = tasks.getMany(['a', 'b']);
    client.fail(new Error('Connection is closed.'));
    await expect(reading).rejects.toBeInstanceOf(ProjectionUnavailableError);
    await settled();
    const { values } = await metrics.redisCommandErrors.get();
    expect(values).toEqual([expect.objectContaining({ labels: { operation: 'read' }, value: 1 })]);
  });

  it('fails as unavailable, issuing nothing, while the generation is not known', async () => {
    const { client, tasks } = projection(null);
    await expect(tasks.getMany(['a'])).rejects.toBeInstanceOf(ProjectionUnavailableError);
    expect(client.issued).toEqual([]);
  });
});
