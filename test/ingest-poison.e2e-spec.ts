import { randomBytes } from 'node:crypto';
import { INestApplication } from '@nestjs/common';
import fc from 'fast-check';
import kafkajs from 'kafkajs';
import { AppConfig } from '../src/config/app-config.js';
import { TaskEventDecoder } from '../src/ingest/task-event-decoder.js';
import { MAX_DECOMPRESSED_BATCH_BYTES } from '../src/kafka/decompression-bounds.js';
import { CapturedLogs } from './support/captured-logs.js';
import { startIngestingApp } from './support/ingesting-app.js';
import { eventually } from './support/eventually.js';
import { testConfig } from './support/infra.js';
import { JavaEvent, produceWithJavaClient } from './support/java-task-producer.js';
import { ProjectionReader } from './support/projection-reader.js';
import { sampleTaskBytes } from './support/sample-task.js';
import { ConsumedMessage, headerText, TestKafka } from './support/test-kafka.js';

/** How long events behind a poison event may take to be applied: generous for a noisy 2-core machine. */
const APPLIED_WITHIN_MS = 30_000;
const PROTOTYPE_NAMES = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'];
/** The source topic takes records this large here, so events can exceed what the dead-letter topic (1 MiB + 64 KiB) takes. */
const SOURCE_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

type Header = NonNullable<JavaEvent['headers']>[number];
const header = (name: string, value: Buffer | string | null): Header => ({ name, value: typeof value === 'string' ? Buffer.from(value) : value });
const invalidTask = (taskId: string, extra = '') => Buffer.from(`{"taskId":"${taskId}","taskType":"t","status":"BOGUS"${extra}}`);
const validTask = (taskId: string, extra = '') => Buffer.from(`{"taskId":"${taskId}","taskType":"t","status":"COMPLETED"${extra}}`);

/**
 * Poison events: single events built to break ingest (header shapes kafkajs cannot send back,
 * sizes past what the dead-letter topic takes, fields named like Object.prototype members, and
 * arbitrary bytes). Each must end in the projection or the dead-letter topic (or, refused even
 * there, in an error line), the events behind it on every partition must be applied within a
 * bound, and the consumer must never crash or rejoin its group.
 */
describe('poison events never stall ingest', () => {
  let config: AppConfig;
  let logs: CapturedLogs;
  let app: INestApplication;
  let kafka: TestKafka;
  let reader: ProjectionReader;
  let deadLetters: { readonly messages: ConsumedMessage[]; stop(): Promise<void> };

  beforeAll(async () => {
    config = testConfig('poison');
    logs = new CapturedLogs();
    app = await startIngestingApp(config, logs);
    kafka = await TestKafka.connect(config.kafka.brokers);
    await kafka.allowCompactedRecordsUpTo(config.kafka.topic, SOURCE_MAX_MESSAGE_BYTES);
    reader = new ProjectionReader(config.redis);
    deadLetters = await kafka.follow(config.kafka.dlqTopic);
  });

  afterAll(async () => {
    await deadLetters?.stop();
    await app?.close();
    await kafka?.close();
    await reader?.close();
  });

  afterEach(() => {
    // The consumer neither crashed nor left and rejoined its group (a crash-looping consumer does both).
    expect(logs.matching(/crashed|could not start/)).toEqual([]);
    expect(logs.matching(/^kafka consumer joined group/)).toHaveLength(1);
  });

  /** Waits until each task holds exactly these bytes. */
  async function expectApplied(expected: ReadonlyMap<string, Buffer>, what: string): Promise<void> {
    await eventually(
      what,
      async () => {
        const tasks = await reader.read([...expected.keys()]);
        return [...expected].every(([taskId, bytes]) => tasks.get(taskId)?.value?.equals(bytes) === true);
      },
      { timeoutMs: APPLIED_WITHIN_MS },
    );
  }

  /** Valid events on every partition of the source topic, behind whatever was produced before: all applied in time. */
  async function expectEveryPartitionFlows(label: string): Promise<void> {
    const expected = new Map<string, Buffer>();
    const partitions = new Set<number>();
    for (let index = 0; index < 32; index += 1) {
      const taskId = `${label}-after-${index}`;
      expected.set(taskId, sampleTaskBytes(taskId, 1));
      partitions.add((await kafka.sendOne(config.kafka.topic, { key: taskId, value: expected.get(taskId)! })).partition);
    }
    expect([...partitions].sort((a, b) => a - b)).toEqual([0, 1, 2, 3]);
    await expectApplied(expected, `the valid events behind the ${label} events, on every partition`);
  }

  /** The dead letter of the event with this key, once it has arrived. */
  async function deadLetterOf(key: Buffer | string): Promise<ConsumedMessage> {
    const wanted = Buffer.from(key);
    return eventually(
      `the dead letter keyed ${wanted.toString().slice(0, 40)}`,
      () => deadLetters.messages.find((letter) => letter.key?.equals(wanted)) ?? false,
      { timeoutMs: APPLIED_WITHIN_MS },
    );
  }

  /** Every value a header has in a consumed message, as text ('' for an empty one). */
  const headerValues = (letter: ConsumedMessage, name: string): string[] => {
    const raw = Object.hasOwn(letter.headers ?? {}, name) ? letter.headers![name] : undefined;
    return (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).filter((item) => Buffer.isBuffer(item)).map((item) => item.toString());
  };

  it('a record batch that would decompress beyond the limit is dead-lettered whole, and every partition flows', async () => {
    // 65 values of 1 MiB of zeros, one gzip batch of about 65 KB: 65 MiB once decompressed.
    const bomb = Array.from({ length: 65 }, (_, index) => ({ key: `bomb-${index}`, value: Buffer.alloc(1024 * 1024), partition: 0 }));
    const [sent] = await kafka.send(config.kafka.topic, bomb, kafkajs.CompressionTypes.GZIP);
    const letter = await eventually(
      'the dead letter of the batch',
      () => deadLetters.messages.find((message) => headerText(message.headers, 'x-dlq-reason')?.startsWith('BATCH_UNREADABLE')) ?? false,
      { timeoutMs: APPLIED_WITHIN_MS },
    );
    const first = Number(sent.baseOffset);
    expect(headerText(letter.headers, 'x-dlq-reason')).toBe(
      `BATCH_UNREADABLE: the record batch at offsets ${first} to ${first + 64} (65 records) could not be read: gzip data declares more than ${MAX_DECOMPRESSED_BATCH_BYTES} bytes once decompressed (output stopped at the limit)`,
    );
    expect(headerText(letter.headers, 'x-dlq-source-offset')).toBe(String(first + 64));
    expect(letter.key).toBeNull();
    expect(letter.value).toBeNull();

    await expectEveryPartitionFlows('batches');
    // Committed past the batch.
    const committed = await kafka.committedOffsets(config.kafka.groupId, config.kafka.topic);
    expect(committed.get(0)).toBe((await kafka.endOffsets(config.kafka.topic)).get(0));
  }, 120_000);

  it('header shapes: no value, named like Object.prototype members, repeated, 100,000 of them: applied when valid, dead-lettered with those headers when not', async () => {
    const manyHeaders = Array.from({ length: 100_000 }, (_, index) => header(`h${index}`, index % 2 === 0 ? null : 'v'));
    const events: JavaEvent[] = [
      { compression: 'none', key: Buffer.from('hdr-null-bad'), value: invalidTask('hdr-null-bad'), headers: [header('trace', null), header('ok', 'yes')] },
      { compression: 'none', key: Buffer.from('hdr-null-good'), value: validTask('hdr-null-good'), headers: [header('trace', null)] },
      {
        compression: 'none',
        key: Buffer.from('hdr-proto-bad'),
        value: invalidTask('hdr-proto-bad'),
        headers: PROTOTYPE_NAMES.map((name) => header(name, `own-${name}`)),
      },
      {
        compression: 'gzip',
        key: Buffer.from('hdr-proto-good'),
        value: validTask('hdr-proto-good'),
        headers: PROTOTYPE_NAMES.map((name) => header(name, null)),
      },
      // kafkajs merges headers in time quadratic in their count: 100,000 held a process for hours.
      { compression: 'none', key: Buffer.from('hdr-many-bad'), value: invalidTask('hdr-many-bad'), headers: manyHeaders },
      { compression: 'lz4', key: Buffer.from('hdr-many-good'), value: validTask('hdr-many-good'), headers: manyHeaders },
      {
        compression: 'none',
        key: Buffer.from('hdr-repeated-bad'),
        value: invalidTask('hdr-repeated-bad'),
        headers: [header('dup', '1'), header('dup', null), header('dup', '3')],
      },
    ];
    await produceWithJavaClient(config.kafka.brokers, config.kafka.topic, events);
    await expectEveryPartitionFlows('headers');
    await expectApplied(
      new Map([
        ['hdr-null-good', validTask('hdr-null-good')],
        ['hdr-proto-good', validTask('hdr-proto-good')],
        ['hdr-many-good', validTask('hdr-many-good')],
      ]),
      'the valid events with unusual headers',
    );

    const nullLetter = await deadLetterOf('hdr-null-bad');
    expect(nullLetter.value?.equals(invalidTask('hdr-null-bad'))).toBe(true);
    expect(headerValues(nullLetter, 'trace')).toEqual(['']);
    expect(headerValues(nullLetter, 'ok')).toEqual(['yes']);
    expect(headerText(nullLetter.headers, 'x-dlq-null-headers')).toBe('["trace"]');
    expect(headerText(nullLetter.headers, 'x-dlq-reason')).toMatch(/^INVALID_FIELDS: status must be one of/);

    const protoLetter = await deadLetterOf('hdr-proto-bad');
    for (const name of PROTOTYPE_NAMES) expect({ name, values: headerValues(protoLetter, name) }).toEqual({ name, values: [`own-${name}`] });

    const many = await deadLetterOf('hdr-many-bad');
    expect(Object.keys(many.headers ?? {}).filter((name) => /^h\d+$/.test(name))).toHaveLength(100_000);
    expect(headerValues(many, 'h99999')).toEqual(['v']);
    expect(headerValues(many, 'h0')).toEqual(['']);

    const repeated = await deadLetterOf('hdr-repeated-bad');
    expect(headerValues(repeated, 'dup')).toEqual(['1', '', '3']);
  });

  it('sizes: a dead letter too large for the dead-letter topic loses its value, then its headers; one refused even then is logged and skipped', async () => {
    const bigHeaders = [header('blob', randomBytes(1200 * 1024)), header('small', 'kept?')];
    const events: JavaEvent[] = [
      // Headers alone over the dead-letter topic's limit: sent without value and headers.
      { compression: 'none', key: Buffer.from('size-headers'), value: invalidTask('size-headers'), headers: bigHeaders },
      // Value and headers together over it, headers alone under: sent without value.
      { compression: 'none', key: Buffer.from('size-value'), value: randomBytes(1000 * 1024), headers: [header('blob', randomBytes(100 * 1024))] },
      // The key alone over it: nothing of it fits.
      { compression: 'none', key: randomBytes(1500 * 1024), value: validTask('size-key') },
    ];
    await produceWithJavaClient(config.kafka.brokers, config.kafka.topic, events);
    await expectEveryPartitionFlows('sizes');

    const withoutHeaders = await deadLetterOf('size-headers');
    expect(withoutHeaders.value).toBeNull();
    expect(headerValues(withoutHeaders, 'blob')).toEqual([]);
    expect(headerValues(withoutHeaders, 'small')).toEqual([]);
    expect(headerText(withoutHeaders.headers, 'x-dlq-headers-omitted')).toBe(`2 headers, ${1200 * 1024 + 5} bytes`);
    expect(headerText(withoutHeaders.headers, 'x-dlq-reason')).toMatch(/^INVALID_FIELDS: /);

    const withoutValue = await deadLetterOf('size-value');
    expect(withoutValue.value).toBeNull();
    expect(headerText(withoutValue.headers, 'x-dlq-value-omitted')).toBe(`${1000 * 1024} bytes`);
    expect(withoutValue.headers?.blob).toHaveLength(100 * 1024);
    expect(headerText(withoutValue.headers, 'x-dlq-headers-omitted')).toBeUndefined();

    const skipped = await eventually('the refused dead letter to be logged', () => {
      const lines = logs.matching(/^dead letter refused by .* even without value and headers, skipped \(1 so far\)/);
      return lines.length > 0 && lines;
    });
    expect(skipped.map((line) => line.level)).toEqual(['error']);
    expect(skipped[0].message).toMatch(new RegExp(`^dead letter refused by ${config.kafka.dlqTopic} even without value and headers, skipped \\(1 so far\\): ${config.kafka.topic} partition \\d offset \\d+: KEY_MISMATCH: `));
  });

  it("fields named like Object.prototype members: valid events are applied byte for byte, invalid ones dead-lettered", async () => {
    const valid = new Map<string, Buffer>();
    const invalid: string[] = [];
    // The event first found to crash-loop the consumer.
    await kafka.sendOne(config.kafka.topic, { key: 'pz1', value: '{"taskId":"pz1","taskType":"t","status":"BOGUS","constructor":null}' });
    invalid.push('pz1');
    for (const name of PROTOTYPE_NAMES) {
      for (const [shape, json] of [['null', 'null'], ['object', '{"prototype":null,"taskId":"x"}'], ['number', '7']]) {
        const good = `proto-good-${name}-${shape}`;
        valid.set(good, validTask(good, `,"${name}":${json}`));
        await kafka.sendOne(config.kafka.topic, { key: good, value: valid.get(good)! });
        const bad = `proto-bad-${name}-${shape}`;
        invalid.push(bad);
        await kafka.sendOne(config.kafka.topic, { key: bad, value: invalidTask(bad, `,"${name}":${json}`) });
      }
    }
    await expectEveryPartitionFlows('fields');
    await expectApplied(valid, 'the valid events with prototype-named fields');
    for (const key of invalid) {
      expect(headerText((await deadLetterOf(key)).headers, 'x-dlq-reason')).toMatch(/^INVALID_FIELDS: status must be one of/);
    }
    expect(logs.matching(/failed unexpectedly/)).toEqual([]);
  });

  it('property: any key, value and headers end applied or dead-lettered, and the group commits past them', async () => {
    const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((array) => Buffer.from(array));
    const headerArb = fc.record({
      name: fc.oneof(fc.constantFrom(...PROTOTYPE_NAMES, 'x-dlq-reason'), fc.string({ maxLength: 10 })),
      value: fc.oneof(fc.constant(null), bytes(64), fc.constant('large').map(() => randomBytes(300 * 1024))),
    });
    const eventArb = fc.integer({ min: 0, max: 1_000_000_000 }).chain((seed) => {
      const taskId = `prop-${seed}`;
      return fc.record({
        compression: fc.constantFrom('none' as const, 'gzip' as const, 'zstd' as const),
        key: fc.oneof(fc.constant(Buffer.from(taskId)), bytes(48).filter((key) => key.length > 0)),
        value: fc.oneof(
          fc.constant(null),
          bytes(512),
          fc.constant(validTask(taskId)),
          fc.constantFrom(...PROTOTYPE_NAMES).map((name) => validTask(taskId, `,"${name}":null`)),
          fc.constantFrom(...PROTOTYPE_NAMES).map((name) => invalidTask(taskId, `,"${name}":{}`)),
          fc.string({ maxLength: 200 }).map((text) => Buffer.from(`{"taskId":"${taskId}","taskType":"t","status":${JSON.stringify(text)}}`)),
          fc.constant('large').map(() => randomBytes(1100 * 1024)),
        ),
        headers: fc.array(headerArb, { maxLength: 6 }),
      });
    });
    // The decoder's verdict on each event, as it was stored in the topic, says where it must end.
    const decoder = new TaskEventDecoder();
    const source = await kafka.follow(config.kafka.topic);
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(eventArb, { minLength: 10, maxLength: 30 }), async (events) => {
          const before = await kafka.endOffsets(config.kafka.topic);
          await produceWithJavaClient(config.kafka.brokers, config.kafka.topic, events);
          const end = await kafka.endOffsets(config.kafka.topic);
          // Never retried forever: the group commits every partition to its end within the bound.
          await eventually(
            'the group to commit past every generated event',
            async () => {
              const committed = await kafka.committedOffsets(config.kafka.groupId, config.kafka.topic);
              return [...end].every(([partition, offset]) => committed.get(partition) === offset);
            },
            { timeoutMs: APPLIED_WITHIN_MS },
          );
          const produced = await eventually('the generated events to be read back', () => {
            const found = source.messages.filter((message) => Number(message.offset) >= before.get(message.partition)!);
            return found.length === events.length && found;
          });
          const keys = produced.map((message) => message.key!.toString('utf8'));
          const fates = async () => {
            const projected = await reader.read(keys);
            return produced.map((message) => {
              const { partition, offset } = message;
              const at = (letter: ConsumedMessage) =>
                headerText(letter.headers, 'x-dlq-source-partition') === String(partition) && headerText(letter.headers, 'x-dlq-source-offset') === offset;
              const task = projected.get(message.key!.toString('utf8'));
              return {
                partition,
                offset,
                valid: isValid(decoder, message),
                // Applied, or superseded by a later event of the same key (the same partition).
                applied: task !== undefined && task.partition === partition && task.offset >= Number(offset),
                deadLettered:
                  deadLetters.messages.some(at) ||
                  logs.matching(new RegExp(`: ${config.kafka.topic} partition ${partition} offset ${offset}: `)).some((line) => line.level === 'error'),
              };
            });
          };
          // A valid event is applied and not dead-lettered; an invalid one is dead-lettered (the
          // follower of the dead-letter topic may be a moment behind the commit).
          const wrong = async () => (await fates()).filter((fate) => (fate.valid ? !fate.applied || fate.deadLettered : !fate.deadLettered));
          await eventually('every generated event to be accounted for', async () => (await wrong()).length === 0, { timeoutMs: 10_000 }).catch(() => undefined);
          expect(await wrong()).toEqual([]);
        }),
        // Each run produces through a JVM and waits for the group: shrinking a failure would take minutes.
        { numRuns: 4, endOnFailure: true },
      );
    } finally {
      await source.stop();
    }
    await expectEveryPartitionFlows('property');
  }, 300_000);
});

function isValid(decoder: TaskEventDecoder, message: ConsumedMessage): boolean {
  try {
    decoder.decode(message, message.partition);
    return true;
  } catch {
    return false;
  }
}
