/**
 * Which generations of the projection a process reads and writes. A running instance follows the
 * generation pointer (`ProjectionGenerations`); a rebuild writes the one generation it builds.
 */
export abstract class GenerationSource {
  /** The generation reads are served from. Throws `ProjectionUnavailableError` when not known. */
  abstract currentGeneration(): number;

  /**
   * The generations every applied event must reach, newest first: a generation is written before
   * any older one, so whatever a reader saw in an older generation is already in the newer one it
   * moves to. Throws `ProjectionUnavailableError` when they cannot be known to be right.
   */
  abstract writeGenerations(): number[];
}
