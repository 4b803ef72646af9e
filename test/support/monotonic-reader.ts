import { Agent } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { httpGet } from './http-get.js';
import { sampleTaskBytes, updateNumberOf } from './sample-task.js';

export interface Regression {
  readonly atMs: number;
  readonly taskId: string;
  readonly base: string;
  /** The highest update this reader had seen of the task (or the floor), and the one it read now. */
  readonly from: number;
  readonly to: number;
}

/** Where a reader's n-th read goes: which instance, which task. */
export type ReadPlan = (read: number) => { readonly base: string; readonly taskId: string };

export interface MonotonicReaderOptions {
  readonly headers: Record<string, string>;
  /** The update every task is known to hold at least, before the first read. */
  readonly floor: number;
  readonly pauseMs?: number;
  readonly maxReads?: number;
  readonly maxMs?: number;
}

/**
 * One client reading tasks one at a time (the next read starts once the last one answered), from
 * one instance (sticky) or from several in turn (alternating), until `stop`, `maxReads` or `maxMs`.
 * Tasks carry `sampleTaskBytes`' update number; for each task the update this client reads must
 * never go below the highest it has read of it before, nor below `floor`: a lower one is a
 * regression. A read that answers other than 200 with the task's own bytes is a failed read.
 */
export class MonotonicReader {
  ok = 0;
  readonly failures: { atMs: number; what: string }[] = [];
  readonly regressions: Regression[] = [];
  /** When each read was sent (Date.now()). */
  readonly sentAt: number[] = [];
  private readonly seen = new Map<string, number>();
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 1 });
  private readonly started = Date.now();
  private running = true;
  private readonly loop: Promise<void>;

  constructor(
    readonly name: string,
    private readonly plan: ReadPlan,
    private readonly options: MonotonicReaderOptions,
  ) {
    this.loop = this.work();
  }

  get failed(): number {
    return this.failures.length;
  }

  /** Reads answered, failed or not. */
  get total(): number {
    return this.sentAt.length;
  }

  /** Reads sent at or after `time`. */
  readsSince(time: number): number {
    return this.sentAt.filter((at) => at >= time).length;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    this.agent.destroy();
  }

  private async work(): Promise<void> {
    const { pauseMs = 1, maxReads = 500_000, maxMs = 150_000 } = this.options;
    const deadline = this.started + maxMs;
    for (let read = 0; this.running && read < maxReads && Date.now() < deadline; read += 1) {
      const { base, taskId } = this.plan(read);
      const url = `${base}/tasks/${taskId}`;
      this.sentAt.push(Date.now());
      try {
        const answer = await httpGet(url, this.options.headers, this.agent);
        const bytes = Buffer.from(answer.body);
        const update = answer.status === 200 ? updateNumberOf(bytes) : -1;
        if (answer.status !== 200) {
          this.failures.push({ atMs: Date.now() - this.started, what: `${url}: ${answer.status} ${answer.body.slice(0, 200)}` });
        } else if (update < 0 || !bytes.equals(sampleTaskBytes(taskId, update))) {
          this.failures.push({ atMs: Date.now() - this.started, what: `${url}: not the bytes of ${taskId}: ${answer.body.slice(0, 100)}` });
        } else {
          this.ok += 1;
          const highest = this.seen.get(taskId) ?? this.options.floor;
          if (update < highest) this.regressions.push({ atMs: Date.now() - this.started, taskId, base, from: highest, to: update });
          else this.seen.set(taskId, update);
        }
      } catch (error) {
        this.failures.push({ atMs: Date.now() - this.started, what: `${url}: ${(error as NodeJS.ErrnoException).code ?? String(error)}` });
      }
      await sleep(pauseMs);
    }
  }
}
