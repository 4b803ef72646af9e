declare module 'snappyjs' {
  /** Raw snappy: the uncompressed length as a varint, then the compressed data. */
  export function compress(input: Uint8Array): Uint8Array;
  export function uncompress(input: Uint8Array): Uint8Array;
}
