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
 * Both are replaced here by linear versions with the same results. kafkajs is pinned, and its
 * internals are reached by path; the spec of this file checks they are still there and agree.
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
