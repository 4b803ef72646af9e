import { randomBytes } from 'node:crypto';
import { INestApplication } from '@nestjs/common';
import kafkajs from 'kafkajs';
import type { CompressionTypes, Message } from 'kafkajs';
import { AppConfig } from '../src/config/app-config.js';
import { MAX_VALUE_BYTES } from '../src/ingest/task-event-decoder.js';
import { CapturedLogs } from './support/captured-logs.js';
import { startIngestingApp } from './support/ingesting-app.js';
import { eventually } from './support/eventually.js';
import { testConfig } from './support/infra.js';
import { JavaCompression, produceWithJavaClient } from './support/java-task-producer.js';
import { registerCompressionCodecs } from '../src/kafka/compression-codecs.js';
import { ProjectionReader } from './support/projection-reader.js';
import { ProjectionWatch } from './support/projection-watch.js';
import { sampleTask, sampleTaskBytes, SEED_TASK } from './support/sample-task.js';
import { storedBatches } from './support/stored-batches.js';
import { headerText, TestKafka } from './support/test-kafka.js';

const { CompressionTypes: Codec } = kafkajs;

/** The last event the current test produced for each task: its bytes, or null for a tombstone. */
const lastEvent = new Map<string, Buffer | null>();

describe('ingest: task-update events from Kafka into the Redis projection', () => {
  let config: AppConfig;
  let logs: CapturedLogs;
  let app: INestApplication;
  let kafka: TestKafka;
  let reader: ProjectionReader;

  /** Sends events in order in one request and remembers each task's last one. */
  async function produce(messages: Message[], compression?: CompressionTypes): Promise<void> {
    await kafka.send(config.kafka.topic, messages, compression);
    for (const message of messages) lastEvent.set(String(message.key), (message.value as Buffer | null) ?? null);
  }

  /** Waits until every given task holds its last event: exactly its bytes, or deleted. */
  async function expectProjected(taskIds: readonly string[], what: string): Promise<void> {
    let wrong: string[] = [];
    await eventually(
      what,
      async () => {
        const tasks = await reader.read(taskIds);
        wrong = taskIds.filter((taskId) => {
          const expected = lastEvent.get(taskId);
          const stored = tasks.get(taskId)?.value ?? null;
          return expected === null ? stored !== null : stored === null || !stored.equals(expected!);
        });
        return wrong.length === 0;
      },
      { timeoutMs: 60_000 },
    ).catch((error: Error) => {
      throw new Error(`${error.message}; still wrong: ${wrong.slice(0, 5).join(', ')} (${wrong.length})`);
    });
  }

  /** Waits until the group has committed every partition up to the end of the topic. */
  async function expectCommittedToEnd(groupId: string): Promise<void> {
    const end = await kafka.endOffsets(config.kafka.topic);
    await eventually(`group ${groupId} to commit every partition to its end`, async () => {
      const committed = await kafka.committedOffsets(groupId, config.kafka.topic);
      return [...end].every(([partition, offset]) => committed.get(partition) === offset);
    });
  }

  beforeAll(async () => {
    config = testConfig('ingest');
    logs = new CapturedLogs();
    app = await startIngestingApp(config, logs);
    kafka = await TestKafka.connect(config.kafka.brokers);
    reader = new ProjectionReader(config.redis);
  });

  // The suite shares one service and topic, but each test checks only the tasks it produced itself.
  beforeEach(() => lastEvent.clear());

  afterAll(async () => {
    await app?.close();
    await kafka?.close();
    await reader?.close();
  });

  it('projects many tasks with several updates each, across every partition: each task holds its last event byte for byte', async () => {
    const taskIds = Array.from({ length: 240 }, (_, index) => `multi-${index}`);
    for (let update = 0; update < 5; update += 1) {
      // Each round in a different order and in several requests, so partitions interleave differently.
      const round = [...taskIds].sort(() => Math.random() - 0.5);
      for (let start = 0; start < round.length; start += 80) {
        await produce(round.slice(start, start + 80).map((taskId) => ({ key: taskId, value: sampleTaskBytes(taskId, update) })));
      }
    }
    await expectProjected(taskIds, 'every task at its fifth update');

    const partitions = new Set([...(await reader.read(taskIds)).values()].map((task) => task.partition));
    expect([...partitions].sort((a, b) => a - b)).toEqual([0, 1, 2, 3]);
    await expectCommittedToEnd(config.kafka.groupId);
  });

  it('applies tombstones in order with the writes around them, and keeps a marker that expires', async () => {
    const id = (name: string) => `tomb-${name}`;
    await produce([
      { key: id('write-then-delete'), value: sampleTaskBytes(id('write-then-delete'), 1) },
      { key: id('write-then-delete'), value: null },
      { key: id('delete-then-write'), value: null },
      { key: id('delete-then-write'), value: sampleTaskBytes(id('delete-then-write'), 2) },
      { key: id('never-seen'), value: null },
      { key: id('later-delete'), value: sampleTaskBytes(id('later-delete'), 1) },
    ]);
    await expectProjected([id('write-then-delete'), id('delete-then-write'), id('never-seen'), id('later-delete')], 'the first tombstones');
    // A tombstone in a later batch deletes a task that is already stored.
    await produce([{ key: id('later-delete'), value: null }]);
    await expectProjected([id('later-delete')], 'the later tombstone');

    for (const name of ['write-then-delete', 'never-seen', 'later-delete']) {
      const ttl = await reader.ttl(id(name));
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(config.projection.tombstoneTtlSeconds * 1000);
    }
    expect(await reader.ttl(id('delete-then-write'))).toBe(-1);
  });

  it('a keyless event cannot reach the compacted source topic: the broker refuses it to the producer', async () => {
    // So "a missing key means the value's taskId" (and MISSING_KEY for a keyless tombstone, covered by
    // the decoder's unit tests) applies only to a pre-existing topic that is not compacted.
    const refusal = { name: 'KafkaJSProtocolError', type: 'INVALID_RECORD' };
    await expect(kafka.send(config.kafka.topic, [{ key: null, value: sampleTaskBytes('keyless', 0) }])).rejects.toMatchObject(refusal);
    await expect(kafka.send(config.kafka.topic, [{ key: null, value: null }])).rejects.toMatchObject(refusal);
  });

  it('dead-letters each kind of invalid event with its original key, value and headers, logs each once, and keeps consuming', async () => {
    // One event is over even the dead-letter topic's limit; the source topic must take it to consume it at all.
    await kafka.allowCompactedRecordsUpTo(config.kafka.topic, 4 * 1024 * 1024);
    const task = (fields: Record<string, unknown>) => Buffer.from(JSON.stringify({ ...SEED_TASK, ...fields }));
    const withoutStatus = { ...sampleTask('dlq-no-status') };
    delete withoutStatus.status;
    const cases: { name: string; key: string | null; value: Buffer | null; reason: string; compression?: CompressionTypes }[] = [
      { name: 'truncated JSON', key: 'dlq-json', value: Buffer.from('{"taskId":"dlq-json","status":'), reason: 'INVALID_JSON' },
      { name: 'not UTF-8', key: 'dlq-utf8', value: Buffer.concat([Buffer.from('{"taskId":"dlq-utf8","x":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]), reason: 'INVALID_JSON' },
      { name: 'an array', key: 'dlq-array', value: Buffer.from('[{"taskId":"dlq-array"}]'), reason: 'NOT_AN_OBJECT' },
      { name: 'a string', key: 'dlq-string', value: Buffer.from('"dlq-string"'), reason: 'NOT_AN_OBJECT' },
      {
        name: 'over 1 MiB (compressed by the producer, so the broker takes it)',
        key: 'dlq-large',
        value: sampleTaskBytes('dlq-large', 0, { outputData: { pad: 'secret-value '.repeat(MAX_VALUE_BYTES / 12) } }),
        reason: 'VALUE_TOO_LARGE',
        compression: Codec.GZIP,
      },
      { name: 'no status', key: 'dlq-no-status', value: Buffer.from(JSON.stringify(withoutStatus)), reason: 'INVALID_FIELDS' },
      { name: 'a status outside the enum', key: 'dlq-status', value: task({ taskId: 'dlq-status', status: 'DONE' }), reason: 'INVALID_FIELDS' },
      { name: 'a malformed taskId', key: 'dlq bad/id', value: task({ taskId: 'dlq bad/id' }), reason: 'INVALID_FIELDS' },
      { name: 'a taskId of 129 characters', key: 'd'.repeat(129), value: task({ taskId: 'd'.repeat(129) }), reason: 'INVALID_FIELDS' },
      { name: 'a number field as a string', key: 'dlq-type', value: task({ taskId: 'dlq-type', retryCount: '1' }), reason: 'INVALID_FIELDS' },
      { name: 'an object field as an array', key: 'dlq-object', value: task({ taskId: 'dlq-object', inputData: [] }), reason: 'INVALID_FIELDS' },
      { name: 'a key that differs from the taskId', key: 'dlq-key', value: task({ taskId: 'dlq-other' }), reason: 'KEY_MISMATCH' },
      { name: 'a tombstone whose key is no taskId', key: 'dlq bad key', value: null, reason: 'INVALID_KEY' },
    ];
    const huge = randomBytes(3 * 512 * 1024); // incompressible, over the DLQ topic's 1 MB limit even gzipped

    const sent: { name: string; key: string | null; value: Buffer | null; reason: string; partition: number; offset: number }[] = [];
    const valid: string[] = [];
    for (const [index, testCase] of cases.entries()) {
      const headers = { 'x-test-case': testCase.name, 'x-binary': Buffer.from([0, 1, 2, 255]) };
      const [metadata] = await kafka.send(config.kafka.topic, [{ key: testCase.key, value: testCase.value, headers }], testCase.compression);
      sent.push({ ...testCase, partition: metadata.partition, offset: Number(metadata.baseOffset) });
      // A valid event right behind each invalid one, on whatever partition its key lands on.
      const validId = `dlq-valid-${index}`;
      await produce([{ key: validId, value: sampleTaskBytes(validId, 1) }]);
      valid.push(validId);
    }
    const [hugeMetadata] = await kafka.send(config.kafka.topic, [{ key: 'dlq-huge', value: huge, headers: { 'x-test-case': 'huge' } }]);
    await produce([{ key: 'dlq-after', value: sampleTaskBytes('dlq-after', 1) }]);

    await expectProjected([...valid, 'dlq-after'], 'the valid events around the invalid ones');
    const letters = await kafka.readAll(config.kafka.dlqTopic, cases.length + 1);
    expect(letters).toHaveLength(cases.length + 1);

    for (const expected of sent) {
      const letter = letters.find(
        (candidate) =>
          headerText(candidate.headers, 'x-dlq-source-partition') === String(expected.partition) &&
          headerText(candidate.headers, 'x-dlq-source-offset') === String(expected.offset),
      );
      expect({ name: expected.name, found: letter !== undefined }).toEqual({ name: expected.name, found: true });
      expect(letter!.key === null ? null : letter!.key.toString()).toBe(expected.key);
      expect(letter!.value === null ? null : Buffer.compare(letter!.value, expected.value!)).toBe(expected.value === null ? null : 0);
      expect(headerText(letter!.headers, 'x-test-case')).toBe(expected.name);
      expect(letter!.headers?.['x-binary']).toEqual(Buffer.from([0, 1, 2, 255]));
      expect(headerText(letter!.headers, 'x-dlq-source-topic')).toBe(config.kafka.topic);
      expect(headerText(letter!.headers, 'x-dlq-reason')).toMatch(new RegExp(`^${expected.reason}: `));
    }

    // Too large for the dead-letter topic even compressed: it goes without its value, and says so.
    const hugeLetter = letters.find((letter) => headerText(letter.headers, 'x-test-case') === 'huge')!;
    expect(hugeLetter.key?.toString()).toBe('dlq-huge');
    expect(hugeLetter.value).toBeNull();
    expect(headerText(hugeLetter.headers, 'x-dlq-value-omitted')).toBe(`${huge.length} bytes`);
    expect(headerText(hugeLetter.headers, 'x-dlq-reason')).toMatch(/^VALUE_TOO_LARGE: /);
    expect(headerText(hugeLetter.headers, 'x-dlq-source-offset')).toBe(hugeMetadata.baseOffset);

    // Nothing else was dead-lettered, and each dead letter was logged once, at warn, without its
    // value, with where its event is as fields of the line.
    const dlqEnd = [...(await kafka.endOffsets(config.kafka.dlqTopic)).values()].reduce((sum, offset) => sum + offset, 0);
    expect(dlqEnd).toBe(cases.length + 1);
    for (const expected of [...sent, { partition: hugeMetadata.partition, offset: Number(hugeMetadata.baseOffset) }]) {
      const lines = logs.matching(new RegExp(`^dead-lettered ${config.kafka.topic} partition ${expected.partition} offset ${expected.offset}: `));
      expect(lines.map(({ level, fields }) => ({ level, fields }))).toEqual([
        { level: 'warn', fields: { topic: config.kafka.topic, partition: expected.partition, offset: String(expected.offset) } },
      ]);
    }
    expect(logs.matching(/secret-value/)).toEqual([]);
    expect(logs.matching(/dlq-other|dlq bad\/id/)).toEqual([]);
    await expectCommittedToEnd(config.kafka.groupId);
  });

  it('reads events compressed with gzip, snappy, lz4 and zstd by kafkajs', async () => {
    registerCompressionCodecs();
    const codecs = { gzip: Codec.GZIP, snappy: Codec.Snappy, lz4: Codec.LZ4, zstd: Codec.ZSTD };
    const taskIds: string[] = [];
    for (const [name, codec] of Object.entries(codecs)) {
      const ids = Array.from({ length: 20 }, (_, index) => `kafkajs-${name}-${index}`);
      taskIds.push(...ids);
      for (let update = 0; update < 2; update += 1) {
        await produce(ids.map((taskId) => ({ key: taskId, value: sampleTaskBytes(taskId, update) })), codec);
      }
    }
    await expectProjected(taskIds, 'the kafkajs-compressed tasks');
    const written = new Set(storedBatches(config.kafka.topic).filter((batch) => batch.producerId < 0n).map((batch) => batch.compression));
    expect([...written].filter((codec) => codec !== 'none').sort()).toEqual(['gzip', 'lz4', 'snappy', 'zstd']);
  });

  it("reads events compressed with gzip, snappy, lz4 and zstd by Kafka's Java client", async () => {
    const events: { compression: JavaCompression; key: Buffer; value: Buffer }[] = [];
    const taskIds: string[] = [];
    for (const compression of ['gzip', 'snappy', 'lz4', 'zstd'] as const) {
      for (let index = 0; index < 20; index += 1) {
        const taskId = `java-${compression}-${index}`;
        taskIds.push(taskId);
        for (let update = 0; update < 2; update += 1) {
          events.push({ compression, key: Buffer.from(taskId), value: sampleTaskBytes(taskId, update) });
        }
      }
    }
    const acknowledged = await produceWithJavaClient(config.kafka.brokers, config.kafka.topic, events);
    expect(acknowledged).toEqual({ gzip: 40, snappy: 40, lz4: 40, zstd: 40 });
    for (const event of events) lastEvent.set(event.key.toString(), event.value);

    await expectProjected(taskIds, 'the tasks the Java client produced');
    const written = new Set(storedBatches(config.kafka.topic).filter((batch) => batch.producerId >= 0n).map((batch) => batch.compression));
    expect([...written].sort()).toEqual(['gzip', 'lz4', 'snappy', 'zstd']);
  });

  it('a second consumer group re-consuming the whole topic from the earliest offset never moves a task backwards', async () => {
    // A history of its own: several updates of every task, in shuffled rounds and every codec, and
    // a tombstone for every tenth task, followed by a write for some of those.
    const taskIds = Array.from({ length: 200 }, (_, index) => `replay-${index}`);
    const codecs = [undefined, Codec.GZIP, Codec.Snappy, Codec.LZ4, Codec.ZSTD];
    for (let update = 0; update < 5; update += 1) {
      const round = [...taskIds].sort(() => Math.random() - 0.5);
      for (let start = 0; start < round.length; start += 50) {
        await produce(round.slice(start, start + 50).map((taskId) => ({ key: taskId, value: sampleTaskBytes(taskId, update) })), codecs[(update + start) % codecs.length]);
      }
    }
    const deleted = taskIds.filter((_, index) => index % 10 === 0);
    await produce(deleted.map((taskId) => ({ key: taskId, value: null })));
    await produce(deleted.filter((_, index) => index % 2 === 0).map((taskId) => ({ key: taskId, value: sampleTaskBytes(taskId, 5) })));
    await expectProjected(taskIds, 'every task at its last event before the replay');
    const watch = new ProjectionWatch(reader, taskIds);
    const replayConfig: AppConfig = {
      ...config,
      kafka: { ...config.kafka, groupId: `${config.kafka.groupId}.replay`, clientId: `${config.kafka.clientId}.replay` },
    };
    const replay = await startIngestingApp(replayConfig, new CapturedLogs());
    try {
      // Live updates keep arriving while the replay runs; both groups apply them.
      const live = taskIds.slice(1, 61);
      for (let update = 6; update < 9; update += 1) {
        await produce(live.map((taskId) => ({ key: taskId, value: sampleTaskBytes(taskId, update) })));
      }
      await expectCommittedToEnd(replayConfig.kafka.groupId);
      await expectCommittedToEnd(config.kafka.groupId);
      await expectProjected(taskIds, 'every task after the replay');
    } finally {
      await watch.stop();
      await replay.close();
    }
    expect(watch.regressions).toEqual([]);
    expect(watch.polls).toBeGreaterThan(5);
  });
});
