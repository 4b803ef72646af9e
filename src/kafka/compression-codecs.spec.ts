import { randomBytes } from 'node:crypto';
import kafkajs from 'kafkajs';
import lz4 from 'lz4js';
import { hash as xxh32 } from 'lz4js/xxh32.js';
import { lz4Frame, registerCompressionCodecs } from './compression-codecs.js';

const { CompressionCodecs, CompressionTypes } = kafkajs;

/** Compressible like a batch of tasks, with some noise so blocks are not trivial. */
function taskLikeBytes(size: number): Buffer {
  const text = JSON.stringify({ taskType: 'WAIT', status: 'IN_PROGRESS', inputData: { noise: randomBytes(64).toString('hex') } });
  return Buffer.from(text.repeat(Math.ceil(size / text.length)).slice(0, size));
}

describe('compression codecs', () => {
  beforeAll(() => registerCompressionCodecs());

  it.each([
    ['gzip', CompressionTypes.GZIP],
    ['snappy', CompressionTypes.Snappy],
    ['lz4', CompressionTypes.LZ4],
    ['zstd', CompressionTypes.ZSTD],
  ])('%s round-trips a batch', async (_name, type) => {
    const codec = CompressionCodecs[type as keyof typeof CompressionCodecs]();
    const input = taskLikeBytes(50_000);
    const compressed: Buffer = await codec.compress({ buffer: input });
    expect(compressed.length).toBeLessThan(input.length);
    expect((await codec.decompress(compressed)).equals(input)).toBe(true);
  });

  it('writes LZ4 frames with independent blocks and a valid header checksum, as brokers require', () => {
    const frame = lz4Frame(taskLikeBytes(10_000));
    expect(frame.readUInt32LE(0)).toBe(0x184d2204);
    expect(frame[4] & 0x20).toBe(0x20);
    expect(frame[6]).toBe((xxh32(0, frame, 4, 2) >> 8) & 0xff);
  });

  it('splits LZ4 input above 4 MiB into blocks each readable on its own', () => {
    const input = taskLikeBytes(4 * 1024 * 1024 + 200_000);
    const frame = lz4Frame(input);
    expect(Buffer.from(lz4.decompress(frame)).equals(input)).toBe(true);
    // Decode the second block from its own bytes alone: a reference into the first block would fail.
    const firstSize = frame.readUInt32LE(7) & 0x7fffffff;
    const second = 7 + 4 + firstSize;
    const secondSize = frame.readUInt32LE(second);
    expect(secondSize >>> 31).toBe(0); // compressed
    const alone = Buffer.alloc(200_000);
    expect(lz4.decompressBlock(frame, alone, second + 4, secondSize, 0)).toBe(200_000);
    expect(alone.equals(input.subarray(4 * 1024 * 1024))).toBe(true);
  });

  it('compresses zstd batches concurrently without corrupting each other', async () => {
    const inputs = Array.from({ length: 8 }, (_, index) => taskLikeBytes(20_000 + index * 1000));
    const outputs = await Promise.all(inputs.map((buffer) => CompressionCodecs[CompressionTypes.ZSTD]().compress({ buffer })));
    const restored = await Promise.all(outputs.map((buffer) => CompressionCodecs[CompressionTypes.ZSTD]().decompress(buffer)));
    expect(restored.map((buffer, index) => buffer.equals(inputs[index]))).toEqual(inputs.map(() => true));
  });
});
