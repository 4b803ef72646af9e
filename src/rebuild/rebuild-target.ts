import { Injectable } from '@nestjs/common';
import { GenerationSource } from '../projection/generation-source.js';
import { ProjectionUnavailableError } from '../projection/projection-unavailable.error.js';
import { RebuildLock } from './rebuild-lock.js';

/**
 * The rebuild's writes: the one generation it builds, and only while its lock is confirmed. A
 * rebuild cut off from Redis (or that lost its lock) stops writing; ingest retries the batch.
 */
@Injectable()
export class RebuildTarget extends GenerationSource {
  private target: { generation: number; lock: RebuildLock } | undefined;

  /** Writes go to `generation` from now on, while `lock` is confirmed. */
  writeTo(generation: number, lock: RebuildLock): void {
    this.target = { generation, lock };
  }

  currentGeneration(): number {
    throw new Error('a rebuild does not serve reads');
  }

  writeGenerations(): number[] {
    if (!this.target) throw new ProjectionUnavailableError('no generation is being built');
    const { generation, lock } = this.target;
    if (!lock.confirmed) throw new ProjectionUnavailableError(`the rebuild lock was last confirmed ${lock.sinceConfirmedMs} ms ago; writes wait until it is renewed`);
    return [generation];
  }
}
