import { Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { RedisConfig } from '../config/app-config.js';
import { RedisConnection } from '../redis/redis-connection.js';
import { ProjectionKeys } from './projection-keys.js';
import { ProjectionUnavailableError } from './projection-unavailable.error.js';

const REFRESH_INTERVAL_MS = 1000;

/**
 * Tracks the generation pointer: `current` is what reads use; `building` (during a rebuild) is
 * written by live ingest too. Cached in process and refreshed in the background, so a read costs
 * no extra round trip for it.
 */
@Injectable()
export class ProjectionGenerations implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(ProjectionGenerations.name);
  private readonly keys: ProjectionKeys;
  private current: number | undefined;
  private building: number | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly redis: RedisConnection,
    config: RedisConfig,
  ) {
    this.keys = new ProjectionKeys(config.keyPrefix);
  }

  async onModuleInit(): Promise<void> {
    await this.refresh().catch((error: Error) => this.logger.warn(`generation pointer not read yet: ${error.message}`));
    this.timer = setInterval(() => void this.refresh().catch(() => undefined), REFRESH_INTERVAL_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** The generation reads are served from. */
  currentGeneration(): number {
    if (this.current === undefined) throw new ProjectionUnavailableError('generation pointer not read yet');
    return this.current;
  }

  /** The generations every applied event must reach: current, and building while a rebuild runs. */
  writeGenerations(): number[] {
    const current = this.currentGeneration();
    return this.building !== undefined && this.building !== current ? [current, this.building] : [current];
  }

  async refresh(): Promise<void> {
    const client = this.redis.client;
    let [current, building] = await client.hmget(this.keys.generationPointer, 'current', 'building');
    if (current === null) {
      // The first instance to start sets generation 1; later ones keep what is there.
      await client.hsetnx(this.keys.generationPointer, 'current', '1');
      [current, building] = await client.hmget(this.keys.generationPointer, 'current', 'building');
    }
    const next = generationOf(current);
    // A pointer that is not a generation must not send reads and writes to made-up keys.
    if (next === undefined) throw new Error(`generation pointer ${this.keys.generationPointer} holds no generation: current=${current}`);
    if (this.current !== undefined && next !== this.current) this.logger.log(`serving generation ${next} (was ${this.current})`);
    this.current = next;
    this.building = generationOf(building);
  }
}

function generationOf(value: string | null): number | undefined {
  return value !== null && /^[1-9][0-9]{0,8}$/.test(value) ? Number(value) : undefined;
}
