declare module 'lz4js' {
  const lz4: {
    compress(source: Uint8Array, maxSize?: number): Uint8Array;
    decompress(source: Uint8Array, maxSize?: number): Uint8Array;
  };
  export default lz4;
}
