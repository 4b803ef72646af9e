// Brings Kafka and Redis up before any e2e suite runs, reusing them when they are already up.
// Plain JS: jest loads global setup outside its module system.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
export const STARTED_MARKER = join(ROOT, '.local', 'run', 'started-by-tests');

export default function globalSetup() {
  const script = join(ROOT, 'scripts', 'infra.sh');
  const wasUp = !execFileSync('bash', [script, 'status'], { encoding: 'utf8' }).includes('stopped');
  execFileSync('bash', [script, 'up'], { stdio: 'inherit' });
  if (!wasUp) writeFileSync(STARTED_MARKER, `${process.pid}\n`);
}
