import { createRequire } from 'node:module';
import type { ICustomPartitioner, IHeaders, Message } from 'kafkajs';

/*
 * Two codecs of kafkajs 2.2.4 take time that grows with the square of their input, and both run
 * synchronously, so one event could hold the whole process (reads, heartbeats, every partition)
 * for minutes or hours:
 *
 * - Consuming: a record's headers are merged with an object spread per header; 1 MiB holds about
 *   150,000 small headers.
 * - Producing: the default partitioner's murmur2 keeps a 64-bit Long whose BigInt grows with the
 *   key; a dead letter keeps the key of its event.
 *
 * (How long kafkajs's own versions took: bench/RESULTS.md.)
 *
 * Both are replaced here by linear versions with the same results. And one record batch could stop
 * its partition for good: kafkajs decodes a fetched partition's batches in one function
 * (fetch/v4/decodeMessages.js) that fails whole when one batch cannot be read, and the fetch is
 * retried on the same bytes forever. `hardenKafkajsBatchDecoding` reads each batch on its own.
 *
 * kafkajs is pinned, and its internals are reached by path; the spec of this file checks they are
 * still there and agree.
 */

const require = createRequire(import.meta.url);

type Reader = (decoder: unknown) => unknown;
interface KafkajsDecoder {
  readVarIntArray(reader: Reader): unknown[];
}

const Decoder = require('kafkajs/src/protocol/decoder.js') as { prototype: KafkajsDecoder };
const decodeHeader = require('kafkajs/src/protocol/recordBatch/header/v0/decoder.js') as Reader;
const encodeRecord = require('kafkajs/src/protocol/recordBatch/record/v0/index.js') as (record: Message) => unknown;
const createPartitioner = require('kafkajs/src/producer/partitioners/legacy/partitioner.js') as (
  hash: (key: Buffer | string) => number,
) => ICustomPartitioner;

const RECORD_BATCH_MAGIC = 2;
type BatchDecoder = (decoder: KafkajsBatchDecoder) => Promise<{ records: unknown[] }>;
interface KafkajsBatchDecoder {
  readInt32(): number;
  readBytes(size: number): Buffer;
  canReadBytes(size: number): boolean;
  offset: number;
  buffer: Buffer;
}
const decodeMessagesPath = require.resolve('kafkajs/src/protocol/requests/fetch/v4/decodeMessages.js');
const recordBatchDecoder = require('kafkajs/src/protocol/recordBatch/v0/decoder.js') as BatchDecoder;
const messageSetDecoder = require('kafkajs/src/protocol/messageSet/decoder.js') as (decoder: unknown, size: number) => unknown;
/** Every fetch response decoder: v4 to v11 hold decodeMessages (some through an earlier version's module). */
const fetchResponsePaths = Array.from({ length: 12 }, (_, version) => require.resolve(`kafkajs/src/protocol/requests/fetch/v${version}/response.js`));

/** On the one record a batch that could not be read is delivered as: what it was and why. */
export const UNREADABLE_BATCH = Symbol.for('task-cache.kafkajs.unreadable-batch');

export interface UnreadableBatch {
  readonly firstOffset: string;
  readonly lastOffset: string;
  /** The records the batch says it holds. */
  readonly records: number;
  readonly reason: string;
}

/** The batch `message` stands for, when it is the placeholder of a batch that could not be read. */
export function unreadableBatchOf(message: object): UnreadableBatch | undefined {
  return (message as { [UNREADABLE_BATCH]?: UnreadableBatch })[UNREADABLE_BATCH];
}

/** Record batch v2: where the fields read here sit, from the batch's first byte. */
const AT = {
  firstOffset: 0,
  length: 8,
  afterLength: 12,
  magic: 16,
  attributes: 21,
  lastOffsetDelta: 23,
  firstTimestamp: 27,
  maxTimestamp: 35,
  producerId: 43,
  producerEpoch: 51,
  firstSequence: 53,
  records: 57,
  header: 61,
};
const TIMESTAMP_TYPE_FLAG = 0x8;
const TRANSACTIONAL_FLAG = 0x10;
const CONTROL_FLAG = 0x20;

/**
 * Makes kafkajs decode each fetched record batch on its own. A batch that cannot be read (it would
 * decompress beyond the limit, its compressed data is corrupt, a codec fails on it) no longer
 * fails the whole fetch: it is delivered as one record at the batch's last offset that carries
 * `UNREADABLE_BATCH` and no key, value or headers, so the consumer dead-letters it and moves past
 * it. Records are appended one by one (kafkajs spreads a batch's records into one call, which
 * overflows the stack at about 150,000 records; a compressed batch of that many small records is
 * about 100 KB). Idempotent.
 *
 * kafkajs's fetch response decoders take decodeMessages when they load, and kafkajs requires them
 * anew for every fetch request (protocol/requests/fetch/index.js): they are dropped from the
 * module cache here, so that every fetch from now on decodes with this version, whichever
 * consumer of the process fetched first.
 */
export function hardenKafkajsBatchDecoding(): void {
  require(decodeMessagesPath);
  const cached = require.cache[decodeMessagesPath]!;
  if (cached.exports === decodeMessagesOneBatchAtATime) return;
  cached.exports = decodeMessagesOneBatchAtATime;
  for (const path of fetchResponsePaths) delete require.cache[path];
}

/** kafkajs's fetch/v4/decodeMessages.js, reading each batch on its own. */
async function decodeMessagesOneBatchAtATime(decoder: KafkajsBatchDecoder): Promise<unknown> {
  const messagesSize = decoder.readInt32();
  if (messagesSize <= 0 || !decoder.canReadBytes(messagesSize)) return [];
  const messagesBuffer = decoder.readBytes(messagesSize);
  const messagesDecoder = new (Decoder as unknown as new (buffer: Buffer) => KafkajsBatchDecoder)(messagesBuffer);
  if (messagesBuffer.length <= AT.magic || messagesBuffer.readInt8(AT.magic) !== RECORD_BATCH_MAGIC) {
    return messageSetDecoder(messagesDecoder, messagesSize);
  }
  const records: unknown[] = [];
  // A batch's fixed fields take 61 bytes; kafkajs reads on while 49 remain.
  while (messagesDecoder.canReadBytes(49)) {
    const start = messagesDecoder.offset;
    try {
      const batch = await recordBatchDecoder(messagesDecoder);
      for (const record of batch.records) records.push(record);
    } catch (error) {
      // The tail of a fetch may hold a partial batch (how maxBytes works): kafkajs stops there.
      if ((error as Error).name === 'KafkaJSPartialMessageError') break;
      const placeholder = placeholderOf(messagesBuffer, start, error);
      // Its fixed fields unreadable too: nothing to point at; kafkajs's own failure stands.
      if (placeholder === undefined) throw error;
      records.push(placeholder);
      messagesDecoder.offset = start + AT.afterLength + messagesBuffer.readInt32BE(start + AT.length);
    }
  }
  return records;
}

/** The one record a batch that could not be read is delivered as, or undefined if its fixed fields are cut off. */
function placeholderOf(buffer: Buffer, start: number, error: unknown): object | undefined {
  if (start + AT.header > buffer.length) return undefined;
  // A length that does not reach past the fixed fields, or runs past the fetch, points nowhere to go on from.
  const length = buffer.readInt32BE(start + AT.length);
  if (length < AT.header - AT.afterLength || start + AT.afterLength + length > buffer.length) return undefined;
  const attributes = buffer.readInt16BE(start + AT.attributes);
  const firstOffset = buffer.readBigInt64BE(start + AT.firstOffset);
  const lastOffset = firstOffset + BigInt(buffer.readInt32BE(start + AT.lastOffsetDelta));
  const unreadable: UnreadableBatch = {
    firstOffset: firstOffset.toString(),
    lastOffset: lastOffset.toString(),
    records: buffer.readInt32BE(start + AT.records),
    reason: error instanceof Error ? error.message : String(error),
  };
  return {
    magicByte: RECORD_BATCH_MAGIC,
    attributes: 0,
    timestamp: buffer.readBigInt64BE(start + AT.maxTimestamp).toString(),
    offset: unreadable.lastOffset,
    key: null,
    value: null,
    headers: {},
    isControlRecord: false,
    // The batch's own transaction and control flags, so that kafkajs still filters a batch of an
    // aborted transaction, and sees a control batch for what it is.
    batchContext: {
      firstOffset: unreadable.firstOffset,
      firstTimestamp: buffer.readBigInt64BE(start + AT.firstTimestamp).toString(),
      partitionLeaderEpoch: buffer.readInt32BE(start + AT.afterLength),
      inTransaction: (attributes & TRANSACTIONAL_FLAG) !== 0,
      isControlBatch: (attributes & CONTROL_FLAG) !== 0,
      lastOffsetDelta: buffer.readInt32BE(start + AT.lastOffsetDelta),
      producerId: buffer.readBigInt64BE(start + AT.producerId).toString(),
      producerEpoch: buffer.readInt16BE(start + AT.producerEpoch),
      firstSequence: buffer.readInt32BE(start + AT.firstSequence),
      maxTimestamp: buffer.readBigInt64BE(start + AT.maxTimestamp).toString(),
      timestampType: (attributes & TIMESTAMP_TYPE_FLAG) !== 0 ? 1 : 0,
    },
    [UNREADABLE_BATCH]: unreadable,
  };
}

/** Marks kafkajs's decoder as patched, for every copy of this module (a Symbol.for is process-wide). */
const PATCHED = Symbol.for('task-cache.kafkajs.linear-header-decoding');

/**
 * Makes kafkajs decode record headers in linear time. Idempotent, also across copies of this
 * module; call it before any consumer fetches. The decoded shape is kafkajs's own (one value, or
 * an array of them for a repeated name), except that a header named like an `Object.prototype`
 * member (`constructor`, `toString`) holds its own value alone, not that member in front of it.
 */
export function hardenKafkajsHeaderDecoding(): void {
  const prototype = Decoder.prototype as KafkajsDecoder & { [PATCHED]?: true };
  if (prototype[PATCHED]) return;
  const readVarIntArray = prototype.readVarIntArray;
  prototype.readVarIntArray = function (this: KafkajsDecoder, reader: Reader): unknown[] {
    const items = readVarIntArray.call(this, reader);
    // kafkajs merges the headers with items.reduce(...spread...); this array answers with the merge.
    if (reader === decodeHeader && !Object.hasOwn(items, 'reduce')) {
      Object.defineProperty(items, 'reduce', { value: mergeHeaders, configurable: true });
    }
    return items;
  };
  prototype[PATCHED] = true;
}

function mergeHeaders(this: { key: string; value: Buffer | null }[]): IHeaders {
  const merged: Record<string, Buffer | null | (Buffer | null)[]> = {};
  for (const { key, value } of this) {
    if (!Object.hasOwn(merged, key)) {
      // defineProperty: a plain assignment to __proto__ would set the prototype instead.
      Object.defineProperty(merged, key, { value, writable: true, enumerable: true, configurable: true });
    } else {
      const previous = merged[key];
      if (Array.isArray(previous)) previous.push(value);
      else merged[key] = [previous, value];
    }
  }
  return merged as IHeaders;
}

/**
 * Kafka's murmur2 (the Java client's `Utils.murmur2`) in 32-bit arithmetic: the same partition as
 * kafkajs's `DefaultPartitioner` and the Java client for every key, in time linear in its length.
 */
export function murmur2(key: Buffer | string): number {
  const data = Buffer.isBuffer(key) ? key : Buffer.from(String(key));
  const m = 0x5bd1e995;
  const length = data.length;
  let h = 0x9747b28c ^ length;
  const whole = length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const rest = length & 3;
  if (rest === 3) h ^= data[whole + 2] << 16;
  if (rest >= 2) h ^= data[whole + 1] << 8;
  if (rest >= 1) h = Math.imul(h ^ data[whole], m);
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h;
}

/** kafkajs's `DefaultPartitioner`, hashing keys with the linear `murmur2`. */
export const LinearDefaultPartitioner: ICustomPartitioner = createPartitioner(murmur2);

/** True when kafkajs can encode `message` as a record: a send that includes one it cannot fails whole. */
export function encodesAsRecord(message: Message): boolean {
  try {
    encodeRecord(message);
    return true;
  } catch {
    return false;
  }
}
