// What both entry points share: run the benchmark, clean up whatever happens, and exit non-zero on
// a failure (a wrong answer, or a run that could not be carried out), never because of speed.
import { CorrectnessFailure } from './correctness-failure.mjs';
import { cleanUpOnSignals, runCleanup } from './cleanup-stack.mjs';
import { closeIdleConnections } from './task-http-client.mjs';

export async function runBenchmark(name, main) {
  cleanUpOnSignals();
  let exitCode = 0;
  try {
    await main();
  } catch (error) {
    exitCode = 1;
    const kind = error instanceof CorrectnessFailure ? 'correctness failure' : 'failed';
    console.error(`\n[bench:${name}] ${kind}: ${error.message}`);
    if (!(error instanceof CorrectnessFailure) && error.stack) console.error(error.stack.split('\n').slice(1, 6).join('\n'));
  } finally {
    await runCleanup();
    closeIdleConnections();
  }
  process.exit(exitCode);
}

/** The command line that reproduces this run, for the results summary. */
export function commandLine(script) {
  const overrides = Object.entries(process.env)
    .filter(([key]) => key.startsWith('BENCH_'))
    .map(([key, value]) => `${key}=${value}`)
    .sort();
  return [...overrides, `npm run ${script}`].join(' ');
}

export function log(name, message) {
  console.log(`[bench:${name}] ${message}`);
}
