import { Histogram, Registry } from 'prom-client';
import { READ_BUCKETS, ReadLatencyHistogram } from './read-latency-histogram.js';

describe('ReadLatencyHistogram', () => {
  /** The same observations into prom-client's own Histogram, for the exposition it would give. */
  function reference(observations: [string, number, number][]): Registry {
    const registry = new Registry();
    const histogram = new Histogram({
      name: 'taskcache_read_duration_seconds',
      help: new ReadLatencyHistogram().help,
      labelNames: ['route', 'status'],
      buckets: [...READ_BUCKETS],
      registers: [registry],
    });
    for (const [route, status, seconds] of observations) histogram.observe({ route, status }, seconds);
    return registry;
  }

  const observations: [ '/tasks/{taskId}' | '/api/tasks/{taskId}', number, number][] = [
    ['/tasks/{taskId}', 200, 0.00005],
    ['/tasks/{taskId}', 200, 0.0001],
    ['/tasks/{taskId}', 200, 0.0004],
    ['/tasks/{taskId}', 200, 3],
    ['/api/tasks/{taskId}', 404, 0.002],
    ['/api/tasks/{taskId}', 503, 2.5],
    ['/api/tasks/{taskId}', 200, 0.01],
  ];

  it("is exposed exactly as prom-client's Histogram exposes the same observations", async () => {
    const histogram = new ReadLatencyHistogram();
    const registry = new Registry();
    registry.registerMetric(histogram.asMetric());
    for (const [route, status, seconds] of observations) histogram.observe(route, status, seconds);
    const expected = await reference(observations).metrics();
    // Series may come in another order; each line must match.
    expect((await registry.metrics()).split('\n').sort()).toEqual(expected.split('\n').sort());
  });

  it('counts a value on a bucket boundary in that bucket, and one above every bucket only in +Inf', async () => {
    const histogram = new ReadLatencyHistogram();
    histogram.observe('/tasks/{taskId}', 200, 0.001);
    histogram.observe('/tasks/{taskId}', 200, 10);
    const { values } = await histogram.get();
    const bucket = (le: number | string) => values.find((value) => value.metricName.endsWith('_bucket') && value.labels.le === le)!.value;
    expect(bucket(0.0005)).toBe(0);
    expect(bucket(0.001)).toBe(1);
    expect(bucket(2.5)).toBe(1);
    expect(bucket('+Inf')).toBe(2);
  });

  it('forgets every series on reset', async () => {
    const histogram = new ReadLatencyHistogram();
    histogram.observe('/tasks/{taskId}', 200, 0.001);
    histogram.reset();
    expect((await histogram.get()).values).toEqual([]);
  });
});
