/*
 * How large a compressed record batch can get once decompressed, read from its framing alone,
 * before any of it is decompressed. A few kilobytes of zstd or LZ4 can declare gigabytes: a batch
 * the broker accepts (its size limit applies to the compressed bytes) could otherwise exhaust the
 * consumer's memory, on every instance, on every redelivery.
 *
 * Each bound is an upper bound of what the decoder will produce, from the block sizes the frame
 * declares; for ordinary data it is close to the real size (every block but the last is full).
 */

/** What a batch may decompress to. A batch over it is dead-lettered whole (README, "Ingest"). */
export const MAX_DECOMPRESSED_BATCH_BYTES = 64 * 1024 * 1024;

/** A compressed record batch that would decompress to more than the limit, or whose framing is broken. */
export class UnreadableBatchError extends Error {
  override readonly name = 'UnreadableBatchError';
}

export function tooLarge(codec: string, bytes: number | string): UnreadableBatchError {
  return new UnreadableBatchError(`${codec} data declares more than ${MAX_DECOMPRESSED_BATCH_BYTES} bytes once decompressed (${bytes})`);
}

function broken(codec: string, what: string): UnreadableBatchError {
  return new UnreadableBatchError(`${codec} framing is broken: ${what}`);
}

const ZSTD_MAGIC = 0xfd2fb528;
const ZSTD_MAX_BLOCK = 128 * 1024;
/**
 * The largest window accepted: libzstd's own default decoder limit (2^27). The level-22 streaming
 * output of Kafka's Java client declares 128 MiB; the decoder allocates the window up front, but
 * only the pages written are ever resident.
 */
const ZSTD_MAX_WINDOW = 2 ** 27;

/**
 * Zstandard (RFC 8878): the sum of every frame's blocks' largest outputs (a raw or RLE block
 * states its size; a compressed one yields at most min(window, 128 KiB)). A declared content size
 * and the window are bounded too, since the decoder allocates them up front.
 */
export function zstdOutputBound(data: Uint8Array): number {
  let at = 0;
  let total = 0;
  const need = (bytes: number) => {
    if (at + bytes > data.length) throw broken('zstd', 'frame ends early');
  };
  while (at < data.length) {
    need(4);
    const magic = readU32LE(data, at);
    if ((magic & 0xfffffff0) === 0x184d2a50) {
      // A skippable frame: its size, then that many bytes of nothing.
      need(8);
      at += 8 + readU32LE(data, at + 4);
      continue;
    }
    if (magic !== ZSTD_MAGIC) throw broken('zstd', 'no frame magic');
    need(5);
    const descriptor = data[at + 4];
    at += 5;
    const singleSegment = (descriptor >> 5) & 1;
    const hasChecksum = (descriptor >> 2) & 1;
    const dictionaryIdBytes = [0, 1, 2, 4][descriptor & 3];
    const contentSizeFlag = descriptor >> 6;
    const contentSizeBytes = contentSizeFlag === 0 ? singleSegment : 1 << contentSizeFlag;
    let window = 0;
    if (!singleSegment) {
      need(1);
      const exponent = 10 + (data[at] >> 3);
      const base = 2 ** exponent;
      window = base + (base / 8) * (data[at] & 7);
      at += 1;
    }
    need(dictionaryIdBytes + contentSizeBytes);
    at += dictionaryIdBytes;
    if (singleSegment) window = readUIntLE(data, at, contentSizeBytes) + (contentSizeBytes === 2 ? 256 : 0);
    // A declared content size is what the decoder allocates, single segment or not.
    const contentSize = contentSizeBytes > 0 ? readUIntLE(data, at, contentSizeBytes) + (contentSizeBytes === 2 ? 256 : 0) : 0;
    at += contentSizeBytes;
    if (contentSize > MAX_DECOMPRESSED_BATCH_BYTES) throw tooLarge('zstd', `a declared content size of ${contentSize} bytes`);
    if (window > ZSTD_MAX_WINDOW) throw tooLarge('zstd', `a window of ${window} bytes`);
    const blockMaximum = Math.min(window, ZSTD_MAX_BLOCK);
    for (let last = 0; !last; ) {
      need(3);
      const header = data[at] | (data[at + 1] << 8) | (data[at + 2] << 16);
      at += 3;
      last = header & 1;
      const type = (header >> 1) & 3;
      const size = header >>> 3;
      if (type === 3) throw broken('zstd', 'reserved block type');
      if (type !== 2 && size > blockMaximum) throw broken('zstd', 'block over its maximum size');
      total += type === 2 ? blockMaximum : size;
      if (total > MAX_DECOMPRESSED_BATCH_BYTES) throw tooLarge('zstd', `at least ${total} bytes`);
      const consumed = type === 1 ? 1 : size;
      need(consumed);
      at += consumed;
    }
    if (hasChecksum) {
      need(4);
      at += 4;
    }
  }
  return total;
}

const LZ4_MAGIC = 0x184d2204;
const LZ4_BLOCK_MAXIMUM: Record<number, number> = { 4: 64 * 1024, 5: 256 * 1024, 6: 1024 * 1024, 7: 4 * 1024 * 1024 };

/**
 * The first LZ4 frame (the one lz4js decodes): the sum of its blocks' largest outputs, from the
 * frame's maximum block size, ignoring the content size it may declare, which nothing checks.
 */
export function lz4OutputBound(data: Uint8Array): number {
  let at = 0;
  const need = (bytes: number) => {
    if (at + bytes > data.length) throw broken('lz4', 'frame ends early');
  };
  need(7);
  if (readU32LE(data, 0) !== LZ4_MAGIC) throw broken('lz4', 'no frame magic');
  const flags = data[4];
  const blockMaximum = LZ4_BLOCK_MAXIMUM[(data[5] >> 4) & 7];
  if ((flags >> 6) !== 1 || blockMaximum === undefined) throw broken('lz4', 'unsupported frame descriptor');
  const blockChecksum = (flags >> 4) & 1;
  at = 6 + ((flags >> 3) & 1 ? 8 : 0) + (flags & 1 ? 4 : 0) + 1;
  let total = 0;
  for (;;) {
    need(4);
    const field = readU32LE(data, at);
    at += 4;
    if (field === 0) return total;
    const size = field & 0x7fffffff;
    const uncompressed = field >>> 31;
    if (size > blockMaximum) throw broken('lz4', 'block over its maximum size');
    total += uncompressed ? size : blockMaximum;
    if (total > MAX_DECOMPRESSED_BATCH_BYTES) throw tooLarge('lz4', `at least ${total} bytes`);
    need(size + (blockChecksum ? 4 : 0));
    at += size + (blockChecksum ? 4 : 0);
  }
}

const XERIAL_HEADER = Buffer.from([130, 83, 78, 65, 80, 80, 89, 0]);
const XERIAL_CHUNKS_AT = 16;

/**
 * Snappy, raw or in the xerial framing the Java client writes: its raw blocks, and what they add up
 * to once decompressed (each raw block starts with its uncompressed length, which the decoder
 * allocates).
 */
export function snappyBlocks(data: Buffer): { blocks: Buffer[]; total: number } {
  if (data.length < XERIAL_CHUNKS_AT || !data.subarray(0, 8).equals(XERIAL_HEADER)) {
    return { blocks: [data], total: snappyBlockLength(data, 0) };
  }
  const blocks: Buffer[] = [];
  let total = 0;
  for (let at = XERIAL_CHUNKS_AT; at + 4 <= data.length; ) {
    const size = data.readUInt32BE(at);
    at += 4;
    if (at + size > data.length) throw broken('snappy', 'chunk ends early');
    total += snappyBlockLength(data, at);
    if (total > MAX_DECOMPRESSED_BATCH_BYTES) throw tooLarge('snappy', `at least ${total} bytes`);
    blocks.push(data.subarray(at, at + size));
    at += size;
  }
  return { blocks, total };
}

/** What snappy data decompresses to at most; see `snappyBlocks`. */
export function snappyOutputBound(data: Buffer): number {
  return snappyBlocks(data).total;
}

function snappyBlockLength(data: Uint8Array, at: number): number {
  let length = 0;
  for (let shift = 0; shift <= 28; shift += 7, at += 1) {
    if (at >= data.length) throw broken('snappy', 'length ends early');
    length += (data[at] & 0x7f) * 2 ** shift;
    if (data[at] < 0x80) {
      if (length > MAX_DECOMPRESSED_BATCH_BYTES) throw tooLarge('snappy', `${length} bytes`);
      return length;
    }
  }
  throw broken('snappy', 'length over 5 bytes');
}

function readU32LE(data: Uint8Array, at: number): number {
  return (data[at] | (data[at + 1] << 8) | (data[at + 2] << 16) | (data[at + 3] << 24)) >>> 0;
}

function readUIntLE(data: Uint8Array, at: number, bytes: number): number {
  let value = 0;
  for (let index = bytes - 1; index >= 0; index -= 1) value = value * 256 + data[at + index];
  return value;
}
