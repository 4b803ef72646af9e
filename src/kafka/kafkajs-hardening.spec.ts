import { createRequire } from 'node:module';
import fc from 'fast-check';
import kafkajs from 'kafkajs';
import { registerCompressionCodecs } from './compression-codecs.js';
import { MAX_DECOMPRESSED_BATCH_BYTES } from './decompression-bounds.js';
import { hardenKafkajsBatchDecoding, hardenKafkajsHeaderDecoding, LinearDefaultPartitioner, murmur2, unreadableBatchOf } from './kafkajs-hardening.js';

const require = createRequire(import.meta.url);
type Codec = { new (buffer?: Buffer): Codec; buffer: Buffer } & Record<string, (...args: unknown[]) => Codec>;
const Encoder = require('kafkajs/src/protocol/encoder.js') as Codec;
const Decoder = require('kafkajs/src/protocol/decoder.js') as Codec;
const decodeRecord = require('kafkajs/src/protocol/recordBatch/record/v0/decoder.js') as (decoder: Codec, context: object) => { headers: Record<string, unknown> };
const kafkajsMurmur2 = require('kafkajs/src/producer/partitioners/default/murmur2.js') as (key: Buffer | string) => number;
const kafkajsPartitioner = (require('kafkajs/src/producer/partitioners/default/index.js') as () => (args: object) => number)();

/** A record as any client may write it, decoded by kafkajs's own record decoder. */
function decodedHeaders(headers: readonly { name: string; value: Buffer | null }[]): Record<string, unknown> {
  const body = new Encoder()
    .writeInt8(0)
    .writeVarLong(0)
    .writeVarInt(0)
    .writeVarIntBytes(Buffer.from('k'))
    .writeVarIntBytes(Buffer.from('v'))
    .writeVarIntArray(headers.map(({ name, value }) => new Encoder().writeVarIntString(name).writeVarIntBytes(value)));
  return decodeRecord(new Decoder(body.buffer), { firstOffset: '0', firstTimestamp: '0', magicByte: 2 }).headers;
}

/** What the headers mean: each name's own values, in order. */
function expected(headers: readonly { name: string; value: Buffer | null }[]): Map<string, (Buffer | null)[]> {
  const byName = new Map<string, (Buffer | null)[]>();
  for (const { name, value } of headers) byName.set(name, [...(byName.get(name) ?? []), value]);
  return byName;
}

const encodeRecord = require('kafkajs/src/protocol/recordBatch/record/v0/index.js') as (record: object) => Codec;
const { RecordBatch: encodeRecordBatch } = require('kafkajs/src/protocol/recordBatch/v0/index.js') as { RecordBatch: (batch: object) => Promise<Codec> };
type DecodedRecord = { offset: string; value: Buffer | null };

/** A fetched partition's record batches as a fetch response carries them: their size, then the batches. */
async function fetchedBatches(batches: { firstOffset: number; values: Buffer[]; compression?: number }[]): Promise<Codec> {
  const encoded = await Promise.all(
    batches.map(({ firstOffset, values, compression = 0 }) =>
      encodeRecordBatch({
        compression,
        firstOffset: BigInt(firstOffset),
        lastOffsetDelta: values.length - 1,
        records: values.map((value, offsetDelta) => encodeRecord({ offsetDelta, key: Buffer.from(`task-${firstOffset + offsetDelta}`), value })),
      }),
    ),
  );
  const messages = Buffer.concat(encoded.map((batch) => batch.buffer));
  return new Decoder(new Encoder().writeInt32(messages.length).writeBuffer(messages).buffer);
}

describe('kafkajs hardening', () => {
  beforeAll(() => hardenKafkajsHeaderDecoding());

  describe('record batch decoding', () => {
    // kafkajs's own, taken before the hardening. (That a fetch response decoder loaded before the
    // hardening is dropped is checked in Node itself, by test/app.e2e-spec.ts: jest's module cache
    // ignores deletions.)
    const kafkajsDecodeMessages = require('kafkajs/src/protocol/requests/fetch/v4/decodeMessages.js') as (decoder: Codec) => Promise<DecodedRecord[]>;
    let decodeMessages: (decoder: Codec) => Promise<DecodedRecord[]>;
    beforeAll(() => {
      registerCompressionCodecs();
      hardenKafkajsBatchDecoding();
      hardenKafkajsBatchDecoding();
      decodeMessages = require('kafkajs/src/protocol/requests/fetch/v4/decodeMessages.js') as typeof decodeMessages;
    });

    it('replaces the decoder the fetch responses load, once', () => {
      expect(decodeMessages).not.toBe(kafkajsDecodeMessages);
      expect(decodeMessages.name).toBe('decodeMessagesOneBatchAtATime');
    });

    it('delivers a batch that cannot be read as one record at its last offset, and reads the batches around it', async () => {
      const bombValues = Array.from({ length: 65 }, () => Buffer.alloc(1024 * 1024 + 1));
      const fetched = () =>
        fetchedBatches([
          { firstOffset: 0, values: [Buffer.from('a'), Buffer.from('b')] },
          { firstOffset: 2, values: bombValues, compression: kafkajs.CompressionTypes.GZIP },
          { firstOffset: 67, values: [Buffer.from('c')], compression: kafkajs.CompressionTypes.ZSTD },
        ]);
      await expect(kafkajsDecodeMessages(await fetched())).rejects.toThrow(/more than 67108864 bytes/);

      const records = await decodeMessages(await fetched());
      expect(records.map(({ offset, value }) => [offset, value?.toString() ?? null])).toEqual([
        ['0', 'a'],
        ['1', 'b'],
        ['66', null],
        ['67', 'c'],
      ]);
      expect(records.map((record) => unreadableBatchOf(record))).toEqual([
        undefined,
        undefined,
        { firstOffset: '2', lastOffset: '66', records: 65, reason: `gzip data declares more than ${MAX_DECOMPRESSED_BATCH_BYTES} bytes once decompressed (output stopped at the limit)` },
        undefined,
      ]);
    }, 60_000);

    it('reads a batch of 200,000 records, which kafkajs spreads into one call and overflows the stack with', async () => {
      const fetched = () => fetchedBatches([{ firstOffset: 0, values: Array.from({ length: 200_000 }, () => Buffer.from('x')), compression: kafkajs.CompressionTypes.GZIP }]);
      await expect(kafkajsDecodeMessages(await fetched())).rejects.toThrow(RangeError);
      const records = await decodeMessages(await fetched());
      expect(records).toHaveLength(200_000);
      expect(records.at(-1)?.offset).toBe('199999');
    }, 60_000);

    it("keeps an unreadable batch's transaction flags, so kafkajs still filters a batch of an aborted transaction", async () => {
      const fetched = await fetchedBatches([{ firstOffset: 0, values: [Buffer.from('a')], compression: kafkajs.CompressionTypes.GZIP }]);
      const at = 4;
      // Transactional, producer 7; its compressed records replaced by bytes gzip cannot read.
      fetched.buffer.writeInt16BE(fetched.buffer.readInt16BE(at + 21) | 0x10, at + 21);
      fetched.buffer.writeBigInt64BE(7n, at + 43);
      fetched.buffer.fill(0x42, at + 61 + 4);
      const [record] = (await decodeMessages(fetched)) as unknown as { batchContext: { inTransaction: boolean; producerId: string } }[];
      expect(unreadableBatchOf(record)).toBeDefined();
      expect(record.batchContext).toMatchObject({ inTransaction: true, producerId: '7' });
    });

    it('fails as kafkajs does, rather than going round, when an unreadable batch gives a length that points nowhere', async () => {
      const fetched = await fetchedBatches([{ firstOffset: 0, values: [Buffer.from('a')], compression: kafkajs.CompressionTypes.GZIP }]);
      fetched.buffer.writeInt32BE(-12, 4 + 8);
      await expect(decodeMessages(fetched)).rejects.toThrow();
    });

    it('stops at a partial batch at the end of the fetch, as kafkajs does', async () => {
      const whole = await fetchedBatches([
        { firstOffset: 0, values: [Buffer.from('a')] },
        { firstOffset: 1, values: [Buffer.from('b')] },
      ]);
      const size = whole.buffer.readInt32BE(0);
      const cut = new Decoder(Buffer.concat([Buffer.from([0, 0, 0, 0]), whole.buffer.subarray(4, whole.buffer.length - 5)]));
      cut.buffer.writeInt32BE(size - 5, 0);
      const records = await decodeMessages(cut);
      expect(records.map(({ offset }) => offset)).toEqual(['0']);
    });
  });

  describe('header decoding', () => {
    it("decodes kafkajs's shape: one value, or an array for a repeated name, with null for a header with no value", () => {
      const headers = decodedHeaders([
        { name: 'a', value: Buffer.from('1') },
        { name: 'b', value: null },
        { name: 'a', value: Buffer.from('2') },
      ]);
      expect(headers).toEqual({ a: [Buffer.from('1'), Buffer.from('2')], b: null });
    });

    it.each(['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'])('a header named %s holds its own value alone, as an own property', (name) => {
      const headers = decodedHeaders([{ name, value: Buffer.from('mine') }]);
      expect(Object.hasOwn(headers, name)).toBe(true);
      expect(headers[name]).toEqual(Buffer.from('mine'));
      expect(Object.getPrototypeOf(headers)).toBe(Object.prototype);
    });

    it('property: every name keeps exactly its own values in order', () => {
      const header = fc.record({
        name: fc.oneof(fc.constantFrom('constructor', '__proto__', 'toString', 'a', 'b'), fc.string({ maxLength: 6 })),
        value: fc.option(fc.uint8Array({ maxLength: 8 }).map((array) => Buffer.from(array)), { nil: null }),
      });
      fc.assert(
        fc.property(fc.array(header, { maxLength: 20 }), (headers) => {
          const decoded = decodedHeaders(headers);
          const wanted = expected(headers);
          expect(Object.keys(decoded).sort()).toEqual([...wanted.keys()].map((name) => Buffer.from(name).toString()).sort());
          for (const [name, values] of wanted) {
            const got = decoded[Buffer.from(name).toString()];
            expect(values.length === 1 ? [got] : got).toEqual(values);
          }
        }),
        { numRuns: 500 },
      );
    });

    it('installs once, however often it is called', () => {
      const patched = (Decoder as unknown as { prototype: { readVarIntArray: unknown } }).prototype.readVarIntArray;
      hardenKafkajsHeaderDecoding();
      expect((Decoder as unknown as { prototype: { readVarIntArray: unknown } }).prototype.readVarIntArray).toBe(patched);
      expect(decodedHeaders([{ name: 'a', value: Buffer.from('1') }])).toEqual({ a: Buffer.from('1') });
    });

    it('decodes 100,000 headers: the merge does one step per header', () => {
      // kafkajs's own merge copies every earlier header for each one: 5 * 10^9 copies here.
      const headers = Array.from({ length: 100_000 }, (_, index) => ({ name: `h${index % 50_000}`, value: Buffer.from('v') }));
      const decoded = decodedHeaders(headers);
      expect(Object.keys(decoded)).toHaveLength(50_000);
      expect(decoded.h0).toEqual([Buffer.from('v'), Buffer.from('v')]);
    });
  });

  describe('murmur2', () => {
    it("equals kafkajs's murmur2 (and so the Java client's) for any key", () => {
      fc.assert(
        fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }).map((array) => Buffer.from(array)), fc.string({ maxLength: 40 })), (key) => {
          expect(murmur2(key)).toBe(kafkajsMurmur2(key));
        }),
        { numRuns: 2000 },
      );
    });

    it('matches the Java client on known keys', () => {
      // Values of org.apache.kafka.common.utils.Utils.murmur2 for these UTF-8 keys.
      expect(murmur2('21')).toBe(-973932308);
      expect(murmur2('foobar')).toBe(-790332482);
      expect(murmur2('a-little-bit-long-string')).toBe(-985981536);
      expect(murmur2('a-little-bit-longer-string')).toBe(-1486304829);
      expect(murmur2('lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8')).toBe(-58897971);
      expect(murmur2('abc')).toBe(479470107);
    });

    it('hashes a 1.5 MiB key', () => {
      expect(Number.isInteger(murmur2(Buffer.alloc(1536 * 1024, 7)))).toBe(true);
    });
  });

  it("LinearDefaultPartitioner chooses kafkajs DefaultPartitioner's partition for keyed messages", () => {
    const partitionMetadata = Array.from({ length: 12 }, (_, partitionId) => ({ partitionId, leader: 1 }));
    const ours = LinearDefaultPartitioner();
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 40 }), (key) => {
        const args = { topic: 't', partitionMetadata, message: { key, value: null } };
        expect(ours(args as never)).toBe(kafkajsPartitioner(args));
      }),
    );
  });
});
