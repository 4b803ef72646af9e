/**
 * Capped exponential backoff with jitter: initial, 2x, 4x ... up to the cap. The jitter (the wait
 * is drawn from the upper half of each step) keeps instances that failed together from retrying
 * in lockstep when Redis comes back.
 */
export class RetryBackoff {
  private attempt = 0;

  constructor(
    private readonly initialMs: number,
    private readonly maxMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  /** The wait before the next attempt. */
  next(): number {
    const ceiling = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt += 1;
    return Math.round(ceiling / 2 + (ceiling / 2) * this.random());
  }

  /** Starts over from the initial wait, after a success. */
  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
