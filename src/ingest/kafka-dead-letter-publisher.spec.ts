import { createRequire } from 'node:module';
import { Logger } from '@nestjs/common';
import fc from 'fast-check';
import type { IHeaders, KafkaMessage, Message, ProducerRecord } from 'kafkajs';
import { KafkaConfig } from '../config/app-config.js';
import { KafkaClient } from '../kafka/kafka-client.js';
import { DeadLetter } from './dead-letter.js';
import { KafkaDeadLetterPublisher, toDeadLetterMessage } from './kafka-dead-letter-publisher.js';

// kafkajs's own record codec: what the consumer decodes and what the producer encodes. Its internals
// have no types, and no exports map forbids reaching them.
const require = createRequire(import.meta.url);
type Codec = { new (buffer?: Buffer): Codec; buffer: Buffer } & Record<string, (...args: unknown[]) => Codec>;
const Encoder = require('kafkajs/src/protocol/encoder.js') as Codec;
const Decoder = require('kafkajs/src/protocol/decoder.js') as Codec;
const encodeRecord = require('kafkajs/src/protocol/recordBatch/record/v0/index.js') as (record: Message) => Codec;
const decodeRecord = require('kafkajs/src/protocol/recordBatch/record/v0/decoder.js') as (
  decoder: Codec,
  context: object,
) => KafkaMessage;

interface RawHeader {
  readonly name: string;
  readonly value: Buffer | null;
}

/** A record as another client may write it (null header values, repeated names), decoded as kafkajs does. */
function consumed(key: Buffer | null, value: Buffer | null, headers: readonly RawHeader[]): KafkaMessage {
  const body = new Encoder()
    .writeInt8(0)
    .writeVarLong(0)
    .writeVarInt(0)
    .writeVarIntBytes(key)
    .writeVarIntBytes(value)
    .writeVarIntArray(headers.map(({ name, value }) => new Encoder().writeVarIntString(name).writeVarIntBytes(value)));
  return decodeRecord(new Decoder(body.buffer), { firstOffset: '7', firstTimestamp: '1000', magicByte: 2 });
}

/** The record the producer would send, encoded by kafkajs and decoded again: its headers as name/value pairs. */
function roundTrip(message: Message): { key: Buffer | null; value: Buffer | null; headers: [string, string][] } {
  const bytes = encodeRecord(message).buffer;
  const decoder = new Decoder(bytes);
  decoder.readVarInt();
  const record = decodeRecord(decoder, { firstOffset: '0', firstTimestamp: '0', magicByte: 2 });
  const headers: [string, string][] = [];
  for (const name of Object.keys(record.headers ?? {})) {
    const raw = record.headers![name];
    for (const item of Array.isArray(raw) ? raw : [raw]) {
      if (Buffer.isBuffer(item)) headers.push([name, item.toString('hex')]);
    }
  }
  return { key: record.key, value: record.value, headers };
}

const letterOf = (message: KafkaMessage): DeadLetter => ({ topic: 'tasks', partition: 3, message, reason: 'INVALID_FIELDS: status must be one of ...' });

const PROTOTYPE_NAMES = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', 'isPrototypeOf'];

describe('toDeadLetterMessage', () => {
  it('forwards a header sent with no value as an empty value, and names it in x-dlq-null-headers', () => {
    const message = toDeadLetterMessage(letterOf(consumed(Buffer.from('k'), Buffer.from('v'), [{ name: 'trace', value: null }])), 'whole');
    const sent = roundTrip(message);
    expect(sent.headers).toContainEqual(['trace', '']);
    expect(sent.headers).toContainEqual(['x-dlq-null-headers', Buffer.from('["trace"]').toString('hex')]);
    expect(sent.value?.toString()).toBe('v');
  });

  it.each(PROTOTYPE_NAMES)('forwards a header named %s with its own value only', (name) => {
    const message = toDeadLetterMessage(letterOf(consumed(null, Buffer.from('v'), [{ name, value: Buffer.from('mine') }])), 'whole');
    expect(roundTrip(message).headers).toContainEqual([name, Buffer.from('mine').toString('hex')]);
    expect(roundTrip(message).headers.filter(([header]) => header === name)).toHaveLength(1);
  });

  it('forwards every value of a repeated header, in order', () => {
    const headers = [
      { name: 'a', value: Buffer.from('1') },
      { name: 'a', value: null },
      { name: 'a', value: Buffer.from('3') },
    ];
    const sent = roundTrip(toDeadLetterMessage(letterOf(consumed(null, null, headers)), 'whole'));
    expect(sent.headers.filter(([name]) => name === 'a').map(([, value]) => value)).toEqual(['31', '', '33']);
  });

  it('without value: keeps key and headers and says how many bytes were left out', () => {
    const message = consumed(Buffer.from('k'), Buffer.alloc(5000), [{ name: 'h', value: Buffer.from('x') }]);
    const sent = roundTrip(toDeadLetterMessage(letterOf(message), 'without value'));
    expect(sent.value).toBeNull();
    expect(sent.key?.toString()).toBe('k');
    expect(sent.headers).toContainEqual(['h', Buffer.from('x').toString('hex')]);
    expect(sent.headers).toContainEqual(['x-dlq-value-omitted', Buffer.from('5000 bytes').toString('hex')]);
  });

  it('without value and headers: keeps the key and the x-dlq-* headers, and says what was left out', () => {
    const headers = [
      { name: 'h', value: Buffer.alloc(100) },
      { name: 'n', value: null },
      { name: 'x-dlq-reason', value: Buffer.from('an earlier one') },
    ];
    const sent = roundTrip(toDeadLetterMessage(letterOf(consumed(Buffer.from('k'), Buffer.alloc(10), headers)), 'without value and headers'));
    expect(sent.key?.toString()).toBe('k');
    expect(sent.value).toBeNull();
    const text = Object.fromEntries(sent.headers.map(([name, hex]) => [name, Buffer.from(hex, 'hex').toString()]));
    expect(text).toEqual({
      'x-dlq-reason': 'INVALID_FIELDS: status must be one of ...',
      'x-dlq-source-topic': 'tasks',
      'x-dlq-source-partition': '3',
      'x-dlq-source-offset': '7',
      'x-dlq-value-omitted': '10 bytes',
      'x-dlq-headers-omitted': '3 headers, 114 bytes',
    });
  });

  it('property: any key, value and headers give a dead letter kafkajs encodes, at every rung, with every header accounted for', () => {
    const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((array) => Buffer.from(array));
    const header = fc.record({
      name: fc.oneof(fc.constantFrom(...PROTOTYPE_NAMES, 'x-dlq-reason', ''), fc.string({ maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 6 })),
      value: fc.option(bytes(64), { nil: null }),
    });
    fc.assert(
      fc.property(fc.option(bytes(40), { nil: null }), fc.option(bytes(200), { nil: null }), fc.array(header, { maxLength: 12 }), (key, value, headers) => {
        const letter = letterOf(consumed(key, value, headers));
        for (const rung of ['whole', 'without value', 'without value and headers'] as const) {
          const sent = roundTrip(toDeadLetterMessage(letter, rung));
          expect(sent.key === null ? null : sent.key.equals(key!)).toBe(key === null ? null : true);
          if (rung === 'whole') expect(sent.value === null ? null : sent.value.equals(value!)).toBe(value === null ? null : true);
          else expect(sent.value).toBeNull();
          const own = headers.filter(({ name }) => !name.startsWith('x-dlq-'));
          if (rung !== 'without value and headers') {
            // Every original header that is not an x-dlq-* one arrives, null ones as empty values.
            for (const { name, value: headerValue } of own) {
              expect(sent.headers).toContainEqual([Buffer.from(name).toString(), (headerValue ?? Buffer.alloc(0)).toString('hex')]);
            }
          }
          expect(sent.headers.filter(([name]) => name === 'x-dlq-source-offset')).toEqual([['x-dlq-source-offset', Buffer.from('7').toString('hex')]]);
        }
      }),
      { numRuns: 500 },
    );
  });
});

/** A kafkajs producer that refuses records as a broker would, by size, or fails as an unreachable one. */
class FakeProducer {
  readonly sent: Message[] = [];
  requests = 0;
  /** A fault inside kafkajs itself, as its retrier reports one. */
  internalFault = false;
  /** Largest record, in encoded bytes, the topic takes. */
  maxRecordBytes = Number.POSITIVE_INFINITY;
  unreachable = false;

  async connect(): Promise<void> {}
  async disconnect(): Promise<void> {}

  async send({ messages }: ProducerRecord): Promise<void> {
    this.requests += 1;
    if (this.internalFault) {
      const cause = new TypeError("Cannot read properties of undefined (reading 'map')");
      throw Object.assign(new Error(cause.message, { cause }), { name: 'KafkaJSNonRetriableError' });
    }
    if (this.unreachable) throw Object.assign(new Error('Connection error: connect ECONNREFUSED'), { name: 'KafkaJSNumberOfRetriesExceeded', retriable: false });
    // kafkajs encodes the whole batch before sending: an unencodable record fails it here, as in production.
    const sizes = messages.map((message) => encodeRecord(message).buffer.length);
    if (sizes.some((size) => size > this.maxRecordBytes)) {
      const cause = Object.assign(new Error('The request included a message larger than the max message size the server will accept'), {
        name: 'KafkaJSProtocolError',
        type: 'MESSAGE_TOO_LARGE',
        retriable: false,
      });
      throw Object.assign(new Error(cause.message, { cause }), { name: 'KafkaJSNonRetriableError' });
    }
    this.sent.push(...messages);
  }
}

describe('KafkaDeadLetterPublisher', () => {
  const kafkaConfig: KafkaConfig = {
    brokers: ['localhost:9092'],
    clientId: 'task-cache',
    topic: 'tasks',
    dlqTopic: 'tasks.dlq',
    groupId: 'task-cache',
    topicPartitions: 1,
    replicationFactor: 1,
    sessionTimeoutMs: 30000,
  };
  let producer: FakeProducer;
  let publisher: KafkaDeadLetterPublisher;

  beforeAll(() => Logger.overrideLogger(false));

  beforeEach(() => {
    producer = new FakeProducer();
    const client = { kafka: { producer: () => producer } } as unknown as KafkaClient;
    publisher = new KafkaDeadLetterPublisher(client, kafkaConfig);
  });

  const letter = (offset: string, value: number, headerBytes: number, key = 'k'): DeadLetter => ({
    topic: 'tasks',
    partition: 0,
    reason: 'INVALID_JSON: value is not JSON',
    message: { key: Buffer.from(key), value: Buffer.alloc(value), headers: { big: Buffer.alloc(headerBytes) }, offset, timestamp: '0', attributes: 0 },
  });
  const omitted = (message: Message) => [
    (message.headers as IHeaders)['x-dlq-value-omitted'] ?? null,
    (message.headers as IHeaders)['x-dlq-headers-omitted'] ?? null,
  ];

  it('sends the letters whole when the topic takes them', async () => {
    await publisher.publish([letter('1', 10, 10), letter('2', 10, 10)]);
    expect(producer.sent.map(omitted)).toEqual([
      [null, null],
      [null, null],
    ]);
  });

  it('drops the value first, then the original headers, and sends the others whole', async () => {
    producer.maxRecordBytes = 1000;
    await publisher.publish([letter('1', 10, 10), letter('2', 2000, 10), letter('3', 2000, 2000)]);
    expect(producer.sent.map((message) => [(message.headers as IHeaders)['x-dlq-source-offset'], ...omitted(message)])).toEqual([
      ['1', null, null],
      ['2', '2000 bytes', null],
      ['3', '2000 bytes', '1 headers, 2000 bytes'],
    ]);
    expect(publisher.undeliverable).toBe(0);
  });

  it('skips and counts a letter refused even with only its key and x-dlq-* headers, and still resolves', async () => {
    producer.maxRecordBytes = 1000;
    const errors: [unknown, string][] = [];
    Logger.overrideLogger({ log: () => undefined, warn: () => undefined, error: (where: unknown, message: string) => void errors.push([where, message]) });
    try {
      await publisher.publish([letter('1', 10, 10, 'k'.repeat(2000)), letter('2', 10, 10)]);
    } finally {
      Logger.overrideLogger(false);
    }
    expect(producer.sent.map((message) => (message.headers as IHeaders)['x-dlq-source-offset'])).toEqual(['2']);
    expect(publisher.undeliverable).toBe(1);
    // Said at error, with where the event is as fields and the broker's refusal under err.
    expect(errors).toEqual([
      [
        { topic: 'tasks', partition: 0, offset: '1', err: expect.any(Error) },
        expect.stringMatching(/^dead letter refused by .* even without value and headers, skipped \(1 so far\): tasks partition 0 offset 1: /),
      ],
    ]);
  });

  it('finds the one refused letter among thousands by halves, heartbeating between requests', async () => {
    producer.maxRecordBytes = 1000;
    const letters = Array.from({ length: 4000 }, (_, index) => letter(String(index), index === 2500 ? 2000 : 10, 10));
    let heartbeats = 0;
    await publisher.publish(letters, async () => void (heartbeats += 1));
    expect(producer.sent).toHaveLength(4000);
    expect(producer.sent.filter((message) => (message.headers as IHeaders)['x-dlq-value-omitted'] === '2000 bytes')).toHaveLength(1);
    // One request for each other 500, and about 2 log2(500) for the 500 that hold it: one request
    // per level on the way down and one for each other half.
    expect(producer.requests).toBeLessThanOrEqual(7 + 2 * Math.ceil(Math.log2(500)) + 2);
    expect(heartbeats).toBeGreaterThanOrEqual(7 + Math.ceil(Math.log2(500)));
  });

  it('logs the first 20 letters of a publish one by one and counts the rest by reason in one line', async () => {
    const lines: string[] = [];
    const fields: unknown[] = [];
    Logger.overrideLogger({
      log: () => undefined,
      error: () => undefined,
      warn: (where: unknown, message: string) => {
        fields.push(where);
        lines.push(message);
      },
    });
    try {
      const letters = Array.from({ length: 1200 }, (_, index) => ({ ...letter(String(index), 10, 10), reason: index % 3 === 0 ? 'INVALID_JSON: value is not JSON' : 'INVALID_FIELDS: status' }));
      await publisher.publish(letters);
    } finally {
      Logger.overrideLogger(false);
    }
    expect(lines).toHaveLength(21);
    expect(lines[0]).toBe('dead-lettered tasks partition 0 offset 0: INVALID_JSON: value is not JSON');
    expect(lines[20]).toBe('dead-lettered 1180 more of tasks partition 0, by reason: INVALID_FIELDS 787, INVALID_JSON 393');
    // Where they are, as fields of the line: each letter's event; the range of those counted.
    expect(fields[0]).toEqual({ topic: 'tasks', partition: 0, offset: '0' });
    expect(fields[19]).toEqual({ topic: 'tasks', partition: 0, offset: '19' });
    expect(fields[20]).toEqual({ topic: 'tasks', partition: 0, offset: '20', lastOffset: '1199', count: 1180 });
  });

  it('sends at most 500 letters per request, heartbeating between requests: kafkajs groups a request in quadratic time', async () => {
    const letters = Array.from({ length: 1200 }, (_, index) => letter(String(index), 10, 10));
    let heartbeats = 0;
    await publisher.publish(letters, async () => void (heartbeats += 1));
    expect(producer.requests).toBe(3);
    expect(producer.sent.map((message) => (message.headers as IHeaders)['x-dlq-source-offset'])).toEqual(letters.map((_, index) => String(index)));
    expect(heartbeats).toBe(2);
  });

  it('sends a letter kafkajs cannot encode alone, down to the least, and the others in one request', async () => {
    const unencodable = letter('1', 10, 10);
    const key = { toString: () => { throw new TypeError('not bytes'); } };
    const broken = { ...unencodable, message: { ...unencodable.message, key: key as unknown as Buffer } };
    await publisher.publish([broken, letter('2', 10, 10), letter('3', 10, 10)]);
    expect(producer.sent.map((message) => (message.headers as IHeaders)['x-dlq-source-offset'])).toEqual(['2', '3']);
    expect(producer.requests).toBe(1);
    expect(publisher.undeliverable).toBe(1);
  });

  it('rejects on a fault inside kafkajs, skipping nothing: only the broker refusing the record steps down', async () => {
    producer.internalFault = true;
    await expect(publisher.publish([letter('1', 10, 10), letter('2', 10, 10)])).rejects.toThrow(/reading 'map'/);
    expect(producer.requests).toBe(1);
    expect(publisher.undeliverable).toBe(0);
  });

  it('rejects, sending nothing less, when the topic cannot be reached', async () => {
    producer.unreachable = true;
    await expect(publisher.publish([letter('1', 10, 10)])).rejects.toThrow(/ECONNREFUSED/);
    expect(publisher.undeliverable).toBe(0);
  });
});
