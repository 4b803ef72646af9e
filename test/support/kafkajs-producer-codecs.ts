import { createRequire } from 'node:module';
import kafkajs from 'kafkajs';
import { registerCompressionCodecs } from '../../src/kafka/compression-codecs.js';

const require = createRequire(import.meta.url);
const xxh32 = require('lz4js/xxh32.js') as { hash(seed: number, bytes: Uint8Array, start: number, length: number): number };

const FLAG_VERSION_1 = 0x40;
const FLAG_BLOCK_INDEPENDENCE = 0x20;

/**
 * Lets kafkajs in a test process produce LZ4 and zstd that a Kafka broker accepts. Only the
 * producing side is adjusted; decompression stays the service's own, which is what tests check.
 *
 * Two faults of the service's codecs (src/kafka/compression-codecs.ts) when compressing:
 * - LZ4: lz4js leaves the frame's block-independence flag unset, and brokers refuse the batch
 *   ("Dependent block stream is unsupported"). lz4js writes one block per 4 MiB, so below that the
 *   block is independent: setting the flag and recomputing the header checksum is enough.
 * - zstd: kafkajs builds a codec per batch, and each instance initialises the WASM module again;
 *   batches compressed at once (several partitions in one send) then corrupt each other's output
 *   (the broker answers "Unknown frame descriptor"). One shared instance initialises once.
 */
export function useBrokerCompatibleProducerCodecs(): void {
  registerCompressionCodecs();
  const { CompressionCodecs, CompressionTypes } = kafkajs;

  const serviceLz4 = CompressionCodecs[CompressionTypes.LZ4];
  CompressionCodecs[CompressionTypes.LZ4] = () => {
    const codec = serviceLz4();
    return {
      compress: async (encoder: { buffer: Buffer }) => {
        if (encoder.buffer.length > 4 * 1024 * 1024) throw new Error('lz4js writes dependent blocks above 4 MiB');
        const frame: Buffer = await codec.compress(encoder);
        frame[4] = FLAG_VERSION_1 | FLAG_BLOCK_INDEPENDENCE;
        frame[6] = (xxh32.hash(0, frame, 4, 2) >> 8) & 0xff;
        return frame;
      },
      decompress: codec.decompress,
    };
  };

  const sharedZstd = CompressionCodecs[CompressionTypes.ZSTD]();
  CompressionCodecs[CompressionTypes.ZSTD] = () => sharedZstd;
}
