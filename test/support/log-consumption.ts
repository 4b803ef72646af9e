import fc from 'fast-check';
import { TaskEvent } from '../../src/projection/task-event.js';

/** How a consumer meets the log: the next batch of a partition, or a batch it already applied. */
export type ConsumptionStep = { readonly next: number; readonly size: number } | { readonly again: number };

/** Any interleaving of partitions, with batches already applied coming again. */
export const consumptionSteps = fc.array(
  fc.oneof(
    { weight: 3, arbitrary: fc.record({ next: fc.nat(7), size: fc.integer({ min: 1, max: 6 }) }) },
    { weight: 1, arbitrary: fc.record({ again: fc.nat(100) }) },
  ),
  { maxLength: 40 },
);

/** Sizes of the batches that consume what the steps left. */
export const batchSizes = fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 4 });

/**
 * Consumes `logs` (one array of events per partition, in offset order) through `apply` the way
 * `steps` says, then whatever is left. Returns the batches in the order they were applied.
 */
export async function consumeLogs(
  logs: TaskEvent[][],
  steps: readonly ConsumptionStep[],
  sizes: readonly number[],
  applyBatch: (batch: TaskEvent[]) => Promise<unknown>,
): Promise<TaskEvent[][]> {
  const position = logs.map(() => 0);
  const applied: TaskEvent[][] = [];
  const apply = async (batch: TaskEvent[]) => {
    if (batch.length === 0) return;
    await applyBatch(batch);
    applied.push(batch);
  };
  for (const step of steps) {
    if ('next' in step) {
      const partition = step.next % logs.length;
      const batch = logs[partition].slice(position[partition], position[partition] + step.size);
      position[partition] += batch.length;
      await apply(batch);
    } else if (applied.length > 0) {
      await apply(applied[step.again % applied.length]);
    }
  }
  let size = 0;
  for (const [partition, log] of logs.entries()) {
    while (position[partition] < log.length) {
      const batch = log.slice(position[partition], position[partition] + sizes[size++ % sizes.length]);
      position[partition] += batch.length;
      await apply(batch);
    }
  }
  return applied;
}
