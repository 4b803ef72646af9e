import { createRequire } from 'node:module';
import fc from 'fast-check';
import { hardenKafkajsHeaderDecoding, LinearDefaultPartitioner, murmur2 } from './kafkajs-hardening.js';

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

describe('kafkajs hardening', () => {
  beforeAll(() => hardenKafkajsHeaderDecoding());

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
