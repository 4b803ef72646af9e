// What both benchmarks share around their measurements: the cleanup stack that undoes whatever a
// run started or created, and the entry point that runs it and exits non-zero on a failure (a wrong
// answer, or a run that could not be carried out), never because of speed.

/** A wrong answer (bytes, status, a missing event): the benchmark's figures would mean nothing. */
export class CorrectnessFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CorrectnessFailure';
  }
}

export function assertCorrect(condition: boolean, message: string): asserts condition {
  if (!condition) throw new CorrectnessFailure(message);
}

// Everything a run starts or creates registers how to undo it here. The entry point runs the stack
// (last in, first out) once, whatever the outcome: success, failure, or Ctrl-C.
const cleanupActions: { label: string; action: () => unknown }[] = [];
let cleanupRunning: Promise<void> | undefined;
const CLEANUP_STEP_TIMEOUT_MS = 30_000;

export function onCleanup(label: string, action: () => unknown): void {
  cleanupActions.push({ label, action });
}

function runCleanup(): Promise<void> {
  cleanupRunning ??= (async () => {
    for (let step = cleanupActions.pop(); step; step = cleanupActions.pop()) {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          Promise.resolve().then(step.action),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`did not finish within ${CLEANUP_STEP_TIMEOUT_MS / 1000} s`)), CLEANUP_STEP_TIMEOUT_MS);
          }),
        ]);
      } catch (error) {
        console.error(`[bench] cleanup "${step.label}" failed: ${(error as Error).message}`);
      } finally {
        clearTimeout(timer);
      }
    }
  })();
  return cleanupRunning;
}

/** Ctrl-C or a CI timeout still stops the processes the run started and deletes what it created. */
function cleanUpOnSignals(): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`[bench] ${signal} received; cleaning up`);
      void runCleanup().finally(() => process.exit(130));
    });
  }
}

/** Runs a benchmark's `main`, cleans up whatever happens, and exits with its outcome. */
export async function runBenchmark(name: string, main: () => Promise<void>): Promise<never> {
  cleanUpOnSignals();
  let exitCode = 0;
  try {
    await main();
  } catch (error) {
    exitCode = 1;
    const failure = error as Error;
    const kind = failure instanceof CorrectnessFailure ? 'correctness failure' : 'failed';
    console.error(`\n[bench:${name}] ${kind}: ${failure.message}`);
    if (!(failure instanceof CorrectnessFailure) && failure.stack) console.error(failure.stack.split('\n').slice(1, 6).join('\n'));
  } finally {
    await runCleanup();
  }
  // Exits whatever is still open (keep-alive sockets, timers): the cleanup has stopped what matters.
  process.exit(exitCode);
}

/** A benchmark's log line: `[bench:<name>] message`. */
export function logger(name: string): (message: string) => void {
  return (message) => console.log(`[bench:${name}] ${message}`);
}
