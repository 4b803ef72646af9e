// Everything a run starts or creates registers how to undo it here. The entry point runs the stack
// (last in, first out) once, whatever the outcome: success, failure, or Ctrl-C.
const actions = [];
let running;

const CLEANUP_STEP_TIMEOUT_MS = 30_000;

export function onCleanup(label, action) {
  actions.push({ label, action });
}

export function runCleanup() {
  running ??= (async () => {
    while (actions.length > 0) {
      const { label, action } = actions.pop();
      let timer;
      try {
        await Promise.race([
          Promise.resolve().then(action),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`did not finish within ${CLEANUP_STEP_TIMEOUT_MS / 1000} s`)), CLEANUP_STEP_TIMEOUT_MS);
          }),
        ]);
      } catch (error) {
        console.error(`[bench] cleanup "${label}" failed: ${error.message}`);
      } finally {
        clearTimeout(timer);
      }
    }
  })();
  return running;
}

/** Ctrl-C or a CI timeout still stops the processes the run started and deletes what it created. */
export function cleanUpOnSignals() {
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      console.error(`[bench] ${signal} received; cleaning up`);
      void runCleanup().finally(() => process.exit(130));
    });
  }
}
