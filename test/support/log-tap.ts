import type { DestinationStream } from 'pino';

/**
 * A log destination for an app built in the test's own process (`createApp(config, { logTo })`):
 * the lines a capture is open for are kept, the others pass on to stdout, where the app writes
 * them otherwise. nestjs-pino keeps the destination of the first app a process creates: give the
 * tap to every app of a suite.
 */
export class LogTap implements DestinationStream {
  private kept: string[] | undefined;

  write(line: string): void {
    if (this.kept) this.kept.push(line);
    else process.stdout.write(line);
  }

  /** Keeps what the app logs from now until `stop()`. */
  capture(): { lines: () => string[]; stop: () => void } {
    const kept: string[] = [];
    this.kept = kept;
    return {
      lines: () => kept.join('').split('\n').filter((line) => line.length > 0),
      stop: () => {
        if (this.kept === kept) this.kept = undefined;
      },
    };
  }
}
