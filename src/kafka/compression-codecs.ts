import * as zstdWasm from '@bokuweb/zstd-wasm';
import { decompress as zstdDecompress } from 'fzstd';
import kafkajs from 'kafkajs';
import lz4 from 'lz4js';
import * as snappy from 'snappyjs';
import { hash as xxh32 } from 'lz4js/xxh32.js';
import { promisify } from 'node:util';
import { gzip, unzip } from 'node:zlib';
import { lz4OutputBound, MAX_DECOMPRESSED_BATCH_BYTES, snappyBlocks, tooLarge, UnreadableBatchError, zstdOutputBound } from './decompression-bounds.js';

interface KafkaCodec {
  compress(encoder: { buffer: Buffer }): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}

const LZ4_MAGIC = 0x184d2204;
const LZ4_FLG = 0x40 | 0x20; // version 01, independent blocks: brokers refuse dependent ones
const LZ4_BD = 0x70; // 4 MiB maximum block size
const LZ4_MAX_BLOCK = 4 * 1024 * 1024;
const LZ4_UNCOMPRESSED = 0x80000000;

/**
 * Writes an LZ4 frame with independent blocks, as Kafka's clients do. lz4js's own frame writer
 * shares its match table across blocks and leaves the independence flag unset, which brokers
 * refuse ("Dependent block stream is unsupported"); here each block starts with a fresh table.
 */
export function lz4Frame(source: Buffer): Buffer {
  const blocks: Buffer[] = [];
  const header = Buffer.alloc(7);
  header.writeUInt32LE(LZ4_MAGIC, 0);
  header[4] = LZ4_FLG;
  header[5] = LZ4_BD;
  header[6] = (xxh32(0, header, 4, 2) >> 8) & 0xff;
  blocks.push(header);
  const scratch = Buffer.alloc(lz4.compressBound(Math.min(source.length, LZ4_MAX_BLOCK)));
  for (let start = 0; start < source.length; start += LZ4_MAX_BLOCK) {
    const length = Math.min(LZ4_MAX_BLOCK, source.length - start);
    const size = lz4.compressBlock(source, scratch, start, length, new Uint32Array(1 << 16));
    const sizeField = Buffer.alloc(4);
    if (size === 0 || size >= length) {
      sizeField.writeUInt32LE((LZ4_UNCOMPRESSED | length) >>> 0, 0);
      blocks.push(sizeField, source.subarray(start, start + length));
    } else {
      sizeField.writeUInt32LE(size, 0);
      blocks.push(sizeField, Buffer.from(scratch.subarray(0, size)));
    }
  }
  blocks.push(Buffer.alloc(4)); // end mark
  return Buffer.concat(blocks);
}

/**
 * LZ4 frame format, as Kafka's clients write it for record batches v2. Pure JS, no native build.
 * The output buffer is sized from the frame's blocks, never from the content size it declares.
 */
const lz4Codec = (): KafkaCodec => ({
  compress: async (encoder) => lz4Frame(encoder.buffer),
  decompress: async (buffer) => Buffer.from(lz4.decompress(buffer, lz4OutputBound(buffer))),
});

const gzipAsync = promisify(gzip);
const unzipAsync = promisify(unzip);

/** gzip (kafkajs's own, bounded): zlib stops at the limit instead of growing its output without end. */
const gzipCodec = (): KafkaCodec => ({
  compress: async (encoder) => gzipAsync(encoder.buffer),
  decompress: async (buffer) => {
    try {
      return await unzipAsync(buffer, { maxOutputLength: MAX_DECOMPRESSED_BATCH_BYTES });
    } catch (error) {
      if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge('gzip', 'output stopped at the limit');
      throw error;
    }
  },
});

/**
 * Snappy: raw blocks, as kafkajs clients write them, or the xerial framing of the Java client,
 * whose chunks are decoded one by one into one buffer sized from their declared lengths (joining
 * them one at a time, as kafkajs-snappy does, takes time that grows with the square of their
 * number: 12,000 chunks in under 1 MB held the process 35 s).
 */
const snappyCodec = (): KafkaCodec => ({
  compress: async (encoder) => Buffer.from(snappy.compress(encoder.buffer)),
  decompress: async (buffer) => {
    const { blocks, total } = snappyBlocks(buffer);
    const output = Buffer.allocUnsafe(total);
    let at = 0;
    for (const block of blocks) {
      const decoded = snappy.uncompress(block);
      if (at + decoded.length > total) throw new UnreadableBatchError('snappy block longer than it declares');
      output.set(decoded, at);
      at += decoded.length;
    }
    return output.subarray(0, at);
  },
});

// One WASM instance for the process: kafkajs builds a codec per batch, and initialising the module
// again while another batch compresses corrupts that batch's output.
let zstdReady: Promise<void> | undefined;

/**
 * Zstandard. fzstd decodes streaming frames without a content size (as the Java client writes
 * them); compression, which only the dead-letter path, tests and the sample producer could use,
 * goes through the zstd WASM build.
 */
const zstdCodec = (): KafkaCodec => ({
  compress: async (encoder) => {
    await (zstdReady ??= zstdWasm.init());
    return Buffer.from(zstdWasm.compress(encoder.buffer, 3));
  },
  decompress: async (buffer) => {
    zstdOutputBound(buffer);
    return Buffer.from(zstdDecompress(buffer));
  },
});

// kafkajs is CommonJS without detectable named exports: take its values from the default export.
const { CompressionCodecs, CompressionTypes } = kafkajs;

let registered = false;

/**
 * Registers gzip, snappy, lz4 and zstd with kafkajs, each refusing to decompress a batch beyond
 * MAX_DECOMPRESSED_BATCH_BYTES (an UnreadableBatchError; the fetch guard turns it into a dead
 * letter for the batch). Idempotent.
 */
export function registerCompressionCodecs(): void {
  if (registered) return;
  CompressionCodecs[CompressionTypes.GZIP] = gzipCodec;
  CompressionCodecs[CompressionTypes.Snappy] = snappyCodec;
  CompressionCodecs[CompressionTypes.LZ4] = lz4Codec;
  CompressionCodecs[CompressionTypes.ZSTD] = zstdCodec;
  registered = true;
}
