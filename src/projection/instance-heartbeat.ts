/** What a running instance says of itself every second ({prefix}instance:{id}, with a TTL). */
export interface InstanceHeartbeat {
  readonly id: string;
  /** The generation it reads from. */
  readonly current: number;
  /** The generations it writes, newest first. */
  readonly writes: readonly number[];
  /** When it started reading `current` (its clock, ms). */
  readonly currentSince: number;
  /** When it last read the pointer (its clock, ms). */
  readonly at: number;
}

/** A rebuild's phase and progress, as instances report it in /health/ready. */
export interface RebuildSummary {
  readonly generation: number;
  readonly phase: RebuildPhase;
  /** Of the events to replay, while replaying. */
  readonly percent?: number;
  /** When the rebuild last wrote its state (ms, the rebuild's clock). */
  readonly updatedAt: number;
}

export type RebuildPhase =
  /** Announced the generation; waiting for every instance to write it too. */
  | 'announcing'
  /** Replaying the source topic into the building generation. */
  | 'replaying'
  /** Reads moved to the new generation; waiting for every instance to follow. */
  | 'flipped'
  /** Deleting the generation reads left. */
  | 'cleaning'
  | 'done'
  /** Stopped by `abort`, or dropping the building generation on its behalf. */
  | 'aborting'
  | 'aborted'
  /** Stopped (signal, lost lock, error) before the flip; `rebuild` again resumes it. */
  | 'interrupted';
