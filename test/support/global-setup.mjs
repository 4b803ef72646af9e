// Brings Kafka and Redis up before any e2e suite runs, reusing whichever is already up, and records
// per service which ones it started: the teardown stops those and nothing else. In cluster mode
// (TC_REDIS_MODE=cluster) the Redis is the local Redis Cluster instead of the redis-server.
// Plain JS: jest loads global setup outside its module system.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { trackHandles } from './leftover-handles.mjs';

const ROOT = join(import.meta.dirname, '..', '..');
const RUN = join(ROOT, '.local', 'run');
/** Every service the setup may start; the teardown looks for a marker of each. */
export const SERVICES = ['kafka', 'redis', 'redis-cluster'];
/** The marker saying the e2e setup started this service (kafka, redis or redis-cluster). */
export const startedMarker = (service) => join(RUN, `started-by-tests.${service}`);

export default function globalSetup() {
  // The teardown names whatever the suites leave open, with the suite and the place it was made in.
  trackHandles();
  const script = join(ROOT, 'scripts', 'infra.sh');
  const wanted = ['kafka', process.env.TC_REDIS_MODE === 'cluster' ? 'redis-cluster' : 'redis'];
  const status = execFileSync('bash', [script, 'status'], { encoding: 'utf8' });
  const stopped = wanted.filter((service) => status.includes(`${service}: stopped`));
  execFileSync('bash', [script, 'up', ...wanted], { stdio: 'inherit' });
  mkdirSync(RUN, { recursive: true });
  for (const service of stopped) writeFileSync(startedMarker(service), `${process.pid}\n`);
}
