import { Agent } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { httpGet } from './http-get.js';

/**
 * Steady reads by a few clients with keep-alive connections, as a load balancer's clients send
 * them, until `stop`, `maxReads` reads or `maxMs`, whichever comes first: of one URL, or of the
 * URL `url(n)` names for the n-th read. Every answer other than 200, every 200 that `check` finds
 * wrong (it returns what is wrong), and every transport error is a failed read, kept with when it
 * happened.
 */
export class ReadLoad {
  ok = 0;
  readonly failures: { atMs: number; what: string }[] = [];
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });
  private readonly started = Date.now();
  private running = true;
  private readonly workers: Promise<void>[];
  private readonly url: (read: number) => string;
  private readonly check: (url: string, body: string) => string | undefined;
  private sent = 0;
  private readonly maxReads: number;
  private readonly deadline: number;

  constructor(
    url: string | ((read: number) => string),
    private readonly headers: Record<string, string>,
    {
      clients = 4,
      pauseMs = 5,
      check = () => undefined,
      maxReads = 200_000,
      maxMs = 150_000,
    }: { clients?: number; pauseMs?: number; check?: (url: string, body: string) => string | undefined; maxReads?: number; maxMs?: number } = {},
  ) {
    this.maxReads = maxReads;
    this.deadline = this.started + maxMs;
    this.url = typeof url === 'string' ? () => url : url;
    this.check = check;
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
    while (this.running && this.sent < this.maxReads && Date.now() < this.deadline) {
      const url = this.url(this.sent++);
      try {
        const answer = await httpGet(url, this.headers, this.agent);
        const wrong = answer.status === 200 ? this.check(url, answer.body) : `${answer.status} ${answer.body.slice(0, 200)}`;
        if (wrong === undefined) this.ok += 1;
        else this.failures.push({ atMs: Date.now() - this.started, what: `${url}: ${wrong}` });
      } catch (error) {
        this.failures.push({ atMs: Date.now() - this.started, what: `${url}: ${(error as NodeJS.ErrnoException).code ?? String(error)}` });
      }
      await sleep(pauseMs);
    }
  }
}
