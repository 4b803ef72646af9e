/** A task as the projection holds it: the produced bytes and the version they came with. */
export interface StoredTask {
  readonly value: Buffer;
  /** `<partition>-<offset>` of the event that wrote `value`; stable across rebuilds. */
  readonly version: string;
}
