/** A turn to log, with what was held back since the last one. */
export interface LogTurn {
  /** Calls refused since the last turn. */
  readonly skipped: number;
  /** Time since the last turn; undefined for the first. */
  readonly sinceLastMs: number | undefined;
}

/**
 * "Log at most once per interval": the first call gets a turn, later ones only once `intervalMs`
 * has passed since the last turn; the ones in between are counted. The one implementation of it.
 */
export class LogThrottle {
  private lastTurnAt: number | undefined;
  private skipped = 0;

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** A turn to log now, or undefined (counted as skipped). */
  take(): LogTurn | undefined {
    const at = this.now();
    if (this.lastTurnAt !== undefined && at - this.lastTurnAt < this.intervalMs) {
      this.skipped += 1;
      return undefined;
    }
    const turn = { skipped: this.skipped, sinceLastMs: this.lastTurnAt === undefined ? undefined : at - this.lastTurnAt };
    this.lastTurnAt = at;
    this.skipped = 0;
    return turn;
  }
}
