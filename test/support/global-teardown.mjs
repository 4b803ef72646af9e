// Stops the infrastructure only if the e2e setup started it; infrastructure started by hand stays up.
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { STARTED_MARKER } from './global-setup.mjs';

const ROOT = join(import.meta.dirname, '..', '..');

export default function globalTeardown() {
  if (!existsSync(STARTED_MARKER)) return;
  rmSync(STARTED_MARKER);
  execFileSync('bash', [join(ROOT, 'scripts', 'infra.sh'), 'down'], { stdio: 'inherit' });
}
