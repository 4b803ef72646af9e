import { Agent } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { httpGet } from './http-get.js';

/**
 * Steady reads of one URL by a few clients with keep-alive connections, as a load balancer's
 * clients send them, until `stop`. Every answer other than 200, and every transport error,
 * is a failed read, kept with when it happened.
 */
export class ReadLoad {
  ok = 0;
  readonly failures: { atMs: number; what: string }[] = [];
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });
  private readonly started = Date.now();
  private running = true;
  private readonly workers: Promise<void>[];

  constructor(
    private readonly url: string,
    private readonly headers: Record<string, string>,
    { clients = 4, pauseMs = 5 }: { clients?: number; pauseMs?: number } = {},
  ) {
    this.workers = Array.from({ length: clients }, () => this.work(pauseMs));
  }

  get failed(): number {
    return this.failures.length;
  }

  /** Reads answered so far, failed or not. */
  get total(): number {
    return this.ok + this.failed;
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.workers);
    this.agent.destroy();
  }

  private async work(pauseMs: number): Promise<void> {
    while (this.running) {
      try {
        const answer = await httpGet(this.url, this.headers, this.agent);
        if (answer.status === 200) this.ok += 1;
        else this.failures.push({ atMs: Date.now() - this.started, what: `${answer.status} ${answer.body.slice(0, 200)}` });
      } catch (error) {
        this.failures.push({ atMs: Date.now() - this.started, what: (error as NodeJS.ErrnoException).code ?? String(error) });
      }
      await sleep(pauseMs);
    }
  }
}
