// Stops what the e2e setup started, service by service; whatever was already up stays up. First it
// waits for what the suites left open (sockets, servers, child processes, timers) to close: what is
// still open 5 s after the last suite is named, and what is still open after 60 s fails the run,
// where jest would wait on it for ever (its own report leaves sockets and library timers out).
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
