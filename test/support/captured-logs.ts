import { LoggerService } from '@nestjs/common';

export interface LogLine {
  readonly level: 'log' | 'error' | 'warn' | 'debug' | 'verbose' | 'fatal';
  readonly context: string;
  /** The text of the line. */
  readonly message: string;
  /** The fields a line was logged with (`logger.warn({ topic, partition, offset }, text)`): what pino writes beside its text. */
  readonly fields?: Readonly<Record<string, unknown>>;
}

/** A Nest logger that keeps what the app logs, for suites that check what the service says. */
export class CapturedLogs implements LoggerService {
  readonly lines: LogLine[] = [];

  /** Echoes lines of these levels to stderr: errors, or the levels TC_TEST_ECHO lists (e.g. `error,warn,log`). */
  constructor(private readonly echo: readonly LogLine['level'][] = (process.env.TC_TEST_ECHO ?? 'error').split(',') as LogLine['level'][]) {}

  log(message: unknown, ...params: unknown[]): void {
    this.keep('log', message, params);
  }
  error(message: unknown, ...params: unknown[]): void {
    this.keep('error', message, params);
  }
  warn(message: unknown, ...params: unknown[]): void {
    this.keep('warn', message, params);
  }
  debug(message: unknown, ...params: unknown[]): void {
    this.keep('debug', message, params);
  }
  verbose(message: unknown, ...params: unknown[]): void {
    this.keep('verbose', message, params);
  }
  fatal(message: unknown, ...params: unknown[]): void {
    this.keep('fatal', message, params);
  }

  matching(pattern: RegExp): LogLine[] {
    return this.lines.filter((line) => pattern.test(line.message));
  }

  /**
   * Nest's Logger calls with the message first, then its own parameters (an error's stack), then
   * the context; or, as nestjs-pino reads it, the fields first, then the text, then the context.
   */
  private keep(level: LogLine['level'], first: unknown, params: unknown[]): void {
    const last = params[params.length - 1];
    const context = params.length > 0 && typeof last === 'string' ? last : '';
    const fieldsFirst = typeof first === 'object' && first !== null;
    const line: LogLine = fieldsFirst
      ? first instanceof Error
        ? { level, context, message: first.message, fields: { err: first } }
        : { level, context, message: params.length > 1 ? String(params[0]) : '', fields: first as Record<string, unknown> }
      : { level, context, message: String(first) };
    this.lines.push(line);
    if (this.echo.includes(level)) {
      const { err: _err, ...fields } = line.fields ?? {};
      process.stderr.write(`[${level}] ${line.context}: ${line.message}${Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : ''}\n`);
    }
  }
}
