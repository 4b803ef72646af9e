// The store's own ceiling: redis-benchmark GET of one key holding a task's bytes, 50 clients, on the
// same Redis. It bounds what any reader of this Redis can reach on this machine.
import { execFile } from 'node:child_process';

const TIMEOUT_MS = 180_000;

export function redisBenchmarkGet({ redisUrl, key, clients, requests }) {
  const { hostname, port } = new URL(redisUrl);
  const args = ['-h', hostname, '-p', port || '6379', '-c', String(clients), '-n', String(requests), '--csv', 'GET', key];
  return new Promise((resolve) => {
    execFile('redis-benchmark', args, { timeout: TIMEOUT_MS }, (error, stdout, stderr) => {
      if (error) {
        const reason = error.code === 'ENOENT' ? 'redis-benchmark is not installed' : `redis-benchmark failed: ${stderr.trim() || error.message}`;
        resolve({ available: false, reason });
        return;
      }
      // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
      const rows = stdout.trim().split('\n').map((line) => line.split(',').map((cell) => cell.replace(/^"|"$/g, '')));
      const header = rows.find((row) => row[0] === 'test');
      const values = rows.find((row) => row[0] !== 'test' && row.length === header?.length);
      if (!header || !values) {
        resolve({ available: false, reason: `unexpected redis-benchmark output: ${stdout.slice(0, 200)}` });
        return;
      }
      const field = (name) => Number(values[header.indexOf(name)]);
      resolve({
        available: true,
        command: `redis-benchmark ${args.join(' ')}`,
        clients,
        requests,
        requestsPerSecond: field('rps'),
        p50Ms: field('p50_latency_ms'),
        p99Ms: field('p99_latency_ms'),
      });
    });
  });
}
