import { Injectable } from '@nestjs/common';
import { Gauge } from 'prom-client';
import { IngestPhase, IngestState } from '../kafka/ingest-state.js';
import { DrainState } from '../lifecycle/drain-state.js';
import { RebuildPhase } from '../projection/instance-heartbeat.js';
import { ProjectionGenerations } from '../projection/projection-generations.js';
import { pingWithin } from '../redis/ping-within.js';
import { RedisConnection } from '../redis/redis-connection.js';
import { TaskCacheMetrics } from './task-cache-metrics.js';

/** A scrape's PING is bounded as readiness's is: a stalled Redis reads as unreachable, and the scrape still answers. */
const SCRAPE_PING_TIMEOUT_MS = 500;

const INGEST_PHASES: readonly IngestPhase[] = ['starting', 'provisioning', 'joining', 'consuming', 'retrying', 'failed', 'stopped'];
const REBUILD_PHASES: readonly RebuildPhase[] = ['announcing', 'replaying', 'flipped', 'cleaning', 'done', 'aborting', 'aborted', 'interrupted'];
const GENERATION_ROLES = ['current', 'building', 'previous'] as const;

/**
 * Gauges of the instance's state, read when Prometheus scrapes rather than kept up to date: Redis
 * reachability (a PING), the Kafka consumer's phase, the drain, the generation pointer and a
 * rebuild's progress as the pointer reports it. Registered in the service's registry; the rebuild
 * command has none of them.
 */
@Injectable()
export class InstanceGauges {
  constructor(metrics: TaskCacheMetrics, redis: RedisConnection, ingest: IngestState, drain: DrainState, generations: ProjectionGenerations) {
    const registers = [metrics.registry];
    new Gauge({
      name: 'taskcache_redis_up',
      help: `Whether Redis answered a PING within ${SCRAPE_PING_TIMEOUT_MS} ms when scraped (1) or not (0)`,
      registers,
      async collect() {
        this.set(await pingWithin(redis.client, SCRAPE_PING_TIMEOUT_MS).then(
          () => 1,
          () => 0,
        ));
      },
    });
    new Gauge({
      name: 'taskcache_ingest_phase',
      help: "The Kafka consumer's phase: 1 for the phase it is in, 0 for the others (failed: stopped on an error that will not pass)",
      labelNames: ['phase'],
      registers,
      collect() {
        const { phase } = ingest.snapshot();
        for (const each of INGEST_PHASES) this.set({ phase: each }, each === phase ? 1 : 0);
      },
    });
    new Gauge({
      name: 'taskcache_draining',
      help: 'Whether the instance is draining before it stops (1) or not (0)',
      registers,
      collect() {
        this.set(drain.draining ? 1 : 0);
      },
    });
    new Gauge({
      name: 'taskcache_projection_generation',
      help: 'The projection generations this instance uses: current (reads), building (a rebuild writing it too), previous (left by a flip, still written)',
      labelNames: ['role'],
      registers,
      collect() {
        this.reset();
        const snapshot = generations.snapshot();
        for (const role of GENERATION_ROLES) {
          const generation = snapshot[role];
          if (generation !== undefined) this.set({ role }, generation);
        }
      },
    });
    new Gauge({
      name: 'taskcache_rebuild_phase',
      help: 'The phase of the rebuild under way (or the last one) as the generation pointer reports it: 1 for its phase, 0 for the others; absent when there has been none',
      labelNames: ['phase'],
      registers,
      collect() {
        this.reset();
        const { rebuild } = generations.snapshot();
        if (rebuild) for (const phase of REBUILD_PHASES) this.set({ phase }, phase === rebuild.phase ? 1 : 0);
      },
    });
    new Gauge({
      name: 'taskcache_rebuild_progress_ratio',
      help: 'The replayed share (0 to 1) of the events the rebuild of a generation replays, as the generation pointer reports it; 1 once it has flipped; absent when there has been none',
      labelNames: ['generation'],
      registers,
      collect() {
        this.reset();
        const { rebuild } = generations.snapshot();
        if (!rebuild) return;
        const labels = { generation: rebuild.generation };
        if (rebuild.phase === 'flipped' || rebuild.phase === 'cleaning' || rebuild.phase === 'done') this.set(labels, 1);
        else if (rebuild.percent !== undefined) this.set(labels, rebuild.percent / 100);
      },
    });
  }
}
