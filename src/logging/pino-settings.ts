import { isatty } from 'node:tty';
import { pino, type DestinationStream, type Level, type LoggerOptions } from 'pino';
import type { Options as PinoHttpOptions } from 'pino-http';
import { isColorSupported, prettyFactory } from 'pino-pretty';
import { LogConfig, LogLevelName } from '../config/app-config.js';
import { REDACTED, redactSecrets } from './redact-secrets.js';

/** LOG_LEVEL's names (Nest's) as pino's. */
const PINO_LEVELS: Readonly<Record<LogLevelName, Level>> = { error: 'error', warn: 'warn', log: 'info', debug: 'debug', verbose: 'trace' };

export function pinoLevel(level: LogLevelName): Level {
  return PINO_LEVELS[level];
}

/**
 * pino-http binds the request to a child logger (and the response), and a child's bindings do not
 * pass through `formatters.log`: redacted by path. With `quietReqLogger` that child writes nothing.
 */
const CHILD_BINDING_PATHS = ['authorization', 'x-authorization', 'cookie', 'set-cookie'].flatMap((header) => [`req.headers["${header}"]`, `res.headers["${header}"]`]);

/**
 * The pino logger's settings: LOG_LEVEL as pino's level, levels by name (`"level":"warn"`), ISO
 * times, and secrets redacted wherever a request, the configuration or the environment is logged.
 */
export function pinoOptions(log: LogConfig): LoggerOptions {
  return {
    level: pinoLevel(log.level),
    formatters: { level: (label) => ({ level: label }), log: redactSecrets },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: CHILD_BINDING_PATHS, censor: REDACTED },
  };
}

/**
 * pino-http's settings (nestjs-pino builds the one pino logger through it). No line per request:
 * reads are served in front of Express anyway (src/http/front-route.ts), and a line per request
 * would cost more than the read itself. A line logged while Express handles a request carries the
 * request's id (`reqId`), never the request, whose headers hold the caller's token.
 */
export function pinoHttpOptions(log: LogConfig): PinoHttpOptions {
  return { ...pinoOptions(log), autoLogging: false, quietReqLogger: true, quietResLogger: true };
}

/**
 * Where the lines go: file descriptor `dest` (1 for the service, 2 for the rebuild command, whose
 * stdout is its answer) or a file, in LOG_FORMAT.
 *
 * Written synchronously, line by line. pino's asynchronous destination holds lines in a buffer,
 * and a transport (pino-pretty's too) writes them from a worker thread: either loses the last
 * lines when the process exits right after logging them (a shutdown that failed or ran out of
 * time, the rebuild command's exit codes). A synchronous write costs a system call per line; the
 * service writes few lines, none per request.
 */
export function logDestination(log: LogConfig, dest: number | string): DestinationStream {
  const out = pino.destination({ dest, sync: true });
  if (log.format === 'json') return out;
  // pino-pretty's formatter, called here, rather than its stream, which would write later.
  const prettify = prettyFactory({
    colorize: isColorSupported && typeof dest === 'number' && isatty(dest),
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,context',
    messageFormat: '{if context}[{context}] {end}{msg}',
  });
  return { write: (line: string) => out.write(prettify(line)) };
}
