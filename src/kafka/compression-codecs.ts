import * as zstdWasm from '@bokuweb/zstd-wasm';
import { decompress as zstdDecompress } from 'fzstd';
import kafkajs from 'kafkajs';
import SnappyCodec from 'kafkajs-snappy';
import lz4 from 'lz4js';

interface KafkaCodec {
  compress(encoder: { buffer: Buffer }): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}

/** LZ4 frame format, as Kafka's clients write it for record batches v2. Pure JS, no native build. */
const lz4Codec = (): KafkaCodec => ({
  compress: async (encoder) => Buffer.from(lz4.compress(encoder.buffer)),
  decompress: async (buffer) => Buffer.from(lz4.decompress(buffer)),
});

/**
 * Zstandard. fzstd decodes streaming frames without a content size (as the Java client writes
 * them); compression, which only tests and the sample producer use, goes through the zstd WASM build.
 */
const zstdCodec = (): KafkaCodec => {
  let ready: Promise<void> | undefined;
  return {
    compress: async (encoder) => {
      await (ready ??= zstdWasm.init());
      return Buffer.from(zstdWasm.compress(encoder.buffer, 3));
    },
    decompress: async (buffer) => Buffer.from(zstdDecompress(buffer)),
  };
};

// kafkajs is CommonJS without detectable named exports: take its values from the default export.
const { CompressionCodecs, CompressionTypes } = kafkajs;

let registered = false;

/** Registers snappy, lz4 and zstd with kafkajs (gzip is built in). Idempotent. */
export function registerCompressionCodecs(): void {
  if (registered) return;
  CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec;
  CompressionCodecs[CompressionTypes.LZ4] = lz4Codec;
  CompressionCodecs[CompressionTypes.ZSTD] = zstdCodec;
  registered = true;
}
