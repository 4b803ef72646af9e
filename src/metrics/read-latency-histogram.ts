import type { Metric } from 'prom-client';

/** The read routes, as the `route` label names them. */
export const READ_ROUTES = ['/tasks/{taskId}', '/api/tasks/{taskId}'] as const;
export type ReadRoute = (typeof READ_ROUTES)[number];

/** Reads answer in well under a millisecond from a nearby Redis; the upper buckets are an outage's timeouts. */
export const READ_BUCKETS: readonly number[] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** One route and status: per-bucket (not yet cumulative) counts, the sum and the count. */
class Series {
  readonly buckets = new Float64Array(READ_BUCKETS.length);
  sum = 0;
  count = 0;
}

interface Sample {
  readonly metricName: string;
  readonly labels: Record<string, string | number>;
  readonly value: number;
}

/**
 * `taskcache_read_duration_seconds`: task reads by route and status, as a Prometheus histogram.
 *
 * The one metric on the read path, so it is kept in plain arrays rather than in prom-client's
 * `Histogram`, which builds and hashes a label object on every observation: about 0.3 µs per
 * observation against under 0.02 µs here (bench/RESULTS.md, "Design measurements"), on a read
 * that costs the service some 30 µs of CPU at saturation. The cumulative buckets are summed only
 * when scraped. It registers in a prom-client
 * registry like any other metric and is exposed in the same format (a unit test compares the two).
 */
export class ReadLatencyHistogram {
  readonly name = 'taskcache_read_duration_seconds';
  readonly help =
    'Task reads (GET and HEAD /tasks/{taskId}, /api/tasks/{taskId}) by route and status: time from the request reaching the service to its response being written';
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<ReadRoute, Map<number, Series>>(READ_ROUTES.map((route) => [route, new Map()]));

  observe(route: ReadRoute, status: number, seconds: number): void {
    const byStatus = this.series.get(route)!;
    let series = byStatus.get(status);
    if (series === undefined) {
      series = new Series();
      byStatus.set(status, series);
    }
    series.count += 1;
    series.sum += seconds;
    for (let bucket = 0; bucket < READ_BUCKETS.length; bucket++) {
      if (seconds <= READ_BUCKETS[bucket]) {
        series.buckets[bucket] += 1;
        break;
      }
    }
  }

  /** What prom-client's registry asks each metric for when scraped: its series, buckets cumulative. */
  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }> {
    const values: Sample[] = [];
    for (const [route, byStatus] of this.series) {
      for (const [status, series] of byStatus) {
        let cumulative = 0;
        READ_BUCKETS.forEach((le, bucket) => {
          cumulative += series.buckets[bucket];
          values.push({ metricName: `${this.name}_bucket`, labels: { le, route, status }, value: cumulative });
        });
        values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf', route, status }, value: series.count });
        values.push({ metricName: `${this.name}_sum`, labels: { route, status }, value: series.sum });
        values.push({ metricName: `${this.name}_count`, labels: { route, status }, value: series.count });
      }
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }

  reset(): void {
    for (const byStatus of this.series.values()) byStatus.clear();
  }

  /** As prom-client's registry takes it: it asks a metric only for its name and `get()`. */
  asMetric(): Metric {
    return this as unknown as Metric;
  }
}
