import { sleep } from '../common/sleep.js';

/**
 * At most `perSecond` takes a second, in bursts of at most that many (a token bucket), handed out
 * in the order they were asked for.
 */
export class RateLimiter {
  private tokens: number;
  private refilledAt = performance.now();
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly perSecond: number,
    private readonly signal?: AbortSignal,
  ) {
    this.tokens = perSecond;
  }

  /** Resolves when a request may be made, after every earlier take; rejects once `signal` aborts. */
  take(): Promise<void> {
    const turn = this.queue.then(() => this.next());
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  private async next(): Promise<void> {
    for (;;) {
      const now = performance.now();
      this.tokens = Math.min(this.perSecond, this.tokens + ((now - this.refilledAt) / 1000) * this.perSecond);
      this.refilledAt = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await sleep(Math.ceil(((1 - this.tokens) / this.perSecond) * 1000), this.signal);
    }
  }
}
