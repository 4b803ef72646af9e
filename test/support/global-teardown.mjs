// Stops what the e2e setup started, service by service; whatever was already up stays up.
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { SERVICES, startedMarker } from './global-setup.mjs';

const ROOT = join(import.meta.dirname, '..', '..');

export default function globalTeardown() {
  const started = SERVICES.filter((service) => existsSync(startedMarker(service)));
  for (const service of started) rmSync(startedMarker(service));
  if (started.length === 0) return;
  execFileSync('bash', [join(ROOT, 'scripts', 'infra.sh'), 'down', ...started], { stdio: 'inherit' });
}
