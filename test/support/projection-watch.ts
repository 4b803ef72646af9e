import { setTimeout as sleep } from 'node:timers/promises';
import { ProjectedTask, ProjectionReader } from './projection-reader.js';

/**
 * Reads the given tasks over and over while a suite runs, and records every time one moves
 * backwards: a lower offset on the same partition, other bytes for the same version, or a task
 * that disappears. Reads that fail (a suite may take Redis down) are skipped.
 */
export class ProjectionWatch {
  readonly regressions: string[] = [];
  polls = 0;
  private readonly last = new Map<string, ProjectedTask>();
  private running = true;
  private readonly loop: Promise<void>;

  constructor(
    private readonly reader: ProjectionReader,
    private readonly taskIds: readonly string[],
    intervalMs = 25,
  ) {
    this.loop = this.run(intervalMs);
  }

  /** Stops watching after one last complete read. */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await this.poll().catch(() => undefined);
  }

  private async run(intervalMs: number): Promise<void> {
    while (this.running) {
      await this.poll().catch(() => undefined);
      await sleep(intervalMs);
    }
  }

  private async poll(): Promise<void> {
    const tasks = await this.reader.read(this.taskIds);
    this.polls += 1;
    for (const taskId of this.taskIds) {
      const now = tasks.get(taskId);
      const before = this.last.get(taskId);
      if (before && !now) this.regressions.push(`${taskId} disappeared (was ${before.partition}-${before.offset})`);
      if (before && now && before.partition === now.partition) {
        if (now.offset < before.offset) this.regressions.push(`${taskId} went back from ${before.partition}-${before.offset} to ${now.partition}-${now.offset}`);
        const sameBytes = now.value === null ? before.value === null : before.value !== null && now.value.equals(before.value);
        if (now.offset === before.offset && !sameBytes) this.regressions.push(`${taskId} changed bytes at version ${now.partition}-${now.offset}`);
      }
      if (now) this.last.set(taskId, now);
    }
  }
}
