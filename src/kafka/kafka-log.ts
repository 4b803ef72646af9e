import kafkajs, { type LogEntry, type logCreator } from 'kafkajs';
import { LogThrottle } from '../common/log-throttle.js';

const { logLevel } = kafkajs;

/** Where an entry of kafkajs's is about, when it names a partition (a batch's failure names its offset too). */
export interface KafkaLogCoordinates {
  readonly topic: string;
  readonly partition: number;
  readonly offset?: string;
}

/** A line: its text, or the entry's coordinates as fields and its text. */
export type KafkaLogLine = [message: string] | [fields: KafkaLogCoordinates, message: string];

/** Where kafkajs's entries go: a Nest `Logger`, or anything with its methods. */
export interface KafkaLogSink {
  error(...line: KafkaLogLine): void;
  warn(...line: KafkaLogLine): void;
  log(...line: KafkaLogLine): void;
  debug(...line: KafkaLogLine): void;
}

/** While Kafka stays unreachable, one connection error is logged at most this often. */
const CONNECTION_ERROR_LOG_INTERVAL_MS = 30_000;

/**
 * kafkajs's ways of saying that a broker cannot be reached: a refused, reset, timed-out or closed
 * connection, an unresolvable host, or no broker left to fetch from (and the consumer crashes
 * that carry those messages).
 */
const CONNECTION_FAILURE =
  /Connection error|Connection timeout|Closed connection|No broker available|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN/;

/**
 * Broker refusals of a record that the caller handles and reports itself: the dead-letter
 * publisher sends a refused dead letter again with less, and logs the outcome once. kafkajs logs
 * each refusal at ERROR twice (connection and producer); those lines go to debug.
 */
const HANDLED_BY_CALLER = /larger than the max message size the server will accept/;

const toSinkLevel: Record<number, keyof KafkaLogSink> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'log',
  [logLevel.DEBUG]: 'debug',
};

/**
 * Routes kafkajs's log entries to `sink`, one line each, except connection errors: while a broker
 * is unreachable kafkajs logs two or three of them per reconnect attempt, from several of its
 * components, for as long as the outage lasts. The first is logged as it comes; later ones, of
 * whatever component, are counted and one is logged at most every `intervalMs` with that count.
 * Every other entry passes through unchanged. An entry that names a topic and partition (and
 * offset) gives them as fields of its line as well as in its text.
 */
export function kafkaLogCreator(sink: KafkaLogSink, intervalMs = CONNECTION_ERROR_LOG_INTERVAL_MS, now: () => number = Date.now): logCreator {
  const connectionErrors = new LogThrottle(intervalMs, now);
  return () =>
    ({ namespace, level, log }: LogEntry) => {
      const { message, timestamp: _timestamp, logger: _logger, ...extra } = log;
      const handled = HANDLED_BY_CALLER.test(message) || (typeof extra.error === 'string' && HANDLED_BY_CALLER.test(extra.error));
      const method = sink[handled ? 'debug' : (toSinkLevel[level] ?? 'log')].bind(sink);
      const at = coordinates(extra);
      const write = (text: string) => (at ? method(at, text) : method(text));
      if (level > logLevel.WARN || !CONNECTION_FAILURE.test(message)) {
        write(`${namespace}: ${message}${detail(extra)}`);
        return;
      }
      const turn = connectionErrors.take();
      if (!turn) return;
      // The stack of a refused connection says nothing an operator can use.
      const { stack: _stack, ...context } = extra;
      const note =
        turn.sinceLastMs === undefined || turn.skipped === 0
          ? `further connection errors are counted and logged at most every ${Math.round(intervalMs / 1000)} s`
          : `${turn.skipped} more since the last one logged, ${Math.round(turn.sinceLastMs / 1000)} s ago`;
      write(`${namespace}: ${message}${detail(context)} (${note})`);
    };
}

function coordinates({ topic, partition, offset }: Record<string, unknown>): KafkaLogCoordinates | undefined {
  if (typeof topic !== 'string' || typeof partition !== 'number') return undefined;
  return offset === undefined || offset === null ? { topic, partition } : { topic, partition, offset: String(offset) };
}

function detail(extra: Record<string, unknown>): string {
  return Object.keys(extra).length > 0 ? ` ${JSON.stringify(extra)}` : '';
}
