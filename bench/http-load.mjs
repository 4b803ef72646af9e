// HTTP load with autocannon: a fixed number of connections asking for random task ids with a valid
// token, either as fast as the server answers (saturation) or at a fixed overall rate (autocannon's
// overallRate: each connection sends its share of the rate at the start of every second).
//
// Latency percentiles come from every 200 response's own duration (autocannon's 'response' event,
// in fractional milliseconds). autocannon's summary histogram has a 1 ms resolution, too coarse for
// sub-millisecond loopback latencies, and it adds coordinated-omission fill-ins at a fixed rate; its
// p50/p99 are kept in the results as `autocannonLatency` for reference.
import autocannon from 'autocannon';
import { percentile } from './statistics.mjs';

/**
 * @param {object} options
 * @param {string} options.baseUrl
 * @param {string[]} options.paths request paths to pick from at random
 * @returns {Promise<object>} figures of one run
 */
export async function runHttpLoad({ baseUrl, token, paths, connections, durationSeconds, overallRate }) {
  const latencies = [];
  const instance = autocannon({
    url: baseUrl,
    connections,
    duration: durationSeconds,
    ...(overallRate ? { overallRate } : {}),
    timeout: 10,
    headers: { 'x-authorization': token },
    requests: [
      {
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
