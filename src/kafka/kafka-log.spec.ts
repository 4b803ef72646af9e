import kafkajs, { type LogEntry } from 'kafkajs';
import { kafkaLogCreator, KafkaLogLine, KafkaLogSink } from './kafka-log.js';

const { logLevel } = kafkajs;

describe('kafkaLogCreator', () => {
  let lines: string[];
  let fields: unknown[];
  let clock: number;
  let log: (entry: LogEntry) => void;
  const keep =
    (level: string) =>
    (...line: KafkaLogLine) => {
      lines.push(`${level} ${line[line.length - 1] as string}`);
      fields.push(line.length === 2 ? line[0] : undefined);
    };
  const sink: KafkaLogSink = { error: keep('error'), warn: keep('warn'), log: keep('log'), debug: keep('debug') };
  const entry = (namespace: string, level: number, message: string, extra: Record<string, unknown> = {}): LogEntry => ({
    namespace,
    level,
    label: '',
    log: { timestamp: '2026-01-01T00:00:00.000Z', logger: 'kafkajs', message, ...extra },
  });
  /** One reconnect attempt while the broker is down, as kafkajs logs it. */
  const refusedAttempt = (retryCount: number) => {
    const refused = 'Connection error: connect ECONNREFUSED 127.0.0.1:9092';
    log(entry('Connection', logLevel.ERROR, refused, { broker: '127.0.0.1:9092', stack: 'Error: connect ECONNREFUSED\n    at ...' }));
    log(entry('BrokerPool', logLevel.ERROR, `Failed to connect to seed broker, trying another broker from the list: ${refused}`, { retryCount }));
  };

  beforeEach(() => {
    lines = [];
    fields = [];
    clock = 0;
    log = kafkaLogCreator(sink, 30_000, () => clock)(logLevel.WARN);
  });

  it('passes entries other than connection errors through, one line each, with their details', () => {
    log(entry('Consumer', logLevel.ERROR, 'Restarting the consumer in 300ms', { retryTime: 300 }));
    log(entry('Consumer', logLevel.ERROR, 'Restarting the consumer in 300ms', { retryTime: 300 }));
    log(entry('Runner', logLevel.WARN, 'The group is rebalancing, re-joining'));
    expect(lines).toEqual([
      'error Consumer: Restarting the consumer in 300ms {"retryTime":300}',
      'error Consumer: Restarting the consumer in 300ms {"retryTime":300}',
      'warn Runner: The group is rebalancing, re-joining',
    ]);
  });

  it('gives the topic, partition and offset an entry names as fields of its line', () => {
    log(entry('Runner', logLevel.ERROR, 'Error when calling eachBatch', { topic: 'tasks', partition: 3, offset: '41', error: 'boom' }));
    log(entry('Runner', logLevel.WARN, 'Seeking', { topic: 'tasks', partition: 0 }));
    log(entry('Consumer', logLevel.ERROR, 'Restarting the consumer in 300ms', { retryTime: 300 }));
    expect(lines).toEqual([
      'error Runner: Error when calling eachBatch {"topic":"tasks","partition":3,"offset":"41","error":"boom"}',
      'warn Runner: Seeking {"topic":"tasks","partition":0}',
      'error Consumer: Restarting the consumer in 300ms {"retryTime":300}',
    ]);
    expect(fields).toEqual([{ topic: 'tasks', partition: 3, offset: '41' }, { topic: 'tasks', partition: 0 }, undefined]);
  });

  it('folds the connection errors of every kafkajs component into one line per interval, with a count and without the stack', () => {
    for (let attempt = 0; attempt < 20; attempt += 1) {
      clock = attempt * 2000; // an attempt every 2 s for 40 s
      refusedAttempt(attempt);
    }
    log(entry('Consumer', logLevel.ERROR, 'Crash: KafkaJSNumberOfRetriesExceeded: Connection error: connect ECONNREFUSED 127.0.0.1:9092'));
    expect(lines).toEqual([
      'error Connection: Connection error: connect ECONNREFUSED 127.0.0.1:9092 {"broker":"127.0.0.1:9092"} (further connection errors are counted and logged at most every 30 s)',
      'error Connection: Connection error: connect ECONNREFUSED 127.0.0.1:9092 {"broker":"127.0.0.1:9092"} (29 more since the last one logged, 30 s ago)',
    ]);
  });

  it('logs the first connection error of a later outage as it comes', () => {
    refusedAttempt(0);
    clock = 10 * 60_000;
    log(entry('Connection', logLevel.ERROR, 'Connection error: read ECONNRESET', { broker: '127.0.0.1:9092' }));
    expect(lines).toEqual([
      'error Connection: Connection error: connect ECONNREFUSED 127.0.0.1:9092 {"broker":"127.0.0.1:9092"} (further connection errors are counted and logged at most every 30 s)',
      'error Connection: Connection error: read ECONNRESET {"broker":"127.0.0.1:9092"} (1 more since the last one logged, 600 s ago)',
    ]);
  });

  it('logs at debug the record refusals the dead-letter publisher handles and reports itself', () => {
    const tooLarge = 'The request included a message larger than the max message size the server will accept';
    log(entry('Connection', logLevel.ERROR, `Response Produce(key: 0, version: 7)`, { error: tooLarge }));
    log(entry('Producer', logLevel.ERROR, tooLarge, { retryCount: 0 }));
    expect(lines).toEqual(['debug Connection: Response Produce(key: 0, version: 7) {"error":"The request included a message larger than the max message size the server will accept"}', `debug Producer: ${tooLarge} {"retryCount":0}`]);
  });
});
