// Stops what the e2e setup started, service by service; whatever was already up stays up. First it
// fails the run, naming them, if the suites left sockets, servers, child processes or timers open:
// jest would otherwise wait on them for ever, since its own report leaves sockets out.
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { SERVICES, startedMarker } from './global-setup.mjs';
import { assertNoLeftoverHandles } from './leftover-handles.mjs';

const ROOT = join(import.meta.dirname, '..', '..');

export default async function globalTeardown() {
  try {
    await assertNoLeftoverHandles();
  } finally {
    stopStartedServices();
  }
}

function stopStartedServices() {
  const started = SERVICES.filter((service) => existsSync(startedMarker(service)));
  for (const service of started) rmSync(startedMarker(service));
  if (started.length === 0) return;
  execFileSync('bash', [join(ROOT, 'scripts', 'infra.sh'), 'down', ...started], { stdio: 'inherit' });
}
