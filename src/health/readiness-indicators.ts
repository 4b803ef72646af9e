import { Injectable } from '@nestjs/common';
import { HealthIndicatorFunction, HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { IngestState } from '../kafka/ingest-state.js';
import { StartupCatchUp } from '../kafka/startup-catch-up.js';
import { DrainState } from '../lifecycle/drain-state.js';
import { ProjectionGenerations } from '../projection/projection-generations.js';
import { pingWithin } from '../redis/ping-within.js';
import { RedisConnection } from '../redis/redis-connection.js';

/**
 * Bound on Redis's answer to the readiness PING. Under HAProxy's `timeout check` (1 s,
 * deploy/haproxy/haproxy.cfg), so a slow Redis makes the check answer 503 naming redis instead of
 * timing out with nothing said.
 */
export const REDIS_PING_TIMEOUT_MS = 500;

/**
 * What /health/ready checks: whether this instance answers reads correctly right now. Each check
 * is cheap (one PING, two field reads) and none touches the read path.
 *  - `drain`: not shutting down;
 *  - `redis`: Redis answers a PING within REDIS_PING_TIMEOUT_MS;
 *  - `projection`: the generation reads are served from is known, and the projection has caught up
 *    with the source topic as it was when this instance started (cold start, StartupCatchUp); if
 *    Kafka has not answered since the start (`retrying`, `failed`), that cannot be known and reads
 *    are served from what Redis holds; the body also shows a rebuild under way (or the last one);
 *  - `kafka`: the consumer's phase, reported and never `down`: reads are served from Redis, so
 *    Kafka being unreachable (`retrying`) or misconfigured (`failed`) makes it `degraded`, which
 *    the body shows and the status (200) does not.
 */
@Injectable()
export class ReadinessIndicators {
  constructor(
    private readonly indicators: HealthIndicatorService,
    private readonly drain: DrainState,
    private readonly redis: RedisConnection,
    private readonly generations: ProjectionGenerations,
    private readonly ingest: IngestState,
    private readonly catchUp: StartupCatchUp,
  ) {}

  all(): HealthIndicatorFunction[] {
    return [() => this.draining(), () => this.redisPing(), () => this.projection(), () => this.kafka()];
  }

  draining(): HealthIndicatorResult<'drain'> {
    const check = this.indicators.check('drain');
    return this.drain.draining ? check.down({ message: 'shutting down: finishing the requests in flight' }) : check.up();
  }

  async redisPing(): Promise<HealthIndicatorResult<'redis'>> {
    const check = this.indicators.check('redis');
    try {
      return check.up({ responseTimeMs: Math.round(await pingWithin(this.redis.client, REDIS_PING_TIMEOUT_MS)) });
    } catch (error) {
      return check.down({ message: error instanceof Error ? error.message : String(error) });
    }
  }

  projection(): HealthIndicatorResult<'projection'> {
    const check = this.indicators.check('projection');
    let generation: number;
    try {
      generation = this.generations.currentGeneration();
    } catch (error) {
      return check.down({ message: error instanceof Error ? error.message : String(error) });
    }
    // A rebuild under way (or the last one) is reported, and never makes the instance unready:
    // reads are served from the current generation throughout.
    const { building, previous, rebuild } = this.generations.snapshot();
    const pointer = { generation, ...(building !== undefined && { building }), ...(previous !== undefined && { previous }), ...(rebuild && { rebuild }) };
    const { phase, behind } = this.catchUp.snapshot();
    if (phase === 'caught-up') return check.up({ ...pointer, catchUp: phase });
    if (phase === 'catching-up') {
      return check.down({ ...pointer, catchUp: phase, behind, message: `catching up: ${behind} offsets behind the source topic's high watermarks at start` });
    }
    const kafka = this.ingest.snapshot().phase;
    if (kafka === 'retrying' || kafka === 'failed') return check.up({ ...pointer, catchUp: 'unknown: Kafka has not answered since the start' });
    return check.down({ ...pointer, catchUp: phase, message: "waiting for the source topic's high watermarks at start" });
  }

  kafka(): HealthIndicatorResult<'kafka'> {
    const check = this.indicators.check('kafka');
    const { phase, since, error, partitions } = this.ingest.snapshot();
    const data = { phase, since, partitions, ...(error !== undefined && { error }) };
    return phase === 'retrying' || phase === 'failed' ? check.degraded(data) : check.up(data);
  }
}
