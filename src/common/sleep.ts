/**
 * Resolves after `ms`, or rejects with an AbortError once `signal` aborts: `setTimeout` of
 * node:timers/promises, built on the global timer. Jest's fake timers replace the global timer but
 * cannot reach node:timers/promises from an ES module, so code that waits through this can be
 * unit-tested without real waits.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const aborted = () => reject(signal?.reason ?? new DOMException('The operation was aborted', 'AbortError'));
    if (signal?.aborted) return aborted();
    const onAbort = () => {
      clearTimeout(timer);
      aborted();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
