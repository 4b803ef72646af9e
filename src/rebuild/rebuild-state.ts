import { RebuildPhase } from '../projection/instance-heartbeat.js';

/**
 * A rebuild's state, kept in the pointer hash (field `rebuild`): what `status` shows, what a rerun
 * resumes from, and (generation, phase, percent, updatedAt) what instances report.
 */
export interface RebuildState {
  readonly generation: number;
  readonly phase: RebuildPhase;
  /** The consumer group replaying the source topic into `generation`. */
  readonly group: string;
  /** The source topic's high watermarks once every instance wrote `generation`: the replay's end. */
  readonly target?: Record<string, string>;
  /** The first offset of each partition then: the replay's start. */
  readonly start?: Record<string, string>;
  /** Offsets to replay, and replayed so far (the group's committed offsets). */
  readonly total?: number;
  readonly replayed?: number;
  readonly percent?: number;
  readonly eventsPerSecond?: number;
  /** Times by the rebuild's clock (ms), except `flippedAt` (Redis's). */
  readonly startedAt: number;
  readonly updatedAt: number;
  readonly flippedAt?: number;
  /** The generation reads left at the flip, deleted after it. */
  readonly left?: number;
  /** From the flip until every instance read the new generation, as the rebuild saw it (ms). */
  readonly propagationMs?: number;
  readonly error?: string;
}
