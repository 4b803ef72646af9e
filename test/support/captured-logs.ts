import { LoggerService } from '@nestjs/common';

export interface LogLine {
  readonly level: 'log' | 'error' | 'warn' | 'debug' | 'verbose' | 'fatal';
  readonly context: string;
  readonly message: string;
}

/** A Nest logger that keeps what the app logs, for suites that check what the service says. */
export class CapturedLogs implements LoggerService {
  readonly lines: LogLine[] = [];

  /** Echoes lines of these levels to stderr: errors, or the levels TC_TEST_ECHO lists (e.g. `error,warn,log`). */
  constructor(private readonly echo: readonly LogLine['level'][] = (process.env.TC_TEST_ECHO ?? 'error').split(',') as LogLine['level'][]) {}

  log(message: unknown, context?: string): void {
    this.keep('log', message, context);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.keep('error', message, rest[rest.length - 1]);
  }
  warn(message: unknown, context?: string): void {
    this.keep('warn', message, context);
  }
  debug(message: unknown, context?: string): void {
    this.keep('debug', message, context);
  }
  verbose(message: unknown, context?: string): void {
    this.keep('verbose', message, context);
  }
  fatal(message: unknown, context?: string): void {
    this.keep('fatal', message, context);
  }

  matching(pattern: RegExp): LogLine[] {
    return this.lines.filter((line) => pattern.test(line.message));
  }

  private keep(level: LogLine['level'], message: unknown, context: unknown): void {
    const line = { level, context: typeof context === 'string' ? context : '', message: String(message) };
    this.lines.push(line);
    if (this.echo.includes(level)) process.stderr.write(`[${level}] ${line.context}: ${line.message}\n`);
  }
}
