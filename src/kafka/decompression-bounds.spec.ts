import { randomBytes } from 'node:crypto';
import kafkajs from 'kafkajs';
import * as snappy from 'snappyjs';
import { registerCompressionCodecs } from './compression-codecs.js';
import { lz4OutputBound, MAX_DECOMPRESSED_BATCH_BYTES, snappyOutputBound, UnreadableBatchError, zstdOutputBound } from './decompression-bounds.js';

const { CompressionCodecs, CompressionTypes } = kafkajs;
const codecs = [
  ['gzip', CompressionTypes.GZIP],
  ['snappy', CompressionTypes.Snappy],
  ['lz4', CompressionTypes.LZ4],
  ['zstd', CompressionTypes.ZSTD],
] as const;
const codecOf = (type: number) => CompressionCodecs[type as keyof typeof CompressionCodecs]();

/** Like a batch of task JSON: compressible, with noise. */
function taskLikeBytes(size: number): Buffer {
  const text = JSON.stringify({ taskType: 'WAIT', status: 'IN_PROGRESS', inputData: { noise: randomBytes(64).toString('hex') } });
  return Buffer.from(text.repeat(Math.ceil(size / text.length)).slice(0, size));
}

describe('decompression bounds', () => {
  beforeAll(() => registerCompressionCodecs());

  // Zeros just over the limit: each codec's compressed form is a few kilobytes to a few hundred.
  const bomb = Buffer.alloc(MAX_DECOMPRESSED_BATCH_BYTES + 1024 * 1024);

  it.each(codecs)('%s refuses a batch that decompresses beyond the limit, before producing it', async (_name, type) => {
    const codec = codecOf(type);
    const compressed: Buffer = await codec.compress({ buffer: bomb });
    expect(compressed.length).toBeLessThan(bomb.length / 20);
    await expect(codec.decompress(compressed)).rejects.toThrow(UnreadableBatchError);
  }, 60_000);

  it.each(codecs)('%s reads a batch of 8 MiB, and one exactly at the limit', async (_name, type) => {
    const codec = codecOf(type);
    for (const input of [taskLikeBytes(8 * 1024 * 1024), Buffer.alloc(MAX_DECOMPRESSED_BATCH_BYTES, 0x61)]) {
      const compressed: Buffer = await codec.compress({ buffer: input });
      expect((await codec.decompress(compressed)).equals(input)).toBe(true);
    }
  }, 60_000);

  it('bounds close to the real size for ordinary data', async () => {
    const input = taskLikeBytes(3 * 1024 * 1024);
    const bounds = {
      lz4: lz4OutputBound(await codecOf(CompressionTypes.LZ4).compress({ buffer: input })),
      zstd: zstdOutputBound(await codecOf(CompressionTypes.ZSTD).compress({ buffer: input })),
      snappy: snappyOutputBound(await codecOf(CompressionTypes.Snappy).compress({ buffer: input })),
    };
    for (const bound of Object.values(bounds)) {
      expect(bound).toBeGreaterThanOrEqual(input.length);
      expect(bound).toBeLessThanOrEqual(input.length + 4 * 1024 * 1024);
    }
  });

  it('refuses a zstd frame that declares a window beyond the limit, which the decoder would allocate', () => {
    // Magic, a descriptor with no single segment, and a window descriptor of 2^(10+21) = 2 GiB.
    const frame = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 21 << 3, 0x01, 0x00, 0x00]);
    expect(() => zstdOutputBound(frame)).toThrow(/window of 2147483648 bytes/);
  });

  it('refuses a zstd frame that declares a content size beyond the limit, whatever its window, and takes a 128 MiB window (level 22)', () => {
    // Not single-segment, a 1 KiB window, a 4-byte content size of 2 GiB, then a last raw block of 1 byte.
    const declared = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x80, 0x00, 0x00, 0x00, 0x00, 0x80, 0x09, 0x00, 0x00, 0x61]);
    expect(() => zstdOutputBound(declared)).toThrow(/declared content size of 2147483648 bytes/);
    // A 2^27 window, as `zstd --ultra -22` streams declare, with the same block.
    const level22 = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 17 << 3, 0x09, 0x00, 0x00, 0x61]);
    expect(zstdOutputBound(level22)).toBe(1);
  });

  it('reads xerial-framed snappy (the Java client) of many chunks into one buffer', async () => {
    const chunks = Array.from({ length: 2000 }, (_, index) => taskLikeBytes(1500 + (index % 7)));
    const header = Buffer.from([130, 83, 78, 65, 80, 80, 89, 0, 0, 0, 0, 1, 0, 0, 0, 1]);
    const framed = Buffer.concat([
      header,
      ...chunks.flatMap((chunk) => {
        const compressed = Buffer.from(snappy.compress(chunk));
        const size = Buffer.alloc(4);
        size.writeUInt32BE(compressed.length);
        return [size, compressed];
      }),
    ]);
    const decoded: Buffer = await codecOf(CompressionTypes.Snappy).decompress(framed);
    expect(decoded.equals(Buffer.concat(chunks))).toBe(true);
  });

  it('does not trust the content size an LZ4 frame declares', async () => {
    const frame: Buffer = await codecOf(CompressionTypes.LZ4).compress({ buffer: taskLikeBytes(100_000) });
    expect(lz4OutputBound(frame)).toBe(4 * 1024 * 1024);
  });

  it.each([
    ['zstd, cut off', (data: Buffer) => zstdOutputBound(data.subarray(0, data.length - 3)), CompressionTypes.ZSTD],
    ['lz4, cut off', (data: Buffer) => lz4OutputBound(data.subarray(0, data.length - 3)), CompressionTypes.LZ4],
    ['zstd, no magic', (data: Buffer) => zstdOutputBound(Buffer.concat([Buffer.from([1, 2, 3, 4]), data])), CompressionTypes.ZSTD],
    ['snappy, a length of 6 bytes', () => snappyOutputBound(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x01])), CompressionTypes.Snappy],
  ])('calls broken framing unreadable: %s', async (_name, bound, type) => {
    const data: Buffer = await codecOf(type).compress({ buffer: taskLikeBytes(200_000) });
    expect(() => bound(data)).toThrow(UnreadableBatchError);
  });
});
