import { IngestState } from '../../src/kafka/ingest-state.js';
import { DrainState } from '../../src/lifecycle/drain-state.js';
import { InstanceGauges } from '../../src/metrics/instance-gauges.js';
import { TaskCacheMetrics } from '../../src/metrics/task-cache-metrics.js';
import { ProjectionGenerations } from '../../src/projection/projection-generations.js';
import { RedisConnection } from '../../src/redis/redis-connection.js';

/** A series name a scrape of the service can return, and what its labels can be. */
export interface ExportedSeries {
  /** Its labels, Prometheus's target labels (job, instance) included. */
  readonly labels: ReadonlySet<string>;
  /**
   * The values a label takes when the service reports every one of them at each scrape (the phase
   * and role gauges), so that a matcher on a value the service never reports is caught.
   */
  readonly values: ReadonlyMap<string, ReadonlySet<string>>;
}

/** Labels Prometheus attaches to every scraped series. */
export const TARGET_LABELS = ['job', 'instance'] as const;

/** Series Prometheus writes itself for every target. */
const SCRAPE_SERIES = ['up'];

/** Label values of gauges that report each of them at every scrape (the others are counted as they happen). */
const ENUMERATED: ReadonlyMap<string, string> = new Map([
  ['taskcache_ingest_phase', 'phase'],
  ['taskcache_rebuild_phase', 'phase'],
  ['taskcache_projection_generation', 'role'],
]);

/**
 * Every series the service exports, read from its real definitions: the registry of
 * `TaskCacheMetrics` with process metrics on (as with METRICS_PORT set) and the `InstanceGauges`
 * registered in it over fakes of what they read. A metric's labels are those it declares
 * (prom-client's `labelNames`) and those its series carry. Histograms and summaries are expanded into the
 * series Prometheus stores (`_bucket` with `le`, `_sum`, `_count`; a summary's `quantile`).
 */
export async function exportedMetrics(): Promise<ReadonlyMap<string, ExportedSeries>> {
  const metrics = new TaskCacheMetrics({ port: 0 });
  const redis = { client: { ping: () => Promise.resolve('PONG') } } as unknown as RedisConnection;
  const generations = {
    snapshot: () => ({ current: 3, building: 4, previous: 2, rebuild: { generation: 4, phase: 'replaying', percent: 50, updatedAt: 0 } }),
  } as unknown as ProjectionGenerations;
  new InstanceGauges(metrics, redis, new IngestState(), new DrainState(), generations);
  // The read histogram is the service's own (no labelNames): one read makes it report its labels.
  metrics.readDuration.observe('/tasks/{taskId}', 200, 0.001);

  const exported = new Map<string, ExportedSeries>();
  for (const metric of await metrics.registry.getMetricsAsJSON()) {
    // prom-client's metrics declare their labels; any metric says them in the series it reports.
    const declared = (metrics.registry.getSingleMetric(metric.name) as unknown as { labelNames?: unknown }).labelNames;
    const reported = metric.values.flatMap((value) => Object.keys(value.labels)).filter((label) => label !== 'le' && label !== 'quantile');
    if (!Array.isArray(declared) && metric.values.length === 0) {
      throw new Error(`${metric.name} declares no labelNames and reported no series: exercise it above so that its labels are known`);
    }
    const labels = [...((declared as string[] | undefined) ?? []), ...reported, ...TARGET_LABELS];
    const values = new Map<string, Set<string>>();
    const enumerated = ENUMERATED.get(metric.name);
    if (enumerated !== undefined) {
      values.set(enumerated, new Set(metric.values.map((value) => String(value.labels[enumerated]))));
      if (values.get(enumerated)!.size < 2) throw new Error(`${metric.name} reported no ${enumerated} values: the fakes above no longer drive its collect()`);
    }
    const series = (suffix: string, extra: string[] = []): [string, ExportedSeries] => [`${metric.name}${suffix}`, { labels: new Set([...labels, ...extra]), values }];
    const type = String(metric.type);
    const expanded =
      type === 'histogram'
        ? [series('_bucket', ['le']), series('_sum'), series('_count')]
        : type === 'summary'
          ? [series('', ['quantile']), series('_sum'), series('_count')]
          : [series('')];
    for (const [name, each] of expanded) exported.set(name, each);
  }
  for (const name of SCRAPE_SERIES) exported.set(name, { labels: new Set(TARGET_LABELS), values: new Map() });
  return exported;
}
