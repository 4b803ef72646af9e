// The read benchmark's HTTP load, and what makes a comparison under load fair: both sides serve the
// same bytes before any load, and every request under load is answered 200.
//
// Load is autocannon's: a fixed number of connections asking for random task ids with a valid
// token, either as fast as the server answers (saturation) or at a fixed overall rate (autocannon's
// overallRate: each connection sends its share of the rate at the start of every second). Latency
// percentiles come from every 200 response's own duration (autocannon's 'response' event, in
// fractional milliseconds). autocannon's summary histogram has a 1 ms resolution, too coarse for
// sub-millisecond loopback latencies, and it adds coordinated-omission fill-ins at a fixed rate; its
// p50/p99 are kept in the results as `autocannonLatency` for reference.
import autocannon from 'autocannon';
import { assertCorrect } from './bench-run.js';
import { percentile } from './statistics.js';
import type { TaskHttpClient } from './task-reading.js';

export interface LoadRun {
  durationSeconds: number;
  requests: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  requestsPerSecond: number;
  p50Ms: number | null;
  p99Ms: number | null;
  autocannonLatency: { p50Ms: number; p99Ms: number };
  statusCodes: Record<string, { count: number }>;
}

export async function runHttpLoad({
  baseUrl,
  token,
  paths,
  connections,
  durationSeconds,
  overallRate,
  batchBodies,
}: {
  baseUrl: string;
  token: string;
  /** Request paths to pick from at random. */
  paths: string[];
  /** Instead of GETs of `paths`: POSTs to the first path with one of these bodies, at random. */
  batchBodies?: string[];
  connections: number;
  durationSeconds: number;
  overallRate: number | undefined;
}): Promise<LoadRun> {
  const latencies: number[] = [];
  const instance = autocannon({
    url: baseUrl,
    connections,
    duration: durationSeconds,
    ...(overallRate ? { overallRate } : {}),
    timeout: 10,
    headers: { 'x-authorization': token, ...(batchBodies && { 'content-type': 'application/json' }) },
    requests: [
      batchBodies
        ? {
            method: 'POST',
            path: paths[0],
            setupRequest: (request) => {
              request.body = batchBodies[Math.floor(Math.random() * batchBodies.length)];
              return request;
            },
          }
        : {
            method: 'GET',
            setupRequest: (request) => {
              request.path = paths[Math.floor(Math.random() * paths.length)];
              return request;
            },
          },
    ],
  });
  instance.on('response', (_client, statusCode, _bytes, responseTime) => {
    if (statusCode === 200) latencies.push(responseTime);
  });
  const result = await instance;
  const ok = result['2xx'];
  return {
    durationSeconds: result.duration,
    requests: result.requests.total,
    ok,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    requestsPerSecond: ok / result.duration,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    autocannonLatency: { p50Ms: result.latency.p50, p99Ms: result.latency.p99 },
    statusCodes: result.statusCodeStats,
  };
}

/**
 * Before any load: both sides serve exactly the produced bytes on both routes, and both turn away a
 * request without the token. Otherwise the comparison would be between different work.
 */
export async function checkBothSidesServeTheSameBytes({
  clients,
  expected,
  taskIds,
}: {
  /** Each side's client: the service, the floor, and the service through HAProxy if measured. */
  clients: Record<string, TaskHttpClient>;
  expected: Map<string, Buffer>;
  /** The tasks to check. */
  taskIds: string[];
}): Promise<void> {
  for (const [side, client] of Object.entries(clients)) {
    for (const taskId of taskIds) {
      for (const route of ['/tasks/', '/api/tasks/']) {
        const { status, headers, body } = await client.getTask(taskId, route);
        assertCorrect(status === 200, `${side}: GET ${route}${taskId} answered ${status}, not 200`);
        assertCorrect(body.equals(expected.get(taskId)!), `${side}: GET ${route}${taskId} served other bytes than were produced`);
        assertCorrect(/^application\/json\b/.test(headers['content-type'] ?? ''), `${side}: GET ${route}${taskId} has Content-Type ${headers['content-type']}`);
      }
    }
    const missing = await client.getTask('bench-no-such-task');
    assertCorrect(missing.status === 404, `${side}: an unknown task answered ${missing.status}, not 404`);
    const anonymous = await client.get(`/tasks/${taskIds[0]}`, {});
    assertCorrect(anonymous.status === 401, `${side}: a request without a token answered ${anonymous.status}, not 401`);
  }
}

/** A load run is correct when every request was answered 200 (all ids exist, the token is valid). */
export function loadRunProblems(side: string, run: LoadRun): string | null {
  const problems: string[] = [];
  if (run.non2xx > 0) problems.push(`${run.non2xx} non-2xx answers (${JSON.stringify(run.statusCodes)})`);
  if (run.errors > 0) problems.push(`${run.errors} connection errors`);
  if (run.timeouts > 0) problems.push(`${run.timeouts} timeouts`);
  if (run.ok === 0) problems.push('no answer at all');
  return problems.length === 0 ? null : `${side}: ${problems.join(', ')}`;
}
