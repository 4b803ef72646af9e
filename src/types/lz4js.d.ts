declare module 'lz4js' {
  const lz4: {
    compress(source: Uint8Array, maxSize?: number): Uint8Array;
    decompress(source: Uint8Array, maxSize?: number): Uint8Array;
    compressBound(length: number): number;
    /** Decompresses one block of source[start, start+length) into target at targetStart; returns the end index. */
    decompressBlock(source: Uint8Array, target: Uint8Array, start: number, length: number, targetStart: number): number;
    /** Compresses source[start, start+length) into target; returns the compressed size (0: incompressible). */
    compressBlock(source: Uint8Array, target: Uint8Array, start: number, length: number, hashTable: Uint32Array): number;
  };
  export default lz4;
}

declare module 'lz4js/xxh32.js' {
  export function hash(seed: number, bytes: Uint8Array, start: number, length: number): number;
}
