import { Logger } from '@nestjs/common';

const TTY_INTERVAL_MS = 500;
const LOG_INTERVAL_MS = 10_000;

/** A replay's progress at one moment. */
export interface ProgressFigures {
  readonly replayed: number;
  readonly total: number;
  readonly percent: number;
  /** Over the last few seconds. */
  readonly eventsPerSecond: number;
  readonly etaSeconds: number | undefined;
}

/**
 * Progress of a replay: figures from the offsets replayed so far, shown as one line rewritten in
 * place on a terminal, and as a log line every 10 s elsewhere.
 */
export class RebuildProgress {
  private readonly logger = new Logger('Rebuild');
  private readonly samples: { at: number; replayed: number }[] = [];
  private shownAt = Number.NEGATIVE_INFINITY;
  private onTerminal = false;
  private shownLast = false;

  constructor(
    private readonly generation: number,
    private readonly total: number,
    private readonly terminal: NodeJS.WriteStream | undefined,
  ) {}

  update(replayed: number, now = Date.now()): ProgressFigures {
    this.samples.push({ at: now, replayed });
    while (this.samples.length > 2 && now - this.samples[0].at > 10_000) this.samples.shift();
    const first = this.samples[0];
    const seconds = (now - first.at) / 1000;
    const eventsPerSecond = seconds > 0 ? Math.round((replayed - first.replayed) / seconds) : 0;
    const left = Math.max(0, this.total - replayed);
    const figures: ProgressFigures = {
      replayed,
      total: this.total,
      percent: this.total === 0 ? 100 : Math.min(100, Math.floor((replayed / this.total) * 1000) / 10),
      eventsPerSecond,
      etaSeconds: eventsPerSecond > 0 ? Math.ceil(left / eventsPerSecond) : undefined,
    };
    this.show(figures, now);
    return figures;
  }

  /** Ends the line on a terminal. */
  done(): void {
    if (this.onTerminal) this.terminal?.write('\n');
    this.onTerminal = false;
  }

  private show(figures: ProgressFigures, now: number): void {
    // The last line is shown at once, and once: the replay may sit at 100% while its group commits.
    const last = figures.replayed >= figures.total;
    if (last && this.shownLast) return;
    this.shownLast = last;
    const line = describe(this.generation, figures);
    if (this.terminal) {
      if (now - this.shownAt < TTY_INTERVAL_MS && !last) return;
      this.terminal.write(`\r\x1b[K${line}`);
      this.onTerminal = true;
    } else {
      if (now - this.shownAt < LOG_INTERVAL_MS && !last) return;
      this.logger.log(line);
    }
    this.shownAt = now;
  }
}

export function describe(generation: number, { replayed, total, percent, eventsPerSecond, etaSeconds }: ProgressFigures): string {
  const eta = etaSeconds === undefined ? 'ETA unknown' : `ETA ${formatDuration(etaSeconds)}`;
  return `replaying into generation ${generation}: ${percent.toFixed(1)}% (${replayed.toLocaleString('en-US')} of ${total.toLocaleString('en-US')} events), ${eventsPerSecond.toLocaleString('en-US')} events/s, ${eta}`;
}

function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  return minutes < 60 ? `${minutes} min ${seconds % 60} s` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}
